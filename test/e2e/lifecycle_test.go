package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// createJobs makes n jobs per kind. Separate jobs, because Jenkins merges a second queue item of a
// job with the first and runs a freestyle job's builds one at a time.
func createJobs(j *jenkinstest.Server, n int, d time.Duration) (maven, docker, pipeline []string) {
	for i := range n {
		maven = append(maven, fmt.Sprintf("compile-%02d", i))
		j.CreateFreestyleJob(maven[i], "maven", d)
		docker = append(docker, fmt.Sprintf("image-%02d", i))
		j.CreateFreestyleJob(docker[i], "linux && docker", d)
		pipeline = append(pipeline, fmt.Sprintf("web-%02d", i))
		j.CreatePipelineJob(pipeline[i], "nodejs", d)
	}
	return maven, docker, pipeline
}

// Every build runs, each on a pod of its own that served exactly that build, and afterwards nothing
// of ours remains: the product's central promise.
func TestEachBuildRunsOnItsOwnPod(t *testing.T) {
	r := newRig(t, rigOptions{})
	maven, docker, pipeline := createJobs(r.jenkins, 10, 1500*time.Millisecond)
	var jobs []string
	for i := range maven {
		jobs = append(jobs, maven[i], docker[i], pipeline[i])
	}
	r.queue(len(jobs), jobs...)

	builds := r.waitBuilds(30, 3*time.Minute)
	pods := r.pods.createdNames()
	wantTemplate := map[string]string{"compile": "maven", "image": "docker", "web": "nodejs"}
	byNode := map[string][]string{}
	for _, b := range builds {
		id := fmt.Sprintf("%s #%d", b.Job, b.Number)
		byNode[b.Node] = append(byNode[b.Node], id)
		tmpl, ok := pods[b.Node]
		if !ok {
			t.Errorf("%s ran on %q, which is not an agent pod the provisioner made", id, b.Node)
			continue
		}
		if want := wantTemplate[strings.SplitN(b.Job, "-", 2)[0]]; tmpl != want {
			t.Errorf("%s ran on a %s agent, want %s", id, tmpl, want)
		}
	}
	for node, ran := range byNode {
		if len(ran) != 1 {
			t.Errorf("agent %s ran %d builds %v, want exactly 1", node, len(ran), ran)
		}
	}
	if len(byNode) != 30 {
		t.Errorf("30 builds ran on %d agents, want 30", len(byNode))
	}
	r.assertNothingLeft(time.Minute)
	// Events are recorded asynchronously: give the last ones a moment.
	eventually(t, 10*time.Second, func() (bool, string) {
		n := len(events(t, r.ns, "BuildFinished"))
		return n == 30, fmt.Sprintf("%d BuildFinished events, want one per build (30)", n)
	})
}

// maxAgents and MAX_AGENTS hold through a burst, counted from every pod the apiserver ever showed.
func TestCapsHoldThroughABurst(t *testing.T) {
	const perTemplate, global = 6, 10
	r := newRig(t, rigOptions{maxPerTemplate: perTemplate, maxAgents: global})
	maven, docker, _ := createJobs(r.jenkins, 25, time.Second)
	r.queue(50, append(maven, docker...)...)

	r.waitBuilds(50, 4*time.Minute)
	r.assertNothingLeft(time.Minute)
	r.pods.mu.Lock()
	defer r.pods.mu.Unlock()
	if r.pods.maxTotal > global {
		t.Errorf("%d agent pods alive at once, MAX_AGENTS is %d", r.pods.maxTotal, global)
	}
	for tmpl, n := range r.pods.maxTemplate {
		if n > perTemplate {
			t.Errorf("template %s had %d pods alive at once, its maxAgents is %d", tmpl, n, perTemplate)
		}
	}
	if r.pods.maxTotal < global {
		t.Logf("note: at most %d pods at once (cap %d)", r.pods.maxTotal, global)
	}
}

// Demand that goes away lets agents that have not started a build go.
func TestCancelledDemandReleasesAgents(t *testing.T) {
	r := newRig(t, rigOptions{connectTimeout: time.Minute, brokenAnnotation: "nodesim.jenkins-agent-provisioner/behaviour: slow-start=30s"})
	r.jenkins.CreateFreestyleJob("slow", "broken", time.Second)
	ids := r.queue(1, "slow")
	eventually(t, 30*time.Second, func() (bool, string) {
		return r.pods.createdFor("broken") == 1, r.pods.summary()
	})
	if err := r.jenkins.Cancel(ids[0]); err != nil {
		t.Fatal(err)
	}
	r.assertNothingLeft(30 * time.Second)
	if got := r.pods.createdFor("broken"); got != 1 {
		t.Errorf("%d pods created for one cancelled build, want 1", got)
	}
}

// Each way an agent can fail before it connects ends with its pod and node removed, an Event with the
// reason, gaps between attempts that grow as the backoff says, and the build running once the cause is
// fixed.
func TestFailuresAreRemovedBackedOffAndRecover(t *testing.T) {
	tests := []struct {
		name       string
		annotation string
		image      string
		wantReason string
	}{
		{name: "image cannot be pulled", image: "nonexistent.invalid/agent:1", wantReason: "ErrImagePull"},
		{name: "agent container crashes", annotation: "nodesim.jenkins-agent-provisioner/behaviour: crash", wantReason: "exit code 1"},
		{name: "pod unschedulable", annotation: "nodesim.jenkins-agent-provisioner/behaviour: unschedulable", wantReason: "Unschedulable"},
		{name: "agent never connects", annotation: "nodesim.jenkins-agent-provisioner/behaviour: no-connect", wantReason: "connectTimeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, rigOptions{connectTimeout: 3 * time.Second, brokenAnnotation: tt.annotation, brokenImage: tt.image})
			r.jenkins.CreateFreestyleJob("fragile", "broken", 500*time.Millisecond)
			r.queue(1, "fragile")

			// Three failed attempts, each removed, with Events naming the cause.
			eventually(t, 90*time.Second, func() (bool, string) {
				return r.pods.createdFor("broken") >= 3 && r.pods.liveCount() == 0, r.pods.summary()
			})
			failed := events(t, r.ns, "AgentFailed")
			if len(failed) == 0 {
				t.Fatal("no AgentFailed event")
			}
			if !strings.Contains(failed[0].Message, tt.wantReason) {
				t.Errorf("AgentFailed event says %q, want it to name %q", failed[0].Message, tt.wantReason)
			}
			gaps := r.pods.creationGaps("broken")
			// Backoff 1s, 2s, 4s after the 1st, 2nd, 3rd failure: the gap between attempts is at
			// least the backoff (failure detection only adds to it).
			for i, g := range gaps[:min(len(gaps), 3)] {
				want := time.Second << i
				if g < want-200*time.Millisecond {
					t.Errorf("attempt %d came %s after the previous one, want at least the backoff %s (gaps %v)", i+2, g, want, gaps)
				}
			}

			// Fix the cause: a template without the fault (and a connect timeout that a loaded
			// machine cannot miss).
			r.writeTemplates("", "", 2*time.Minute)
			r.waitBuilds(1, 90*time.Second)
			r.assertNothingLeft(30 * time.Second)
		})
	}
}

// On SIGTERM-like shutdown the controller stops provisioning and leaves running agents alone.
func TestShutdownLeavesRunningAgentsAlone(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.jenkins.CreateFreestyleJob("long", "maven", 8*time.Second)
	r.queue(1, "long")
	eventually(t, 60*time.Second, func() (bool, string) {
		for _, b := range r.jenkins.Builds() {
			if !b.Started.IsZero() && !b.Done {
				return true, ""
			}
		}
		return false, "build not started; " + r.pods.summary()
	})
	r.stopController()
	r.jenkins.CreateFreestyleJob("after", "maven", time.Second)
	r.queue(1, "after")
	time.Sleep(2 * time.Second)
	if n := r.pods.createdFor("maven"); n != 1 {
		t.Errorf("%d maven pods after shutdown, want the 1 running agent and no new one", n)
	}
	builds := r.waitBuilds(1, 30*time.Second)
	if builds[0].Job != "long" {
		t.Errorf("finished build is %s, want the running one to finish undisturbed", builds[0].Job)
	}
	var nodes []string
	for _, n := range r.jenkins.Nodes() {
		nodes = append(nodes, n.Name)
	}
	if len(nodes) < 2 {
		t.Errorf("Jenkins nodes after shutdown: %v, want the agent's node left alone", nodes)
	}
}

// Leftovers of a crash, or of someone else's hand, are removed once older than the grace: a Jenkins
// node of ours without a pod, a pod of ours without a node, a Secret of ours without a pod. Nodes and
// pods that are not ours are never touched.
func TestReaperRemovesHalfAgentsAndOnlyThem(t *testing.T) {
	r := newRig(t, rigOptions{noController: true})
	ctx := context.Background()
	// What the controller will read as this installation's identity (the Secret is made once).
	id, err := lifecycle.EnsureIdentity(ctx, env.Client, r.ns, "")
	mustDo(t, err)
	ourLabels := map[string]string{podtemplate.LabelManagedBy: podtemplate.ManagedByValue,
		podtemplate.LabelName: podtemplate.NameValue, podtemplate.LabelTemplate: "maven"}

	// A node of ours whose pod never came (crash between the two steps), and a static agent.
	mustDo(t, r.client.CreateNode(ctx, jenkins.NodeSpec{Name: "maven-crash",
		Description: id.NodeDescription("maven-crash", "maven", time.Now().Add(-time.Hour)),
		Labels:      []string{"maven"}}))
	mustDo(t, r.client.CreateNode(ctx, jenkins.NodeSpec{Name: "static-agent", Description: "the team's own machine", Labels: []string{"maven"}}))
	// A pod of ours whose node is gone, a Secret of ours without a pod, and someone else's pod.
	pod := func(name string, labels map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "jnlp", Image: "jenkins/inbound-agent:x",
				Env: []corev1.EnvVar{{Name: "JENKINS_URL", Value: r.jenkins.URL()}}}}}}
	}
	nonode := pod("maven-nonode", ourLabels)
	nonode.Annotations = map[string]string{lifecycle.AnnotationCreatedBy: id.CreationRecord("maven-nonode")}
	_, err = env.Client.CoreV1().Pods(r.ns).Create(ctx, nonode, metav1.CreateOptions{})
	mustDo(t, err)
	_, err = env.Client.CoreV1().Pods(r.ns).Create(ctx, pod("someone-elses", map[string]string{"app": "other"}), metav1.CreateOptions{})
	mustDo(t, err)
	_, err = env.Client.CoreV1().Secrets(r.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "maven-nopod", Labels: ourLabels},
		StringData: map[string]string{podtemplate.SecretKey: "x"}}, metav1.CreateOptions{})
	mustDo(t, err)

	r.startController() // OrphanGrace 5s in the rig
	r.assertNothingLeft(45 * time.Second)
	var names []string
	for _, n := range r.jenkins.Nodes() {
		names = append(names, n.Name)
	}
	if !slices.Contains(names, "static-agent") {
		t.Errorf("the static agent was deleted; Jenkins nodes now %v", names)
	}
	if _, err := env.Client.CoreV1().Pods(r.ns).Get(ctx, "someone-elses", metav1.GetOptions{}); err != nil {
		t.Errorf("someone else's pod: %v", err)
	}
}

func mustDo(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// With the default intervals (poll 1 s, busy watch 250 ms), builds much shorter than a poll still
// get a pod each, while more builds of the same label wait: the guarantee the README states.
func TestShortBuildsEachGetTheirOwnPod(t *testing.T) {
	r := newRig(t, rigOptions{maxPerTemplate: 4, config: func(c *lifecycle.Config) {
		c.PollInterval = time.Second
		c.BusyPollInterval = 250 * time.Millisecond
	}})
	maven, _, _ := createJobs(r.jenkins, 16, 600*time.Millisecond)
	r.queue(len(maven), maven...)
	builds := r.waitBuilds(len(maven), 2*time.Minute)
	byNode := map[string][]string{}
	for _, b := range builds {
		byNode[b.Node] = append(byNode[b.Node], b.Job)
	}
	for node, jobs := range byNode {
		if len(jobs) != 1 {
			t.Errorf("agent %s ran %d builds %v of 600 ms, want 1", node, len(jobs), jobs)
		}
	}
	r.assertNothingLeft(time.Minute)
}
