package nodesim

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func running() corev1.ContainerState {
	return corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
}

func waiting(reason string) corev1.ContainerState {
	return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
}

func exited(code int32) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}
}

func TestPhaseOf(t *testing.T) {
	twoContainers := func(policy corev1.RestartPolicy) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: policy, Containers: []corev1.Container{{Name: "jnlp"}, {Name: "maven"}}}}
	}
	withInit := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
		InitContainers: []corev1.Container{{Name: "init"}}, Containers: []corev1.Container{{Name: "jnlp"}}}}
	st := func(states ...corev1.ContainerState) corev1.PodStatus {
		var out corev1.PodStatus
		for i, s := range states {
			out.ContainerStatuses = append(out.ContainerStatuses, corev1.ContainerStatus{Name: []string{"jnlp", "maven"}[i], State: s})
		}
		return out
	}
	tests := []struct {
		name     string
		pod      *corev1.Pod
		status   corev1.PodStatus
		terminal bool
		want     corev1.PodPhase
	}{
		{"nothing reported", twoContainers(corev1.RestartPolicyNever), corev1.PodStatus{}, false, corev1.PodPending},
		{"creating", twoContainers(corev1.RestartPolicyNever), st(waiting("ContainerCreating"), waiting("ContainerCreating")), false, corev1.PodPending},
		{"one pulling", twoContainers(corev1.RestartPolicyNever), st(running(), waiting("ImagePullBackOff")), false, corev1.PodPending},
		{"all running", twoContainers(corev1.RestartPolicyNever), st(running(), running()), false, corev1.PodRunning},
		{"agent done, sidecar running", twoContainers(corev1.RestartPolicyNever), st(exited(0), running()), false, corev1.PodRunning},
		{"all exited 0", twoContainers(corev1.RestartPolicyNever), st(exited(0), exited(0)), false, corev1.PodSucceeded},
		{"one failed, never", twoContainers(corev1.RestartPolicyNever), st(exited(1), exited(0)), false, corev1.PodFailed},
		{"one failed, on failure", twoContainers(corev1.RestartPolicyOnFailure), st(exited(1), exited(0)), false, corev1.PodRunning},
		{"all exited, always", twoContainers(corev1.RestartPolicyAlways), st(exited(0), exited(0)), false, corev1.PodRunning},
		{"all exited, always, terminal", twoContainers(corev1.RestartPolicyAlways), st(exited(143), exited(0)), true, corev1.PodFailed},
		{"init pending", withInit, corev1.PodStatus{
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: waiting("ErrImagePull")}},
			ContainerStatuses:     []corev1.ContainerStatus{{Name: "jnlp", State: waiting("PodInitializing")}},
		}, false, corev1.PodPending},
		{"init failed", withInit, corev1.PodStatus{
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: exited(2)}},
			ContainerStatuses:     []corev1.ContainerStatus{{Name: "jnlp", State: waiting("PodInitializing")}},
		}, false, corev1.PodFailed},
		{"init done", withInit, corev1.PodStatus{
			InitContainerStatuses: []corev1.ContainerStatus{{Name: "init", State: exited(0)}},
			ContainerStatuses:     []corev1.ContainerStatus{{Name: "jnlp", State: running()}},
		}, false, corev1.PodRunning},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := phaseOf(tt.pod, &tt.status, tt.terminal); got != tt.want {
				t.Errorf("phaseOf = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestRefreshStatusConditions(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "jnlp"}, {Name: "maven"}}}}
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Minute))
	st := corev1.PodStatus{PodIP: "10.244.0.2", ContainerStatuses: []corev1.ContainerStatus{
		{Name: "jnlp", State: running(), Ready: true},
		{Name: "maven", State: waiting("ContainerCreating")},
	}}
	refreshStatus(pod, &st, false, t0)
	st.ContainerStatuses[1].State, st.ContainerStatuses[1].Ready = running(), true
	refreshStatus(pod, &st, false, t1)

	type cond struct {
		Type    corev1.PodConditionType
		Status  corev1.ConditionStatus
		Reason  string
		Changed metav1.Time
	}
	var got []cond
	for _, c := range st.Conditions {
		got = append(got, cond{c.Type, c.Status, c.Reason, c.LastTransitionTime})
	}
	want := []cond{
		{corev1.PodScheduled, corev1.ConditionTrue, "", t0},
		{corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", t0},
		{corev1.PodInitialized, corev1.ConditionTrue, "", t0},
		{corev1.ContainersReady, corev1.ConditionTrue, "", t1},
		{corev1.PodReady, corev1.ConditionTrue, "", t1},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	if st.Phase != corev1.PodRunning {
		t.Errorf("phase = %s, want Running", st.Phase)
	}
}

func TestKillStatus(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
		Containers: []corev1.Container{{Name: "jnlp"}, {Name: "maven"}, {Name: "pulling"}}}}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	st := corev1.PodStatus{PodIP: "10.244.0.2", ContainerStatuses: []corev1.ContainerStatus{
		{Name: "jnlp", State: running(), Ready: true},
		{Name: "maven", State: running(), Ready: true},
		{Name: "pulling", State: waiting("ImagePullBackOff")},
	}}
	if !killStatus(pod, &st, now) {
		t.Fatal("killStatus reported no change for a running pod")
	}
	type out struct {
		Name   string
		Code   int32
		Reason string
	}
	var got []out
	for _, cs := range st.ContainerStatuses {
		if cs.State.Terminated == nil {
			t.Fatalf("%s not terminated: %+v", cs.Name, cs.State)
		}
		got = append(got, out{cs.Name, cs.State.Terminated.ExitCode, cs.State.Terminated.Reason})
	}
	want := []out{{"jnlp", 143, "Error"}, {"maven", 137, "Error"}, {"pulling", 137, "ContainerStatusUnknown"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("terminated states (-want +got):\n%s", diff)
	}
	if st.Phase != corev1.PodFailed {
		t.Errorf("phase = %s, want Failed", st.Phase)
	}
	if killStatus(pod, &st, now) {
		t.Error("killStatus reported a change for a pod already stopped")
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "x", "EMPTY": ""}
	tests := []struct{ in, want string }{
		{"plain", "plain"},
		{"$(A)/y", "x/y"},
		{"$(EMPTY)z", "z"},
		{"$(MISSING)", "$(MISSING)"},
		{"$$(A)", "$(A)"},
		{"cost $5", "cost $5"},
		{"$(A", "$(A"},
		{"trailing $", "trailing $"},
	}
	for _, tt := range tests {
		if got := expand(tt.in, env); got != tt.want {
			t.Errorf("expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestAgentArgs(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want remotingArgs
	}{
		{"plugin style", map[string]string{"JENKINS_URL": "http://j/", "JENKINS_SECRET": "s", "JENKINS_AGENT_NAME": "a", "REMOTING_OPTS": "-noReconnect -webSocket"},
			nil, remotingArgs{URL: "http://j/", Secret: "s", Name: "a", NoReconnect: true, WebSocket: true}},
		{"rendered default", map[string]string{"JENKINS_WEB_SOCKET": "true", "REMOTING_OPTS": "-noReconnectAfter 10m"}, nil,
			remotingArgs{WebSocket: true, NoReconnectAfter: 10 * time.Minute, HasNoReconnectAfter: true}},
		{"-noReconnectAfter without a value", map[string]string{"REMOTING_OPTS": "-noReconnectAfter"}, nil,
			remotingArgs{HasNoReconnectAfter: true, Invalid: `option "-noReconnectAfter" takes an operand`}},
		{"-noReconnectAfter unparseable", map[string]string{"REMOTING_OPTS": "-noReconnectAfter 5 minutes"}, nil,
			remotingArgs{NoReconnectAfter: 5 * time.Millisecond, HasNoReconnectAfter: true}},
		{"-noReconnectAfter bad unit", map[string]string{}, []string{"-noReconnectAfter", "5w"},
			remotingArgs{HasNoReconnectAfter: true, Invalid: `'5w' is not a valid simple duration: unknown unit 'w'`}},
		{"both reconnect options", map[string]string{"REMOTING_OPTS": "-noReconnect -noReconnectAfter 1m"}, nil,
			remotingArgs{NoReconnect: true, NoReconnectAfter: time.Minute, HasNoReconnectAfter: true,
				Invalid: `option "-noReconnectAfter" cannot be used with the option(s) [-noReconnect]`}},
		{"JENKINS_NAME fallback", map[string]string{"JENKINS_URL": "u", "JENKINS_SECRET": "s", "JENKINS_NAME": "n"}, nil, remotingArgs{URL: "u", Secret: "s", Name: "n"}},
		{"quoted option", map[string]string{"REMOTING_OPTS": `"-noReconnect"`}, nil, remotingArgs{NoReconnect: true}},
		{"option in args", map[string]string{}, []string{"-noReconnect"}, remotingArgs{NoReconnect: true}},
		{"similar option is not it", map[string]string{"REMOTING_OPTS": "-noReconnectAfter 5"}, nil,
			remotingArgs{NoReconnectAfter: 5 * time.Millisecond, HasNoReconnectAfter: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, agentArgs(tt.env, tt.args)); diff != "" {
				t.Errorf("agentArgs (-want +got):\n%s", diff)
			}
		})
	}
}
