package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
)

// What Jenkins users expect builds to survive (issue 11): a controller restart, a dropped agent
// connection, an agent pod killed by someone else. Jenkins' side is the emulator's model of core and
// workflow-durable-task-step (jenkinstest/restart.go); the agents are the node simulator's, which
// reconnect as remoting does without -noReconnect.

// resumeTimeout stands in for ExecutorPickle.timeoutForNodeMillis (5 min in Jenkins): long enough for
// any resume the provisioner does right, short enough that a wrong one shows as an ABORTED build
// rather than a test timeout.
const resumeTimeout = 45 * time.Second

// running waits until the builds of these jobs run on agents of ours, each marked (temporarily
// offline with the provisioner's busy mark), and returns job → node.
func (r *rig) running(jobs []string, timeout time.Duration) map[string]string {
	r.t.Helper()
	out := map[string]string{}
	eventually(r.t, timeout, func() (bool, string) {
		marked := map[string]bool{}
		for _, n := range r.jenkins.Nodes() {
			marked[n.Name] = n.TemporarilyOffline && strings.Contains(n.OfflineReason, "single-use agent, build running")
		}
		clear(out)
		var missing []string
		for _, job := range jobs {
			for _, b := range r.jenkins.Builds() {
				if b.Job == job && b.Node != "" && !b.Started.IsZero() && !b.Done && marked[b.Node] {
					out[job] = b.Node
				}
			}
			if out[job] == "" {
				missing = append(missing, job)
			}
		}
		return len(missing) == 0, fmt.Sprintf("not yet running on a marked agent: %v; pods %s", missing, r.pods.summary())
	})
	return out
}

// buildOf is the one build of a job.
func (r *rig) buildOf(job string) jenkinstest.BuildRecord {
	r.t.Helper()
	var found []jenkinstest.BuildRecord
	for _, b := range r.jenkins.Builds() {
		if b.Job == job {
			found = append(found, b)
		}
	}
	if len(found) != 1 {
		r.t.Fatalf("job %s has %d builds, want 1: %+v", job, len(found), found)
	}
	return found[0]
}

// assertOneBuildPerAgent checks the single-use promise over the whole run: no agent of ours ever
// ran a second build (a resumed node block is the same build).
func (r *rig) assertOneBuildPerAgent() {
	r.t.Helper()
	byNode := map[string][]string{}
	for _, b := range r.jenkins.Builds() {
		if b.Node != "" {
			byNode[b.Node] = append(byNode[b.Node], fmt.Sprintf("%s #%d", b.Job, b.Number))
		}
	}
	for node, builds := range byNode {
		if len(builds) != 1 {
			r.t.Errorf("agent %s ran %d builds %v, want 1", node, len(builds), builds)
		}
	}
}

// Jenkins restarts while pipeline and freestyle builds run. Jenkins aborts the freestyle builds;
// every pipeline node block resumes on its own agent, which the provisioner kept and brought back
// online for it, and the build succeeds. No agent is made for the resumed blocks, no agent runs a
// second build, and afterwards nothing of ours is left.
func TestRestartResumesPipelinesOnTheirOwnAgents(t *testing.T) {
	r := newRig(t, rigOptions{jenkins: func(o *jenkinstest.Options) { o.ResumeTimeout = resumeTimeout }})
	var pipelines, freestyle []string
	for i := range 3 {
		pipelines = append(pipelines, fmt.Sprintf("web-%02d", i))
		r.jenkins.CreatePipelineJob(pipelines[i], "nodejs", 15*time.Second)
	}
	for i := range 2 {
		freestyle = append(freestyle, fmt.Sprintf("compile-%02d", i))
		r.jenkins.CreateFreestyleJob(freestyle[i], "maven", 15*time.Second)
	}
	all := append(append([]string{}, pipelines...), freestyle...)
	r.queue(len(all), all...)
	before := r.running(all, 2*time.Minute)
	created := len(r.pods.createdNames())

	<-r.jenkins.Restart(2*time.Second, 2*time.Second)
	t.Log("Jenkins is up again")

	r.waitBuilds(len(all), 2*time.Minute)
	for _, job := range pipelines {
		b := r.buildOf(job)
		if b.Result != "SUCCESS" || b.Node != before[job] || b.ResumedQueueID == 0 {
			t.Errorf("pipeline %s #%d: %s on %q (resumed as item %d), want SUCCESS, resumed on its own agent %s",
				job, b.Number, b.Result, b.Node, b.ResumedQueueID, before[job])
		}
	}
	for _, job := range freestyle {
		if b := r.buildOf(job); b.Result != "ABORTED" {
			t.Errorf("freestyle %s #%d: %s, want ABORTED (Jenkins aborts freestyle builds on a restart)", job, b.Number, b.Result)
		}
	}
	if n := len(r.pods.createdNames()); n != created {
		t.Errorf("%d agent pods made after the restart (%d before, %d after), want none: resumed blocks belong to their agents",
			n-created, created, n)
	}
	r.assertOneBuildPerAgent()
	r.assertNothingLeft(time.Minute)
}

// An agent's connection drops for 15 s in the middle of a pipeline build: the provisioner keeps the
// agent, the agent reconnects, and the build finishes on the same node. Meanwhile no other build
// lands on it.
func TestDroppedConnectionReconnects(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.jenkins.CreatePipelineJob("web", "nodejs", 25*time.Second)
	r.queue(1, "web")
	node := r.running([]string{"web"}, time.Minute)["web"]

	// Refuse agent connections for 15 s, then drop the agent: it retries until Jenkins takes it back.
	r.jenkins.Faults().Only("wsagents")
	r.jenkins.Faults().OutageFor(15 * time.Second)
	if !r.jenkins.DisconnectAgent(node) {
		t.Fatalf("agent %s was not connected", node)
	}
	// Another build that the agent's labels would serve, queued while it is away.
	r.jenkins.CreatePipelineJob("other", "nodejs", time.Second)
	r.queue(1, "other")

	eventually(t, 45*time.Second, func() (bool, string) {
		for _, n := range r.jenkins.Nodes() {
			if n.Name == node {
				return n.Connected, "agent not reconnected"
			}
		}
		return false, "the agent's node is gone: " + r.pods.summary()
	})
	r.jenkins.Faults().Clear()
	r.waitBuilds(2, 2*time.Minute)
	if b := r.buildOf("web"); b.Result != "SUCCESS" || b.Node != node {
		t.Errorf("web #%d: %s on %q, want SUCCESS on %s, the agent that reconnected", b.Number, b.Result, b.Node, node)
	}
	r.assertOneBuildPerAgent()
	r.assertNothingLeft(time.Minute)
}

// A running agent's pod is killed by someone else (deleted, or evicted through the Eviction API as a
// node drain does): the build cannot go on, so the provisioner cleans up both sides at once (well
// before ORPHAN_GRACE) and says why in an Event naming the cause and the build.
func TestAgentPodKilledMidBuild(t *testing.T) {
	tests := []struct {
		name     string
		kill     func(t *testing.T, ns, pod string)
		wantKind string
	}{
		{"deleted", func(t *testing.T, ns, pod string) {
			mustDo(t, env.Client.CoreV1().Pods(ns).Delete(context.Background(), pod, metav1.DeleteOptions{}))
		}, "DeletedExternally"},
		{"evicted", func(t *testing.T, ns, pod string) {
			mustDo(t, env.Client.PolicyV1().Evictions(ns).Evict(context.Background(),
				&policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: pod, Namespace: ns}}))
		}, "Evicted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{config: func(c *lifecycle.Config) { c.OrphanGrace = 10 * time.Minute }})
			r.jenkins.CreatePipelineJob("web", "nodejs", 10*time.Minute)
			r.queue(1, "web")
			node := r.running([]string{"web"}, time.Minute)["web"]
			build := r.jenkins.URL() + "job/web/1/"

			tt.kill(t, r.ns, node)
			r.assertNothingLeft(30 * time.Second)
			if _, err := env.Client.CoreV1().Secrets(r.ns).Get(context.Background(), node, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				t.Errorf("agent Secret: %v, want it gone", err)
			}
			eventually(t, 10*time.Second, func() (bool, string) {
				var msgs []string
				for _, e := range r.events() {
					if e.InvolvedObject.Name == node && strings.Contains(e.Message, tt.wantKind) && strings.Contains(e.Message, build) {
						return true, ""
					}
					msgs = append(msgs, e.Reason+": "+e.Message)
				}
				return false, fmt.Sprintf("no Event on %s naming %s and %s; events: %q", node, tt.wantKind, build, msgs)
			})
			r.waitBuilds(1, 30*time.Second)
			r.assertOneBuildPerAgent()
		})
	}
}

// events lists every Event of the rig's namespace.
func (r *rig) events() []corev1.Event {
	r.t.Helper()
	list, err := env.Client.CoreV1().Events(r.ns).List(context.Background(), metav1.ListOptions{})
	if err != nil {
		r.t.Fatal(err)
	}
	return list.Items
}
