package lifecycle

import (
	"context"
	"encoding/json"
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

// provisionAsync starts one agent for template t. The name is reserved as an expectation first, so
// the next poll counts it before the informer has seen the pod.
func (c *Controller) provisionAsync(ctx context.Context, t *podtemplate.Template, queuedAt time.Time) {
	name := podtemplate.NewAgentName(t.Name)
	c.mu.Lock()
	c.expected[name] = expectation{template: t.Name, since: c.now()}
	c.mu.Unlock()
	c.start(name, func() {
		if err := c.provision(ctx, t, name, queuedAt); err != nil {
			c.mu.Lock()
			delete(c.expected, name)
			c.mu.Unlock()
			if ctx.Err() == nil {
				c.log.Warn("provision agent", zap.String("agent", name), zap.String("template", t.Name), zap.Error(err))
			}
		}
	})
}

// provision creates one agent: Jenkins node → its secret → Pod → Secret owned by the pod. A crash
// between any two steps leaves a node with our marker, or a labelled pod, that the reaper removes.
func (c *Controller) provision(ctx context.Context, t *podtemplate.Template, name string, queuedAt time.Time) error {
	log := c.log.With(zap.String("agent", name), zap.String("template", t.Name))
	mode := jenkins.ModeExclusive
	if t.Mode == podtemplate.ModeNormal {
		mode = jenkins.ModeNormal
	}
	err := c.jenkins.CreateNode(ctx, jenkins.NodeSpec{
		Name:         name,
		Description:  nodeDescription(t.Name, c.cfg.Namespace, c.now()),
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
	})
	if err != nil {
		c.undoNode(ctx, name, log)
		return fmt.Errorf("render pod for agent %s: %w", name, err)
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
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
		if derr := c.kube.CoreV1().Pods(c.cfg.Namespace).Delete(context.WithoutCancel(ctx), name, metav1.DeleteOptions{}); derr != nil && !apierrors.IsNotFound(derr) {
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
	c.mu.Lock()
	c.exposed++
	c.mu.Unlock()
	select {
	case c.exposedKick <- struct{}{}:
	default:
	}
	return nil
}

// undoNode removes the node of an agent whose provisioning failed, so nothing is left behind.
func (c *Controller) undoNode(ctx context.Context, name string, log *zap.Logger) {
	if err := c.jenkins.DeleteNode(context.WithoutCancel(ctx), name); err != nil {
		log.Warn("delete Jenkins node of an agent that could not be made (the reaper will retry)", zap.Error(err))
	}
}

// refused handles the apiserver saying no (quota, admission, conflict, throttling): the template
// backs off like after an agent failure, and an Event on the would-be pod says why.
func (c *Controller) refused(t *podtemplate.Template, pod *corev1.Pod, err error) {
	var status apierrors.APIStatus
	code := "unknown"
	if errors.As(err, &status) {
		code = fmt.Sprint(status.Status().Code)
	}
	reason := "apiserver refused"
	switch {
	case apierrors.IsForbidden(err) && strings.Contains(err.Error(), "exceeded quota"):
		reason = "quota exceeded"
	case apierrors.IsForbidden(err):
		reason = "forbidden"
	case apierrors.IsTooManyRequests(err):
		reason = "throttled"
	case apierrors.IsConflict(err) || apierrors.IsAlreadyExists(err):
		reason = "conflict"
	case apierrors.IsInvalid(err):
		reason = "invalid pod"
	}
	wait := c.backoff.fail(t.Name, c.now())
	c.metrics.failed.WithLabelValues(t.Name, strings.ReplaceAll(reason, " ", "_")).Inc()
	c.recorder.Eventf(pod, corev1.EventTypeWarning, "ProvisioningRefused", "Cannot create agent pod for template %s: %s (HTTP %s): %v; backing off %s",
		t.Name, reason, code, err, wait)
	c.recordFailure(&Agent{Name: pod.Name, Template: t.Name}, fmt.Sprintf("%s: %v", reason, err))
	c.log.Warn("apiserver refused the agent; backing the template off", zap.String("template", t.Name), zap.String("agent", pod.Name),
		zap.String("reason", reason), zap.Duration("backoff", wait), zap.Error(err))
}

func (c *Controller) kubeError(verb, resource string, err error) {
	code := "unknown"
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		code = fmt.Sprint(status.Status().Code)
	}
	c.metrics.kubeErrors.WithLabelValues(verb, resource, code).Inc()
}

// ownerPatch is a merge patch setting a Secret's ownerReferences.
func ownerPatch(s *corev1.Secret) []byte {
	b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"ownerReferences": s.OwnerReferences}})
	return b
}
