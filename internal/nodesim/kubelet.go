package nodesim

import (
	"context"
	"errors"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
)

// The kubelet's part for a bound pod: starting its run, finishing a graceful deletion (containers
// reported terminated, then the delete with grace 0 and a UID precondition), and writing status
// without overwriting fields others own.

// ensureRun starts the goroutine that plays the kubelet for a pod bound here, once per pod UID.
func (s *Simulator) ensureRun(ctx context.Context, key string, pod *corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.runs[key]; ok {
		return
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// Finished before this simulator saw it (a restart): a terminal pod never runs again.
		return
	}
	runCtx, cancel := context.WithCancel(ctx)
	r := &podRun{s: s, uid: pod.UID, pod: pod.DeepCopy(), cancel: cancel, done: make(chan struct{})}
	s.runs[key] = r
	go r.run(runCtx)
}

// finishDeletion plays the kubelet's end of a graceful deletion: stop the containers, report them
// terminated, then delete the pod for good with grace 0 and a UID precondition (so a pod recreated
// under the same name in the meantime is never touched).
func (s *Simulator) finishDeletion(ctx context.Context, key string, pod *corev1.Pod) error {
	s.mu.Lock()
	r := s.runs[key]
	s.mu.Unlock()
	st := *pod.Status.DeepCopy()
	if r != nil {
		r.cancel()
		<-r.done
		st = *r.status.DeepCopy()
	}
	if killStatus(pod, &st, time.Now()) {
		s.emit(pod, "kubelet", corev1.EventTypeNormal, "Killing", "Stopping container(s) of a pod being deleted")
		if err := s.writeStatus(ctx, pod, st, nil); err != nil && !errors.Is(err, errPodGone) {
			return err
		}
	}
	grace := int64(0)
	uid := pod.UID
	err := s.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &grace,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return nil
	case err != nil:
		return fmt.Errorf("finish deletion of pod %s: %w", key, err)
	}
	// A finalizer keeps the pod after this delete and brings it back here with every update: count
	// and tell the deletion once.
	s.mu.Lock()
	first := !s.deleted[pod.UID]
	s.deleted[pod.UID] = true
	if first {
		s.counters.Deleted++
	}
	s.mu.Unlock()
	if first {
		s.note(pod.Name, "Deleted", "pod deletion finished")
	}
	return nil
}

var errPodGone = errors.New("pod gone or replaced")

// writeStatus puts st on the pod, keeping the parts others own (conditions of types this node does not
// manage, qosClass). base, when given, is the last object this node wrote, which saves a GET.
func (s *Simulator) writeStatus(ctx context.Context, pod *corev1.Pod, st corev1.PodStatus, base *corev1.Pod) error {
	pods := s.cfg.Client.CoreV1().Pods(pod.Namespace)
	var written *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur := base
		base = nil
		if cur == nil {
			var err error
			if cur, err = pods.Get(ctx, pod.Name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		if cur.UID != pod.UID {
			return errPodGone
		}
		next := cur.DeepCopy()
		next.Status = mergeStatus(cur.Status, st)
		out, err := pods.UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		written = out
		return nil
	})
	if apierrors.IsNotFound(err) {
		return errPodGone
	}
	if err != nil {
		return fmt.Errorf("update status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	s.mu.Lock()
	if r := s.runs[pod.Namespace+"/"+pod.Name]; r != nil && r.uid == pod.UID {
		r.latest.Store(written)
	}
	s.mu.Unlock()
	return nil
}

// managedConditions are the pod conditions a kubelet owns; any other (DisruptionTarget, readiness
// gates) is left as found.
var managedConditions = map[corev1.PodConditionType]bool{
	corev1.PodScheduled:              true,
	corev1.PodReadyToStartContainers: true,
	corev1.PodInitialized:            true,
	corev1.ContainersReady:           true,
	corev1.PodReady:                  true,
}

func mergeStatus(cur, ours corev1.PodStatus) corev1.PodStatus {
	out := *ours.DeepCopy()
	out.QOSClass = cur.QOSClass
	for _, c := range cur.Conditions {
		if !managedConditions[c.Type] {
			out.Conditions = append(out.Conditions, c)
		}
	}
	return out
}
