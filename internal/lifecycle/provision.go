package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// provision creates one agent: Jenkins node → its secret → Pod → Secret owned by the pod. A crash
// between any two steps leaves a node with our marker, or a labelled pod, that the reaper removes.
//
// The creation's expectation (registered when the action was queued) ends with this step: at once if
// it failed, else once the informer shows the pod.
func (c *Controller) provision(ctx context.Context, a Action) {
	err := c.create(ctx, a.Spec, a.Agent, a.QueuedAt)
	c.exp.ended(a.Agent, err == nil, c.now())
	if err != nil && ctx.Err() == nil {
		c.log.Warn("provision agent", zap.String("agent", a.Agent), zap.String("template", a.Template), zap.Error(err))
	}
}

func (c *Controller) create(ctx context.Context, t *podtemplate.Template, name string, queuedAt time.Time) error {
	log := c.log.With(zap.String("agent", name), zap.String("template", t.Name))
	mode := jenkins.ModeExclusive
	if t.Mode == podtemplate.ModeNormal {
		mode = jenkins.ModeNormal
	}
	err := c.jenkins.CreateNode(ctx, jenkins.NodeSpec{
		Name:         name,
		Description:  nodeDescription(c.cfg.Identity, name, t.Name, c.now()),
		Labels:       t.Labels,
		NumExecutors: 1,
		Mode:         mode,
		WebSocket:    t.Agent.WebSocket,
	})
	if err != nil {
		return fmt.Errorf("create Jenkins node %s: %w", name, err)
	}
	secret, err := c.jenkins.NodeSecret(ctx, name)
	if err != nil {
		c.undoNode(ctx, name, log)
		return fmt.Errorf("read secret of Jenkins node %s: %w", name, err)
	}
	pod, sec, err := podtemplate.Render(t, podtemplate.Identity{
		Name:            name,
		Namespace:       c.cfg.Namespace,
		Secret:          secret,
		JenkinsURL:      c.cfg.JenkinsURL,
		AgentJenkinsURL: c.cfg.AgentJenkinsURL,
		Tunnel:          c.cfg.AgentTunnel,
		Queue:           c.cfg.KueueQueue,
	})
	if err != nil {
		c.undoNode(ctx, name, log)
		return fmt.Errorf("render pod for agent %s: %w", name, err)
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	// The creation record: what tells this pod from one that merely carries our labels.
	pod.Annotations[annotationCreatedBy] = c.cfg.Identity.creationRecord(name)
	pod.Annotations[annotationConnectTimeout] = t.ConnectTimeout.String()
	pod.Annotations[annotationPodRetention] = string(t.PodRetention)
	pod.Annotations[annotationRetentionTimeout] = t.RetentionTimeout.String()
	if !queuedAt.IsZero() {
		pod.Annotations[annotationQueuedAt] = queuedAt.UTC().Format(time.RFC3339Nano)
	}

	// The pod first, then its Secret with the pod as owner: two writes, no patch. The pod names the
	// Secret through secretKeyRef; a kubelet resolves that only after scheduling and sandbox creation,
	// long after the Secret (one API call later) exists, and a pod whose Secret never came shows
	// CreateContainerConfigError and is failed and removed like any other.
	created, err := c.kube.CoreV1().Pods(c.cfg.Namespace).Create(ctx, pod, metav1.CreateOptions{})
	if err != nil {
		c.kubeError("create", "pods", err)
		c.refused(t, pod, err)
		c.undoNode(ctx, name, log)
		return fmt.Errorf("create pod %s: %w", name, err)
	}
	podtemplate.SetSecretOwner(sec, created)
	if _, err := c.kube.CoreV1().Secrets(c.cfg.Namespace).Create(ctx, sec, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		c.kubeError("create", "secrets", err)
		c.refused(t, pod, err)
		if derr := c.kube.CoreV1().Pods(c.cfg.Namespace).Delete(context.WithoutCancel(ctx), name, byUID(created.UID)); derr != nil && !apierrors.IsNotFound(derr) {
			log.Warn("delete pod whose Secret was refused (the reaper will retry)", zap.Error(derr))
		}
		c.undoNode(ctx, name, log)
		return fmt.Errorf("create Secret %s: %w", name, err)
	}
	c.metrics.provisioned.WithLabelValues(t.Name).Inc()
	if !queuedAt.IsZero() {
		c.metrics.queueToPod.WithLabelValues(t.Name).Observe(c.now().Sub(queuedAt).Seconds())
	}
	c.recorder.Eventf(created, corev1.EventTypeNormal, "Provisioned", "Agent %s for template %s (labels %s) registered in Jenkins and pod created",
		name, t.Name, strings.Join(t.Labels, " "))
	log.Info("agent pod created")
	// Arm the busy watch now: this agent may connect, take a build and finish it before the next
	// poll would have counted it.
	c.watch.arm()
	return nil
}

// undoNode removes the node of an agent whose provisioning failed, so nothing is left behind.
func (c *Controller) undoNode(ctx context.Context, name string, log *zap.Logger) {
	if err := c.jenkins.DeleteNode(context.WithoutCancel(ctx), name); err != nil {
		log.Warn("delete Jenkins node of an agent that could not be made (the reaper will retry)", zap.Error(err))
	}
}

// refused handles the apiserver saying no (quota, admission, conflict, throttling): the next poll's
// decide backs the template off like after an agent failure and reports it.
func (c *Controller) refused(t *podtemplate.Template, pod *corev1.Pod, err error) {
	var status apierrors.APIStatus
	code := "unknown"
	if errors.As(err, &status) {
		code = fmt.Sprint(status.Status().Code)
	}
	c.act.report(Outcome{At: c.now(), Agent: pod.Name, Template: t.Name, Reason: refusal(err), Code: code, Pod: pod})
}

// refusal classifies the apiserver's refusal of a creation.
func refusal(err error) Reason {
	kind, what := KindRefused, "apiserver refused"
	switch {
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota"):
		kind, what = KindQuotaExceeded, "quota exceeded"
	case apierrors.IsForbidden(err):
		kind, what = KindForbidden, "forbidden"
	case apierrors.IsTooManyRequests(err):
		kind, what = KindThrottled, "throttled"
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		kind, what = KindConflict, "conflict"
	case apierrors.IsInvalid(err):
		kind, what = KindInvalid, "invalid pod"
	}
	return Reason{Kind: kind, Detail: fmt.Sprintf("%s: %v", what, err)}
}

func (c *Controller) kubeError(verb, resource string, err error) {
	code := "unknown"
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code = fmt.Sprint(status.Status().Code)
	}
	c.metrics.kubeErrors.WithLabelValues(verb, resource, code).Inc()
}
