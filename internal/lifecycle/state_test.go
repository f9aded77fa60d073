package lifecycle

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func testPod(age time.Duration, mutate ...func(*corev1.Pod)) *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "maven-abcde", CreationTimestamp: metav1.NewTime(t0.Add(-age)),
			Annotations: map[string]string{annotationConnectTimeout: "5m0s"}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	for _, m := range mutate {
		m(p)
	}
	return p
}

func running(p *corev1.Pod) { p.Status.Phase = corev1.PodRunning }

func waiting(reason, msg string) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "jnlp", State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}
	}
}

func computer(mutate ...func(*jenkins.Computer)) *jenkins.Computer {
	c := &jenkins.Computer{Name: "maven-abcde", Offline: true, NumExecutors: 1, Executors: []jenkins.Executor{{Idle: true}}}
	for _, m := range mutate {
		m(c)
	}
	return c
}

func online(c *jenkins.Computer) { c.Offline, c.Connected = false, true }

// disconnected is an agent whose channel is gone (a marked one stays temporarily offline).
func disconnected(c *jenkins.Computer) { c.Offline, c.Connected = true, false }

func building(c *jenkins.Computer) {
	c.Offline, c.Connected = false, true
	c.Idle = false
	c.Executors = []jenkins.Executor{{Build: &jenkins.Build{URL: "http://j/job/a/1/", Number: 1}}}
}

// marked carries an offline mark; the agent is connected (as when we marked it) unless disconnected
// is applied after.
func marked(reason string) func(*jenkins.Computer) {
	return func(c *jenkins.Computer) {
		c.Offline, c.Connected = true, true
		c.TemporarilyOffline = true
		c.OfflineReason = reason
	}
}

func TestClassify(t *testing.T) {
	opts := classifyOptions{UnschedulableGrace: time.Minute, DefaultConnectTimeout: 5 * time.Minute, OrphanGrace: 30 * time.Second,
		ConfigErrorGrace: 15 * time.Second}
	seen := t0.Add(-time.Second)
	tests := []struct {
		name      string
		pod       *corev1.Pod
		computer  *jenkins.Computer
		want      State
		wantKind  ReasonKind
		wantInWhy string
	}{
		{"node made, pod pending", testPod(2 * time.Second), computer(), Starting, "", ""},
		{"agent connected", testPod(5*time.Second, running), computer(online), Idle, "", ""},
		{"build running", testPod(9*time.Second, running), computer(building), Busy, "", ""},
		{"build running and marked stays busy", testPod(9*time.Second, running), computer(building, marked(reasonBusy+" (x)")), Busy, "", ""},
		{"marked busy, build over", testPod(20*time.Second, running), computer(marked(reasonBusy + " (x)")), Done, KindBuildFinished, "build finished"},
		{"released", testPod(20*time.Second, running), computer(marked(reasonReleased)), Released, KindReleased, "released"},
		{"someone else's offline mark is not ours", testPod(20*time.Second, running), computer(online, marked("maintenance")), Starting, "", ""},
		{"image cannot be pulled", testPod(5*time.Second, waiting("ErrImagePull", `Failed to pull image "x"`)), computer(), Failed, KindImagePull, "ErrImagePull (container jnlp): Failed to pull image \"x\""},
		{"image pull back-off", testPod(5*time.Second, waiting("ImagePullBackOff", "Back-off")), computer(), Failed, KindImagePull, "ImagePullBackOff"},
		{"config error inside its grace", testPod(5*time.Second, waiting("CreateContainerConfigError", `secret "x" not found`)), computer(), Starting, "", ""},
		{"config error past its grace", testPod(20*time.Second, waiting("CreateContainerConfigError", `secret "x" not found`)), computer(), Failed, KindCreateConfig, "CreateContainerConfigError"},
		{"container crashed", testPod(5*time.Second, running, func(p *corev1.Pod) {
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "jnlp", State: corev1.ContainerState{
				Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error"}}}}
		}), computer(), Failed, KindCrash, "Error (container jnlp): exit code 1"},
		{"pod failed", testPod(5*time.Second, func(p *corev1.Pod) { p.Status.Phase = corev1.PodFailed; p.Status.Reason = "Evicted" }), computer(), Failed, KindPodFailed, "Evicted"},
		{"unschedulable within grace", testPod(30*time.Second, unschedulable(30*time.Second)), computer(), Starting, "", ""},
		{"unschedulable past grace", testPod(2*time.Minute, unschedulable(2*time.Minute)), computer(), Failed, KindUnschedulable, "Unschedulable for more than 1m0s"},
		{"connect timeout from the pod's annotation", testPod(6*time.Minute, running), computer(), Failed, KindConnectTimeout, "agent not online within connectTimeout 5m0s"},
		{"short connect timeout annotation", testPod(40*time.Second, running, func(p *corev1.Pod) { p.Annotations[annotationConnectTimeout] = "30s" }), computer(), Failed, KindConnectTimeout, "connectTimeout 30s"},
		{"pod without node, young", testPod(10 * time.Second), nil, Starting, "", ""},
		{"pod without node, past grace", testPod(time.Minute), nil, Orphan, KindPodWithoutNode, "without a Jenkins node"},
		{"pod newer than the Jenkins read is not judged", testPod(0), nil, Starting, "", ""},
		{"pod made within a second of the read is not judged (timestamps have 1 s resolution)", testPod(1500 * time.Millisecond), nil, Starting, "", ""},
		{"agent exited, node gone: no grace needed", testPod(10*time.Second, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }), nil, Orphan, KindPodWithoutNode, "agent exited"},
		{"node without pod", nil, computer(), Orphan, KindNodeWithoutPod, "without a pod"},
		{"terminating", testPod(time.Minute, func(p *corev1.Pod) { now := metav1.NewTime(t0); p.DeletionTimestamp = &now }), computer(online), Terminating, "", ""},
		{"retained", testPod(time.Minute, func(p *corev1.Pod) { p.Annotations[annotationRetainUntil] = t0.Format(time.RFC3339) }), nil, Retained, "", ""},
		{"pod succeeded without a build", testPod(time.Minute, func(p *corev1.Pod) { p.Status.Phase = corev1.PodSucceeded }), computer(), Failed, KindAgentExited, "agent exited before running a build"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, r := classify(tt.pod, tt.computer, t0, seen, opts)
			if got != tt.want {
				t.Fatalf("state = %s (%q), want %s", got, r.Detail, tt.want)
			}
			if r.Kind != tt.wantKind {
				t.Errorf("reason kind = %q, want %q", r.Kind, tt.wantKind)
			}
			why := r.Detail
			if tt.wantInWhy != "" && !strings.Contains(why, tt.wantInWhy) {
				t.Errorf("reason = %q, want it to contain %q", why, tt.wantInWhy)
			}
		})
	}
}

func unschedulable(since time.Duration) func(*corev1.Pod) {
	return func(p *corev1.Pod) {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: corev1.PodReasonUnschedulable, Message: "0/1 nodes are available", LastTransitionTime: metav1.NewTime(t0.Add(-since))}}
	}
}

// A Jenkins view that is old by the time it is used (a slow or retried read) must not condemn pods
// made after it was taken, however old they are by now.
func TestClassifyJudgesByTheJenkinsViewsTime(t *testing.T) {
	opts := classifyOptions{DefaultConnectTimeout: 5 * time.Second, OrphanGrace: 5 * time.Second}
	seen := t0.Add(-10 * time.Second) // the computer list was read 10 s ago
	pod := testPod(9500*time.Millisecond, running)
	pod.Annotations[annotationConnectTimeout] = "5s"
	if got, why := classify(pod, nil, t0, seen, opts); got != Starting {
		t.Errorf("pod made after the view, node missing from it: %s (%s), want starting", got, why)
	}
	if got, why := classify(pod, computer(), t0, seen, opts); got != Starting {
		t.Errorf("pod made after the view, offline in it: %s (%s), want starting", got, why)
	}
	old := testPod(20*time.Second, running)
	old.Annotations[annotationConnectTimeout] = "5s"
	if got, _ := classify(old, computer(), t0, seen, opts); got != Failed {
		t.Errorf("pod 10 s old when the view was taken, still offline: %s, want failed", got)
	}
}

func TestNodeDescriptionRoundTrip(t *testing.T) {
	desc := nodeDescription(testID, "maven-jdk17-x", "maven-jdk17", t0)
	got, ok := parseNodeDescription(desc)
	if !ok || got.Template != "maven-jdk17" || !got.Created.Equal(t0) || got.Namespace != "ci" || got.Installation != testID.ID {
		t.Fatalf("parseNodeDescription(%q) = %+v, %v", desc, got, ok)
	}
	for _, foreign := range []string{"", "static agent", placeholderDescription, "[jenkins-agent-provisioner] template=Bad created=x"} {
		if _, ok := parseNodeDescription(foreign); ok {
			t.Errorf("parseNodeDescription(%q) recognised a node that is not one of our agents", foreign)
		}
	}
}
