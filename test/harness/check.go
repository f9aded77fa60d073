package harness

import (
	"context"
	"fmt"
	"sort"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// Invariants is what every chaos scenario must end with, and what the bench's latency run checks
// too. Each field lists the violations found; all empty means the run lost nothing.
type Invariants struct {
	// NotExactlyOnce: a queued build that did not run, ran twice, or did not succeed.
	NotExactlyOnce []string `json:"notExactlyOnce"`
	// NotOwnAgent: a build that ran on no agent, on an agent that ran another build too, or on a
	// node that is not a pod this provisioner made.
	NotOwnAgent []string `json:"notOwnAgent"`
	// DeletedWhileRunning: an agent whose build was cut short (the emulator ends a build ABORTED or
	// FAILURE when its node is deleted or its agent disconnects), or whose pod deletion was requested
	// before its build finished.
	DeletedWhileRunning []string `json:"deletedWhileRunning"`
	// PipelinesLost: a pipeline build that did not succeed (a Jenkins restart must not lose one:
	// its node block resumes on its own agent).
	PipelinesLost []string `json:"pipelinesLost"`
	// AbortedByRestart counts freestyle builds Jenkins aborted as it restarted (expected: Jenkins
	// does not resume freestyle builds); they are not violations.
	AbortedByRestart int `json:"abortedByRestart"`
	// Leftovers: pods, Secrets or Jenkins nodes of ours still there at the end (the placeholder
	// node is meant to stay and is not counted).
	Leftovers []string `json:"leftovers"`
	// CapsExceeded: more live pods than a template's maxAgents or MAX_AGENTS at any moment the
	// watch saw.
	CapsExceeded []string `json:"capsExceeded"`
	// MaxLive is the most agent pods alive at once, in total and per template.
	MaxLive         int            `json:"maxLive"`
	MaxLivePerTempl map[string]int `json:"maxLivePerTemplate"`
}

// OK says whether no invariant was violated.
func (v Invariants) OK() bool {
	return v.Count() == 0
}

// Count is the number of violations.
func (v Invariants) Count() int {
	return len(v.NotExactlyOnce) + len(v.NotOwnAgent) + len(v.DeletedWhileRunning) + len(v.PipelinesLost) + len(v.Leftovers) + len(v.CapsExceeded)
}

// maxListed keeps a report readable when something goes wrong for hundreds of builds.
const maxListed = 20

func add(list *[]string, format string, args ...any) {
	if len(*list) == maxListed {
		*list = append(*list, "… (more)")
	}
	if len(*list) > maxListed {
		return
	}
	*list = append(*list, fmt.Sprintf(format, args...))
}

// Check verifies the invariants for the builds bs once they are all done, waiting up to
// leftoverWait for the provisioner to clean up.
func (w *World) Check(ctx context.Context, bs []Build, leftoverWait time.Duration) Invariants {
	var v Invariants
	records := map[int64][]int{}
	all := w.Jenkins.Builds()
	for i, r := range all {
		records[r.QueueID] = append(records[r.QueueID], i)
	}
	byNode := map[string][]string{}
	for _, b := range bs {
		idx := records[b.QueueID]
		if len(idx) != 1 {
			add(&v.NotExactlyOnce, "%s (queue item %d) ran %d times", b.Job, b.QueueID, len(idx))
			continue
		}
		r := all[idx[0]]
		id := fmt.Sprintf("%s #%d", r.Job, r.Number)
		switch {
		case !r.Done:
			add(&v.NotExactlyOnce, "%s has not finished", id)
			continue
		case b.Pipeline && r.Result != "SUCCESS":
			add(&v.PipelinesLost, "pipeline %s ended %s on %q", id, r.Result, r.Node)
			continue
		case !b.Pipeline && r.Result == "ABORTED" && r.Node != "" && w.abortedByRestart(r.Finished):
			v.AbortedByRestart++
			byNode[r.Node] = append(byNode[r.Node], id)
			continue
		case r.Result != "SUCCESS" && r.Node != "":
			add(&v.DeletedWhileRunning, "%s ended %s on %s after %s (its agent went away while it ran)", id, r.Result, r.Node, r.Finished.Sub(r.Started).Round(time.Millisecond))
			continue
		case r.Result != "SUCCESS":
			add(&v.NotExactlyOnce, "%s ended %s without running", id, r.Result)
			continue
		}
		if r.Node == "" {
			add(&v.NotOwnAgent, "%s ran on the built-in node", id)
			continue
		}
		byNode[r.Node] = append(byNode[r.Node], id)
		pod, ok := w.Pods.Get(r.Node)
		if !ok {
			add(&v.NotOwnAgent, "%s ran on %s, not a pod the provisioner made", id, r.Node)
			continue
		}
		if ran := r.Finished.Sub(r.Started); ran < b.Duration-50*time.Millisecond {
			add(&v.DeletedWhileRunning, "%s ran %s of its %s", id, ran.Round(time.Millisecond), b.Duration)
		}
		if !pod.DeleteRequested.IsZero() && pod.DeleteRequested.Before(r.Finished) {
			add(&v.DeletedWhileRunning, "pod %s: deletion requested %s before %s finished", r.Node, r.Finished.Sub(pod.DeleteRequested).Round(time.Millisecond), id)
		}
	}
	nodes := make([]string, 0, len(byNode))
	for n := range byNode {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		if len(byNode[n]) > 1 {
			add(&v.NotOwnAgent, "agent %s ran %d builds %v", n, len(byNode[n]), byNode[n])
		}
	}
	v.Leftovers = w.waitNothingLeft(ctx, leftoverWait)
	v.MaxLive, v.MaxLivePerTempl = w.Pods.Max()
	if w.MaxAgents > 0 && v.MaxLive > w.MaxAgents {
		add(&v.CapsExceeded, "%d agent pods alive at once, MAX_AGENTS %d", v.MaxLive, w.MaxAgents)
	}
	for _, t := range w.Templates {
		if got := v.MaxLivePerTempl[t.Name]; got > t.MaxAgents {
			add(&v.CapsExceeded, "template %s: %d pods alive at once, maxAgents %d", t.Name, got, t.MaxAgents)
		}
	}
	return v
}

// waitNothingLeft waits until no pod, Secret or Jenkins node of ours is left and returns what is
// still there after timeout.
func (w *World) waitNothingLeft(ctx context.Context, timeout time.Duration) []string {
	deadline := time.Now().Add(timeout)
	sel := metav1.ListOptions{LabelSelector: lifecycle.ManagedSelector().String()}
	for {
		var left []string
		pods, err := w.P.Env.Client.CoreV1().Pods(w.NS).List(ctx, sel)
		if err != nil {
			left = append(left, "listing pods: "+err.Error())
		} else {
			for _, p := range pods.Items {
				add(&left, "pod %s", p.Name)
			}
		}
		secrets, err := w.P.Env.Client.CoreV1().Secrets(w.NS).List(ctx, sel)
		if err != nil {
			left = append(left, "listing Secrets: "+err.Error())
		} else {
			for _, s := range secrets.Items {
				add(&left, "Secret %s", s.Name)
			}
		}
		for _, n := range w.Jenkins.Nodes() {
			if n.Name != lifecycle.PlaceholderNodeName {
				add(&left, "Jenkins node %s", n.Name)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		if !waitfor.Duration(ctx, 250*time.Millisecond) {
			return append(left, ctx.Err().Error())
		}
	}
}
