package lifecycle

import (
	"context"
	"fmt"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
)

// markReady puts the ready mark on an idle agent kept as headroom, so Jenkins hands it no build
// until decide brings it online for one. A build that landed just before the mark still runs: the
// next poll (or the busy watch) sees it busy and marks it so.
func (c *Controller) markReady(ctx context.Context, a Action) error {
	ctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	if err := c.jenkins.SetTemporarilyOffline(ctx, a.Agent, readyMark(c.now())); err != nil {
		return fmt.Errorf("mark agent %s ready: %w", a.Agent, err)
	}
	c.logAgent(a).Debug("agent ready: kept as headroom")
	return nil
}

// unready brings a ready agent online for a waiting build. The busy watch is armed first: from the
// moment the mark is gone, Jenkins may hand the agent a build that ends before the next poll.
func (c *Controller) unready(ctx context.Context, a Action) error {
	c.watch.arm()
	if err := c.jenkins.SetOnline(ctx, a.Agent); err != nil {
		return fmt.Errorf("bring ready agent %s online: %w", a.Agent, err)
	}
	c.logAgent(a).Debug("ready agent online for a waiting build")
	return nil
}

// notifyReadyTook is the Event of a ready agent that took its build.
func (c *Controller) notifyReadyTook(n Notice, log *zap.Logger) {
	c.recorder.Eventf(n.Pod, corev1.EventTypeNormal, "ReadyAgentTookBuild", "took build %s after %s ready", n.Build, n.ReadyFor.Round(1e9))
	log.Info("ready agent took a build", zap.String("build", n.Build), zap.Duration("readyFor", n.ReadyFor))
}
