package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// markTimeout bounds one attempt to mark an agent busy, retries included.
const markTimeout = 2 * time.Second

// step performs one action. An error it returns is retried by act when transient.
func (c *Controller) step(ctx context.Context, a Action) error {
	switch a.Kind {
	case ActMarkBusy:
		return c.markBusy(ctx, a)
	case ActFinish:
		return c.finish(ctx, a)
	case ActFail:
		return c.fail(ctx, a)
	case ActRemoveOrphan:
		return c.removeOrphan(ctx, a)
	case ActDeleteNode:
		return c.deleteNode(ctx, a.Agent)
	case ActExpire:
		return c.deletePodAndSecret(ctx, a)
	case ActRelease:
		c.logAgent(a).Info("releasing agent: no build is waiting for it", zap.Duration("grace", c.cfg.ReleaseGrace), zap.String("reason", a.Reason.Detail))
		if err := c.jenkins.SetTemporarilyOffline(ctx, a.Agent, reasonReleased); err != nil {
			return fmt.Errorf("mark agent %s released: %w", a.Agent, err)
		}
		return nil
	case ActCreate:
		c.provision(ctx, a)
		return nil
	case ActDeleteSecret:
		c.log.Info("deleting agent Secret without a pod", zap.String("agent", a.Agent))
		return c.deleteSecret(ctx, a.Secret)
	case ActOwnSecret:
		return c.ownSecret(ctx, a.Secret, a.Pod)
	case ActMarkReady:
		return c.markReady(ctx, a)
	case ActUnready:
		return c.unready(ctx, a)
	case ActResume:
		return c.resume(ctx, a)
	case ActLose:
		return c.lose(ctx, a)
	}
	return fmt.Errorf("unknown action %q", a.Kind)
}

func (c *Controller) logAgent(a Action) *zap.Logger {
	return c.log.With(zap.String("agent", a.Agent), zap.String("template", a.Template))
}

// markBusy makes sure no second build lands on an agent that runs one.
func (c *Controller) markBusy(ctx context.Context, a Action) error {
	// A mark is a tiny request that must land before the build ends. Give up on a slow attempt
	// quickly and retry afresh, rather than one hung connection holding the agent unmarked for the
	// client's full timeout.
	ctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	if err := c.jenkins.SetTemporarilyOffline(ctx, a.Agent, busyMark(a.Build)); err != nil {
		return fmt.Errorf("mark busy agent %s temporarily offline: %w", a.Agent, err)
	}
	c.logAgent(a).Debug("marked single-use agent offline", zap.String("build", a.Build))
	return nil
}

// finish deletes an agent that ran its build or was released: node, pod, Secret.
func (c *Controller) finish(ctx context.Context, a Action) error {
	log := c.logAgent(a)
	finishedAt := c.now()
	if a.Node {
		if err := c.deleteNode(ctx, a.Agent); err != nil {
			return err
		}
	}
	if a.Pod == nil {
		return nil
	}
	if a.State == Suspended {
		// Jenkins aborts a node block whose node stays away (ExecutorPickle.timeoutForNodeMillis);
		// past the grace the agent is not coming back for it.
		c.recorder.Eventf(a.Pod, corev1.EventTypeWarning, "AgentNotReconnected", "Deleting agent %s: %s%s", a.Agent, a.Reason.Detail, buildSuffix(a.Build))
		c.metrics.lost.WithLabelValues(a.Template, string(a.Reason.Kind)).Inc()
		log.Warn("agent did not reconnect; deleting it", zap.String("reason", a.Reason.Detail), zap.String("build", a.Build))
	} else if a.State == Done {
		c.recorder.Eventf(a.Pod, corev1.EventTypeNormal, "BuildFinished", "Build finished on agent %s; deleting the agent", a.Agent)
		c.metrics.completed.WithLabelValues(a.Template).Inc()
		log.Info("build finished, deleting agent")
		if a.Retain {
			return c.retain(ctx, a)
		}
	} else {
		log.Info("deleting released agent")
	}
	if err := c.deletePodAndSecret(ctx, a); err != nil {
		return err
	}
	if a.State == Done {
		c.metrics.finishedToDeleted.WithLabelValues(a.Template).Observe(c.now().Sub(finishedAt).Seconds())
	}
	return nil
}

// resume lets the node block Jenkins queued again bound to an agent of ours (a restart) take it: our
// mark is cleared, and set again at once. Clearing it makes Jenkins hand the block the node
// (Queue.maintain; other items are held off the node while the block waits: ContinuedTask); a task
// already handed to an executor runs on a temporarily-offline node, which only refuses new ones. Left
// unmarked, the node would take any waiting build matching its labels the instant the block ends,
// which can be milliseconds later (a block whose step ended during the restart ends at once). If
// Jenkins had not handed the block over before the mark came back, the next poll sees it still
// queued and does this again.
func (c *Controller) resume(ctx context.Context, a Action) error {
	if err := c.jenkins.SetOnline(ctx, a.Agent); err != nil {
		return fmt.Errorf("bring agent %s online for its resumed build: %w", a.Agent, err)
	}
	c.watch.arm() // should the mark below fail, the busy watch marks the agent once it is busy
	if err := c.markBusy(ctx, a); err != nil {
		return err
	}
	c.logAgent(a).Info("agent let its resumed build in", zap.String("build", a.Build))
	return nil
}

// lose cleans up an agent killed in the middle of its build, on both sides at once: its build cannot
// finish without it, and Jenkins ends the build when the node goes. decide reported the loss.
func (c *Controller) lose(ctx context.Context, a Action) error {
	if a.Node {
		if err := c.deleteNode(ctx, a.Agent); err != nil {
			return err
		}
	}
	if a.Pod == nil {
		return c.deleteSecret(ctx, a.Secret)
	}
	return c.deletePodAndSecret(ctx, a)
}

// buildSuffix names a build in a message, when known.
func buildSuffix(build string) string {
	if build == "" {
		return ""
	}
	return "; build " + build
}

// fail removes an agent that can never run its build. decide already counted the failure and backed
// the template off; while the node exists its offline reason tells a Jenkins user why no agent came.
func (c *Controller) fail(ctx context.Context, a Action) error {
	if a.Node {
		if !a.NodeMarkedFailed {
			_ = c.jenkins.SetTemporarilyOffline(ctx, a.Agent, reasonFailed+a.Reason.Detail)
		}
		if err := c.deleteNode(ctx, a.Agent); err != nil {
			return err
		}
	}
	if a.Pod == nil {
		return nil
	}
	if a.Retain {
		return c.retain(ctx, a)
	}
	return c.deletePodAndSecret(ctx, a)
}

// retain keeps a pod for inspection until its retention timeout, recorded on the pod.
func (c *Controller) retain(ctx context.Context, a Action) error {
	timeout, err := time.ParseDuration(a.Pod.Annotations[annotationRetentionTimeout])
	if err != nil || timeout <= 0 {
		timeout = time.Hour
	}
	until := c.now().Add(timeout).UTC().Format(time.RFC3339)
	patch := mergePatch(a.Pod.UID, map[string]any{"annotations": map[string]string{annotationRetainUntil: until}})
	if _, err := c.kube.CoreV1().Pods(c.cfg.Namespace).Patch(ctx, a.Agent, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		c.kubeError("patch", "pods", err)
		return fmt.Errorf("mark pod %s retained: %w", a.Agent, err)
	}
	c.recorder.Eventf(a.Pod, corev1.EventTypeNormal, "Retained", "Pod kept by podRetention until %s", until)
	return nil
}

func (c *Controller) removeOrphan(ctx context.Context, a Action) error {
	log := c.logAgent(a)
	if a.Pod == nil {
		log.Info("deleting Jenkins node without a pod", zap.String("reason", a.Reason.Detail))
		return c.deleteNode(ctx, a.Agent)
	}
	log.Info("deleting agent pod without a Jenkins node", zap.String("reason", a.Reason.Detail))
	c.recorder.Eventf(a.Pod, corev1.EventTypeWarning, "Orphaned", "Deleting agent pod: %s", a.Reason.Detail)
	return c.deletePodAndSecret(ctx, a)
}

func (c *Controller) deleteNode(ctx context.Context, name string) error {
	if err := c.jenkins.DeleteNode(ctx, name); err != nil {
		return fmt.Errorf("delete Jenkins node %s: %w", name, err)
	}
	return nil
}

// deletePodAndSecret deletes the agent's pod as the cache showed it (its UID a precondition, so a
// pod recreated under the same name is never touched), then its owned Secret; already gone is fine.
func (c *Controller) deletePodAndSecret(ctx context.Context, a Action) error {
	err := c.kube.CoreV1().Pods(c.cfg.Namespace).Delete(ctx, a.Pod.Name, byUID(a.Pod.UID))
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		c.kubeError("delete", "pods", err)
		return fmt.Errorf("delete pod %s: %w", a.Agent, err)
	}
	if err == nil {
		c.recorder.Eventf(a.Pod, corev1.EventTypeNormal, "Deleted", "Agent pod deleted: %s", firstNonEmpty(a.Reason.Detail, string(a.State)))
	}
	// The Secret is owned by the pod, so the garbage collector removes it too; deleting it here
	// only makes that immediate.
	if err := c.deleteSecret(ctx, a.Secret); err != nil {
		c.logAgent(a).Warn("delete agent secret", zap.Error(err))
	}
	return nil
}

// deleteSecret deletes a Secret as the cache showed it (nil: nothing to do).
func (c *Controller) deleteSecret(ctx context.Context, s *corev1.Secret) error {
	if s == nil {
		return nil
	}
	err := c.kube.CoreV1().Secrets(c.cfg.Namespace).Delete(ctx, s.Name, byUID(s.UID))
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		c.kubeError("delete", "secrets", err)
		return fmt.Errorf("delete Secret %s: %w", s.Name, err)
	}
	return nil
}

// byUID makes a delete apply only to the very object decided on.
func byUID(uid types.UID) metav1.DeleteOptions {
	if uid == "" {
		return metav1.DeleteOptions{}
	}
	return metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}}
}

// ownSecret gives a Secret its pod as owner, so the garbage collector removes it with the pod.
func (c *Controller) ownSecret(ctx context.Context, s *corev1.Secret, pod *corev1.Pod) error {
	owned := s.DeepCopy()
	podtemplate.SetSecretOwner(owned, pod)
	if _, err := c.kube.CoreV1().Secrets(c.cfg.Namespace).Patch(ctx, s.Name, types.MergePatchType, mergePatch(s.UID, map[string]any{"ownerReferences": owned.OwnerReferences}), metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		c.kubeError("patch", "secrets", err)
		return fmt.Errorf("give Secret %s its pod as owner: %w", s.Name, err)
	}
	return nil
}

// mergePatch is a merge patch of metadata fields; with the object's UID in it, the patch applies only
// to the very object decided on (a UID cannot change, so another object's is refused).
func mergePatch(uid types.UID, metadata map[string]any) []byte {
	if uid != "" {
		metadata["uid"] = uid
	}
	b, _ := json.Marshal(map[string]any{"metadata": metadata})
	return b
}
