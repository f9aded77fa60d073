package nodesim

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Small pieces a pod's run uses: which container is the agent, readiness and time helpers, ids and
// pod IPs.

// agentContainer names the container that plays the inbound agent: "jnlp", as the Kubernetes plugin
// names it, else the first container that sets JENKINS_URL; "" for a pod with no agent.
func agentContainer(pod *corev1.Pod) string {
	for _, c := range pod.Spec.Containers {
		if c.Name == "jnlp" {
			return c.Name
		}
	}
	for _, c := range pod.Spec.Containers {
		if slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "JENKINS_URL" }) {
			return c.Name
		}
	}
	return ""
}

func agentIndex(ctrs []*ctr) int {
	return slices.IndexFunc(ctrs, func(c *ctr) bool { return c.agent })
}

func allStarted(list []corev1.ContainerStatus) bool {
	for _, cs := range list {
		if cs.State.Running == nil {
			return false
		}
	}
	return len(list) > 0
}

func isTerminal(p corev1.PodPhase) bool { return p == corev1.PodSucceeded || p == corev1.PodFailed }

func boolCond(b bool) corev1.ConditionStatus {
	if b {
		return corev1.ConditionTrue
	}
	return corev1.ConditionFalse
}

func earliest(ts ...time.Time) time.Time {
	var out time.Time
	for _, t := range ts {
		if !t.IsZero() && (out.IsZero() || t.Before(out)) {
			out = t
		}
	}
	return out
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

func ptr[T any](v T) *T { return &v }

// allocateIP hands out pod IPs from this node's /24, skipping .0 and .1 as a CNI's host-local IPAM does.
func (s *Simulator) allocateIP() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextIP++
	n := s.nextIP%253 + 2
	return fmt.Sprintf("10.244.%d.%d", s.subnet, n)
}
