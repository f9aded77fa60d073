package nodesim

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// remotingScale plays remoting's reconnect timing a hundred times faster: its 10 s waits take
// 100 ms, "-noReconnectAfter 10s" 100 ms.
const remotingScale = 0.01

// agentUp starts an inbound node and its agent pod with the given remoting options and waits until
// the agent is connected.
func agentUp(t *testing.T, j *jenkins, ns, name, opts string) {
	t.Helper()
	j.createInboundNode(name, name)
	createSecret(t, ns, name, j.nodeSecret(name))
	createPod(t, agentPod(ns, name, j.URL(), name, opts))
	eventually(t, "agent connected", func() (bool, string) {
		n, ok := j.node(name)
		return ok && n.Connected, fmt.Sprintf("%+v", n)
	})
}

func buildOf(j *jenkins, job string) (b struct {
	Done             bool
	Result, Node     string
	ResumedQueueID   int64
	PlaceholderQueue int64
}, found bool) {
	for _, r := range j.Builds() {
		if r.Job == job {
			b.Done, b.Result, b.Node, b.ResumedQueueID, b.PlaceholderQueue = r.Done, r.Result, r.Node, r.ResumedQueueID, r.PlaceholderQueueID
			return b, true
		}
	}
	return b, false
}

// Remoting's reconnect rules against the emulator: an agent without -noReconnect comes back after
// a restart or a dropped connection and its pipeline build resumes on it; with -noReconnect the
// agent exits 0 and the pod completes; -noReconnectAfter bounds the retries; options remoting
// refuses end the agent before it connects.
func TestAgentReconnects(t *testing.T) {
	ns := newNamespace(t)
	sim := startSim(t, Config{Namespace: ns, NodeName: "nodesim-reconnect", RemotingTimeScale: remotingScale})

	t.Run("restart: the pipeline build resumes on its agent", func(t *testing.T) {
		t.Parallel()
		j := newJenkins(t)
		const name = "resume-ws"
		agentUp(t, j, ns, name, "-webSocket -noReconnectAfter 10m")
		j.CreatePipelineJob("p", name, 2*time.Second)
		if _, err := j.Schedule("p"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "node block on the agent", func() (bool, string) {
			b, _ := buildOf(j, "p")
			return b.Node == name, fmt.Sprintf("%+v", b)
		})
		<-j.Restart(300*time.Millisecond, 300*time.Millisecond)
		eventually(t, "the pipeline build done", func() (bool, string) {
			b, _ := buildOf(j, "p")
			return b.Done, fmt.Sprintf("%+v", b)
		})
		if b, _ := buildOf(j, "p"); b.Result != "SUCCESS" || b.Node != name || b.ResumedQueueID == 0 {
			t.Errorf("build %+v, want SUCCESS on %s after a resume", b, name)
		}
		if n := countReason(sim, name, "AgentConnected"); n < 2 {
			t.Errorf("agent connected %d times, want a reconnection", n)
		}
		if p, err := getPod(t, ns, name); err != nil || p.Status.Phase != corev1.PodRunning {
			t.Errorf("pod after the restart: %v %v, want Running", describeOrNil(p), err)
		}
	})

	t.Run("dropped connection over TCP: reconnects, the build finishes", func(t *testing.T) {
		t.Parallel()
		j := newJenkins(t)
		const name = "drop-tcp"
		agentUp(t, j, ns, name, "")
		j.CreatePipelineJob("p", name, time.Second)
		if _, err := j.Schedule("p"); err != nil {
			t.Fatal(err)
		}
		eventually(t, "node block on the agent", func() (bool, string) {
			b, _ := buildOf(j, "p")
			return b.Node == name, fmt.Sprintf("%+v", b)
		})
		if !j.DisconnectAgent(name) {
			t.Fatal("agent was not connected")
		}
		eventually(t, "the pipeline build done", func() (bool, string) {
			b, _ := buildOf(j, "p")
			return b.Done, fmt.Sprintf("%+v", b)
		})
		if b, _ := buildOf(j, "p"); b.Result != "SUCCESS" {
			t.Errorf("build %+v, want SUCCESS", b)
		}
		if n := countReason(sim, name, "AgentDisconnected"); n != 1 {
			t.Errorf("%d disconnections, want 1", n)
		}
	})

	t.Run("-noReconnect: the pod completes on a restart", func(t *testing.T) {
		t.Parallel()
		j := newJenkins(t)
		const name = "no-reconnect"
		agentUp(t, j, ns, name, "-noReconnect")
		j.Restart(time.Second, time.Second)
		p := waitPod(t, ns, name, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		if term := containerStatus(p, "jnlp").State.Terminated; term == nil || term.ExitCode != 0 {
			t.Errorf("agent container %s, want exit 0", stateText(containerStatus(p, "jnlp").State))
		}
	})

	t.Run("-noReconnectAfter: gives up once its node is gone", func(t *testing.T) {
		t.Parallel()
		j := newJenkins(t)
		const name = "bounded"
		agentUp(t, j, ns, name, "-webSocket -noReconnectAfter 10s")
		j.deleteNode(name)
		p := waitPod(t, ns, name, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		if term := containerStatus(p, "jnlp").State.Terminated; term == nil || term.ExitCode != 0 {
			t.Errorf("agent container %s, want exit 0", stateText(containerStatus(p, "jnlp").State))
		}
		if n := countReason(sim, name, "AgentRefused"); n < 1 {
			t.Errorf("%d refused reconnects, want some before giving up", n)
		}
	})

	t.Run("options remoting refuses: exit 0, never connected", func(t *testing.T) {
		t.Parallel()
		j := newJenkins(t)
		const name = "bad-options"
		j.createInboundNode(name, name)
		createSecret(t, ns, name, j.nodeSecret(name))
		createPod(t, agentPod(ns, name, j.URL(), name, "-noReconnect -noReconnectAfter 1m"))
		p := waitPod(t, ns, name, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
		if term := containerStatus(p, "jnlp").State.Terminated; term == nil || term.ExitCode != 0 {
			t.Errorf("agent container %s, want exit 0", stateText(containerStatus(p, "jnlp").State))
		}
		if n := countReason(sim, name, "AgentConnected"); n != 0 {
			t.Errorf("connected %d times, want never", n)
		}
	})
}

func describeOrNil(p *corev1.Pod) string {
	if p == nil {
		return "<no pod>"
	}
	return describe(p)
}
