package nodesim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAcceptance is the hand-run check: an inbound node made in Jenkins, a pod carrying its
// identity (secret through a secretKeyRef), a build that lands on it, and the pod Succeeded once
// Jenkins deletes the node.
func TestAcceptance(t *testing.T) {
	ns := newNamespace(t)
	j := newJenkins(t)
	sim := startSim(t, Config{Namespace: ns, NodeName: "nodesim-acceptance"})

	const name, label = "maven-x7k2p", "maven"
	j.createInboundNode(name, label)
	secret := j.nodeSecret(name)
	if len(secret) != 64 {
		t.Fatalf("secret from jenkins-agent.jnlp is %q, want 64 hex characters", secret)
	}
	createSecret(t, ns, name, secret)
	createPod(t, agentPod(ns, name, j.URL(), name, "-noReconnect"))

	p := waitPod(t, ns, name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if p.Spec.NodeName != "nodesim-acceptance" {
		t.Errorf("bound to %q, want nodesim-acceptance", p.Spec.NodeName)
	}
	if p.Status.PodIP == "" || p.Status.HostIP == "" || p.Status.StartTime == nil {
		t.Errorf("podIP=%q hostIP=%q startTime=%v: want all set", p.Status.PodIP, p.Status.HostIP, p.Status.StartTime)
	}
	var conds []string
	for _, c := range p.Status.Conditions {
		conds = append(conds, fmt.Sprintf("%s=%s", c.Type, c.Status))
	}
	slices.Sort(conds)
	wantConds := []string{"ContainersReady=True", "Initialized=True", "PodReadyToStartContainers=True", "PodScheduled=True", "Ready=True"}
	if diff := cmp.Diff(wantConds, conds); diff != "" {
		t.Errorf("conditions (-want +got):\n%s", diff)
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Running == nil || !cs.Ready || cs.Started == nil || !*cs.Started || cs.ContainerID == "" || cs.ImageID == "" {
			t.Errorf("container %s: %+v, want running, ready, started, with IDs", cs.Name, cs)
		}
	}

	eventually(t, "agent connected in Jenkins", func() (bool, string) {
		n, ok := j.node(name)
		return ok && n.Connected, fmt.Sprintf("%+v", n)
	})

	j.CreateFreestyleJob("build-on-maven", label, 300*time.Millisecond)
	queueID, err := j.Schedule("build-on-maven")
	if err != nil {
		t.Fatalf("schedule: %v", err)
	}
	eventually(t, "build done on the agent", func() (bool, string) {
		for _, b := range j.Builds() {
			if b.QueueID == queueID {
				return b.Done && b.Node == name, fmt.Sprintf("%+v", b)
			}
		}
		return false, "no build yet"
	})

	j.deleteNode(name)
	p = waitPod(t, ns, name, "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	for _, cs := range p.Status.ContainerStatuses {
		if cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 || cs.State.Terminated.Reason != "Completed" {
			t.Errorf("container %s: %s, want terminated 0 Completed", cs.Name, stateText(cs.State))
		}
	}
	if got := condition(p, corev1.PodReady); got.Status != corev1.ConditionFalse || got.Reason != "PodCompleted" {
		t.Errorf("Ready condition %+v, want False PodCompleted", got)
	}
	c := sim.Counters()
	if c.Bound != 1 || c.AgentsConnected != 1 || c.AgentsExited != 1 || c.Started != 1 {
		t.Errorf("counters %+v, want one pod bound, started, connected and exited", c)
	}
	// The story is told to kubectl too: Events from the scheduler and the kubelet.
	eventually(t, "Kubernetes Events for the pod", func() (bool, string) {
		list, err := env.Client.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{FieldSelector: "involvedObject.name=" + name})
		if err != nil {
			return false, err.Error()
		}
		var seen []string
		for _, e := range list.Items {
			seen = append(seen, e.Source.Component+"/"+e.Reason)
		}
		return slices.Contains(seen, "default-scheduler/Scheduled") && slices.Contains(seen, "kubelet/Started"), strings.Join(seen, " ")
	})

	want := []string{"Scheduled", "AgentConnected", "AgentDisconnected", "AgentExited"}
	var got []string
	for _, r := range eventsFor(sim, name) {
		if slices.Contains(want, r) {
			got = append(got, r)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event order (-want +got):\n%s", diff)
	}
}

// TestNodeRegistration checks the Node and its heartbeat Lease a controller (or kubectl) would see.
func TestNodeRegistration(t *testing.T) {
	ns := newNamespace(t)
	nodeName := ns // unique per run, so a Node left by an earlier run cannot pass the test
	startSim(t, Config{Namespace: ns, NodeName: nodeName,
		Capacity: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("8")}})
	ctx := context.Background()
	var node *corev1.Node
	eventually(t, "node Ready", func() (bool, string) {
		n, err := env.Client.CoreV1().Nodes().Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		node = n
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, string(c.Status)
			}
		}
		return false, "no Ready condition"
	})
	got := map[string]int64{}
	for k, v := range node.Status.Allocatable {
		got[string(k)] = v.Value()
	}
	want := map[string]int64{"cpu": 8, "memory": 256 << 30, "pods": 1000}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("allocatable (-want +got):\n%s", diff)
	}
	eventually(t, "node lease", func() (bool, string) {
		l, err := env.Client.CoordinationV1().Leases("kube-node-lease").Get(ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return l.Spec.RenewTime != nil && l.Spec.HolderIdentity != nil && *l.Spec.HolderIdentity == nodeName, fmt.Sprintf("%+v", l.Spec)
	})
}

// TestBehaviours plays each failure on its own pod and checks the status a controller would read.
func TestBehaviours(t *testing.T) {
	ns := newNamespace(t)
	j := newJenkins(t)
	sim := startSim(t, Config{Namespace: ns, NodeName: "nodesim-behaviours"})

	// podFor makes an inbound node in Jenkins and a matching pod with its Secret; edit changes the pod
	// before it is created.
	podFor := func(t *testing.T, name, remotingOpts string, edit func(*corev1.Pod)) {
		j.createInboundNode(name, "behaviour")
		createSecret(t, ns, name, j.nodeSecret(name))
		p := agentPod(ns, name, j.URL(), name, remotingOpts)
		if edit != nil {
			edit(p)
		}
		createPod(t, p)
	}
	annotate := func(v string) func(*corev1.Pod) {
		return func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationBehaviour: v} }
	}
	jnlp := func(p *corev1.Pod) corev1.ContainerStatus { return containerStatus(p, "jnlp") }

	t.Run("pull error by host", func(t *testing.T) {
		t.Parallel()
		const name = "pull-host"
		podFor(t, name, "-noReconnect", func(p *corev1.Pod) { p.Spec.Containers[0].Image = "nonexistent.invalid/jenkins/inbound-agent:1" })
		seen := map[string]bool{}
		waitPod(t, ns, name, "ErrImagePull then ImagePullBackOff", func(p *corev1.Pod) bool {
			if w := jnlp(p).State.Waiting; w != nil {
				seen[w.Reason] = true
				if w.Reason == "ErrImagePull" && !strings.Contains(w.Message, `dial tcp: lookup nonexistent.invalid: no such host`) {
					t.Errorf("ErrImagePull message %q", w.Message)
				}
				if w.Reason == "ImagePullBackOff" && !strings.HasPrefix(w.Message, `Back-off pulling image "nonexistent.invalid/jenkins/inbound-agent:1"`) {
					t.Errorf("ImagePullBackOff message %q", w.Message)
				}
			}
			return seen["ErrImagePull"] && seen["ImagePullBackOff"]
		})
		p, _ := getPod(t, ns, name)
		if p.Status.Phase != corev1.PodPending {
			t.Errorf("phase %s, want Pending", p.Status.Phase)
		}
		if maven := containerStatus(p, "maven"); maven.State.Running == nil {
			t.Errorf("sidecar with a good image: %s, want running", stateText(maven.State))
		}
		if n, _ := j.node(name); n.Connected {
			t.Error("agent connected though its image cannot be pulled")
		}
	})

	t.Run("pull error by tag in a sidecar", func(t *testing.T) {
		t.Parallel()
		const name = "pull-tag"
		podFor(t, name, "-noReconnect", func(p *corev1.Pod) { p.Spec.Containers[1].Image = "maven:does-not-exist" })
		p := waitPod(t, ns, name, "sidecar ErrImagePull", func(p *corev1.Pod) bool {
			w := containerStatus(p, "maven").State.Waiting
			return w != nil && (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff")
		})
		if p.Status.Phase != corev1.PodPending {
			t.Errorf("phase %s, want Pending", p.Status.Phase)
		}
	})

	t.Run("crash", func(t *testing.T) {
		t.Parallel()
		const name = "crash"
		podFor(t, name, "-noReconnect", annotate("crash"))
		p := waitPod(t, ns, name, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if term := jnlp(p).State.Terminated; term == nil || term.ExitCode != 1 || term.Reason != "Error" {
			t.Errorf("jnlp %s, want terminated 1 Error", stateText(jnlp(p).State))
		}
		if !slices.Contains(eventsFor(sim, name), "Started") {
			t.Error("the crashing container never started")
		}
	})

	t.Run("crash loop with restartPolicy Always", func(t *testing.T) {
		t.Parallel()
		const name = "crash-always"
		podFor(t, name, "-noReconnect", func(p *corev1.Pod) {
			annotate("crash")(p)
			p.Spec.RestartPolicy = corev1.RestartPolicyAlways
		})
		p := waitPod(t, ns, name, "restarted", func(p *corev1.Pod) bool { return jnlp(p).RestartCount >= 1 })
		if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodPending {
			t.Errorf("phase %s, want Running while restarting", p.Status.Phase)
		}
		if last := jnlp(p).LastTerminationState.Terminated; last == nil || last.ExitCode != 1 {
			t.Errorf("lastState %+v, want terminated with 1", jnlp(p).LastTerminationState)
		}
		waitPod(t, ns, name, "CrashLoopBackOff", func(p *corev1.Pod) bool {
			w := jnlp(p).State.Waiting
			return w != nil && w.Reason == "CrashLoopBackOff"
		})
	})

	t.Run("no connect", func(t *testing.T) {
		t.Parallel()
		const name = "no-connect"
		podFor(t, name, "-noReconnect", annotate("no-connect"))
		waitPod(t, ns, name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		time.Sleep(3 * testRetry)
		if n, _ := j.node(name); n.Connected {
			t.Error("agent connected under no-connect")
		}
		if got := countReason(sim, name, "AgentConnected") + countReason(sim, name, "AgentRefused"); got != 0 {
			t.Errorf("%d connection attempts, want none", got)
		}
	})

	t.Run("slow start", func(t *testing.T) {
		t.Parallel()
		const name = "slow-start"
		created := time.Now()
		podFor(t, name, "-noReconnect", annotate("slow-start=2s"))
		waitPod(t, ns, name, "bound and creating", func(p *corev1.Pod) bool {
			w := jnlp(p).State.Waiting
			return p.Spec.NodeName != "" && w != nil && w.Reason == "ContainerCreating"
		})
		waitPod(t, ns, name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		if d := time.Since(created); d < 2*time.Second {
			t.Errorf("running %s after creation, want at least the 2s slow start", d)
		}
		eventually(t, "connected", func() (bool, string) { n, _ := j.node(name); return n.Connected, "" })
	})

	t.Run("missing secret then created", func(t *testing.T) {
		t.Parallel()
		const name = "late-secret"
		j.createInboundNode(name, "behaviour")
		secret := j.nodeSecret(name)
		createPod(t, agentPod(ns, name, j.URL(), name, "-noReconnect"))
		p := waitPod(t, ns, name, "CreateContainerConfigError", func(p *corev1.Pod) bool {
			w := jnlp(p).State.Waiting
			return w != nil && w.Reason == "CreateContainerConfigError"
		})
		if msg := jnlp(p).State.Waiting.Message; msg != `secret "late-secret" not found` {
			t.Errorf("message %q, want the kubelet's", msg)
		}
		if p.Status.Phase != corev1.PodPending {
			t.Errorf("phase %s, want Pending", p.Status.Phase)
		}
		createSecret(t, ns, name, secret)
		waitPod(t, ns, name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		eventually(t, "connected", func() (bool, string) { n, _ := j.node(name); return n.Connected, "" })
	})

	t.Run("wrong secret with -noReconnect", func(t *testing.T) {
		t.Parallel()
		const name = "wrong-secret"
		j.createInboundNode(name, "behaviour")
		createSecret(t, ns, name, strings.Repeat("0", 64))
		createPod(t, agentPod(ns, name, j.URL(), name, "-noReconnect"))
		p := waitPod(t, ns, name, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if term := jnlp(p).State.Terminated; term == nil || term.ExitCode != 1 || term.Reason != "Error" {
			t.Errorf("jnlp %s, want terminated 1 Error", stateText(jnlp(p).State))
		}
		if term := containerStatus(p, "maven").State.Terminated; term == nil || term.ExitCode != exitSIGKILL {
			t.Errorf("sidecar %s, want killed with the agent", stateText(containerStatus(p, "maven").State))
		}
	})

	t.Run("unknown node without -noReconnect retries", func(t *testing.T) {
		t.Parallel()
		const name = "unknown-node"
		createSecret(t, ns, name, strings.Repeat("0", 64))
		createPod(t, agentPod(ns, name, j.URL(), name, "-webSocket"))
		eventually(t, "several refusals", func() (bool, string) {
			n := countReason(sim, name, "AgentRefused")
			return n >= 3, fmt.Sprint(n)
		})
		p, err := getPod(t, ns, name)
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != corev1.PodRunning || jnlp(p).State.Running == nil {
			t.Errorf("%s, want Running while the agent keeps retrying", describe(p))
		}
	})

	t.Run("active deadline", func(t *testing.T) {
		t.Parallel()
		const name = "deadline"
		podFor(t, name, "-noReconnect", func(p *corev1.Pod) { p.Spec.ActiveDeadlineSeconds = ptr(int64(1)) })
		p := waitPod(t, ns, name, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if p.Status.Reason != "DeadlineExceeded" {
			t.Errorf("reason %q, want DeadlineExceeded", p.Status.Reason)
		}
		if term := jnlp(p).State.Terminated; term == nil || term.ExitCode != exitSIGTERM {
			t.Errorf("jnlp %s, want terminated by SIGTERM", stateText(jnlp(p).State))
		}
		eventually(t, "agent gone from Jenkins", func() (bool, string) { n, _ := j.node(name); return !n.Connected, "" })
	})

	t.Run("init container", func(t *testing.T) {
		t.Parallel()
		const name = "with-init"
		podFor(t, name, "-noReconnect", func(p *corev1.Pod) {
			p.Spec.InitContainers = []corev1.Container{{Name: "prepare", Image: "busybox:1.36", Command: []string{"true"}}}
		})
		p := waitPod(t, ns, name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		if len(p.Status.InitContainerStatuses) != 1 {
			t.Fatalf("init statuses %+v", p.Status.InitContainerStatuses)
		}
		if term := p.Status.InitContainerStatuses[0].State.Terminated; term == nil || term.ExitCode != 0 || term.Reason != "Completed" {
			t.Errorf("init container %s, want terminated 0 Completed", stateText(p.Status.InitContainerStatuses[0].State))
		}
		if got := condition(p, corev1.PodInitialized); got.Status != corev1.ConditionTrue {
			t.Errorf("Initialized %+v, want True", got)
		}
	})

	t.Run("override fixes an unschedulable pod", func(t *testing.T) {
		t.Parallel()
		const name = "fixed-later"
		podFor(t, name, "-noReconnect", annotate("unschedulable"))
		waitPod(t, ns, name, "unschedulable", func(p *corev1.Pod) bool {
			return condition(p, corev1.PodScheduled).Reason == corev1.PodReasonUnschedulable
		})
		sim.SetBehaviour(name, Behaviour{})
		p := waitPod(t, ns, name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		if got := condition(p, corev1.PodScheduled); got.Status != corev1.ConditionTrue {
			t.Errorf("PodScheduled %+v, want True after binding", got)
		}
	})
}

// TestUnschedulable checks a pod the scheduler cannot place stays Pending, unbound, with the
// scheduler's condition, and that deleting it needs no node.
func TestUnschedulable(t *testing.T) {
	ns := newNamespace(t)
	sim := startSim(t, Config{Namespace: ns, NodeName: "nodesim-unschedulable"})
	tests := []struct {
		name    string
		edit    func(*corev1.Pod)
		message string
	}{
		{"by-annotation", func(p *corev1.Pod) { p.Annotations = map[string]string{AnnotationBehaviour: "unschedulable"} }, unschedulableMessage},
		{"by-node-selector", func(p *corev1.Pod) { p.Spec.NodeSelector = map[string]string{"kubernetes.io/arch": "s390x"} }, unschedulableMessage},
		{"by-request", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Requests = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("65")}
		}, "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := agentPod(ns, tt.name, "http://127.0.0.1:1/", tt.name, "-noReconnect")
			tt.edit(p)
			createPod(t, p)
			got := waitPod(t, ns, tt.name, "PodScheduled=False", func(p *corev1.Pod) bool {
				return condition(p, corev1.PodScheduled).Status == corev1.ConditionFalse
			})
			want := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable, Message: tt.message}
			c := condition(got, corev1.PodScheduled)
			c.LastTransitionTime, c.LastProbeTime = metav1.Time{}, metav1.Time{}
			if diff := cmp.Diff(want, c); diff != "" {
				t.Errorf("PodScheduled (-want +got):\n%s", diff)
			}
			// Several scheduling retries later it is still Pending and unbound.
			time.Sleep(4 * testRetry)
			got, err := getPod(t, ns, tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if got.Spec.NodeName != "" || got.Status.Phase != corev1.PodPending {
				t.Errorf("%s, want Pending and unbound", describe(got))
			}
			// An unbound pod is removed by the apiserver at once, with no node to confirm.
			if err := env.Client.CoreV1().Pods(ns).Delete(context.Background(), tt.name, metav1.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := getPod(t, ns, tt.name); !apierrors.IsNotFound(err) {
				t.Errorf("unbound pod after delete: err=%v, want NotFound at once", err)
			}
		})
	}
	if c := sim.Counters(); c.Bound != 0 || c.Unschedulable < len(tests) {
		t.Errorf("counters %+v: want nothing bound and every pod reported unschedulable", c)
	}
}

// TestGracefulDeletion checks the kubelet's half of deleting a running pod: the agent goes away and
// the pod is gone well inside its grace period; a pod bound to a node nobody runs stays terminating.
func TestGracefulDeletion(t *testing.T) {
	ns := newNamespace(t)
	j := newJenkins(t)
	sim := startSim(t, Config{Namespace: ns, NodeName: "nodesim-deletion"})
	ctx := context.Background()

	const name = "deleted-while-running"
	j.createInboundNode(name, "deletion")
	createSecret(t, ns, name, j.nodeSecret(name))
	createPod(t, agentPod(ns, name, j.URL(), name, "-noReconnect"))
	waitPod(t, ns, name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	eventually(t, "connected", func() (bool, string) { n, _ := j.node(name); return n.Connected, "" })

	start := time.Now()
	if err := env.Client.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ns, name)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("deletion took %s; the simulator should finish it long before the 30s grace period", d)
	}
	if n, _ := j.node(name); n.Connected {
		t.Error("agent still connected after its pod was deleted")
	}
	if c := sim.Counters(); c.Deleted != 1 {
		t.Errorf("Deleted = %d, want 1", c.Deleted)
	}
	if !slices.Contains(eventsFor(sim, name), "Killing") {
		t.Errorf("events %v lack Killing", eventsFor(sim, name))
	}

	// A finalizer holds the pod after the node's final delete: it shows stopped containers and a
	// terminal phase until the finalizer goes, and the deletion is counted once.
	const held = "held-by-finalizer"
	j.createInboundNode(held, "deletion")
	createSecret(t, ns, held, j.nodeSecret(held))
	hp := agentPod(ns, held, j.URL(), held, "-noReconnect")
	hp.Finalizers = []string{"nodesim.test/hold"}
	createPod(t, hp)
	waitPod(t, ns, held, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err := env.Client.CoreV1().Pods(ns).Delete(ctx, held, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	p := waitPod(t, ns, held, "stopped and terminal", func(p *corev1.Pod) bool {
		return p.DeletionTimestamp != nil && p.Status.Phase == corev1.PodFailed
	})
	if term := containerStatus(p, "jnlp").State.Terminated; term == nil || term.ExitCode != exitSIGTERM {
		t.Errorf("jnlp %s, want terminated by SIGTERM", stateText(containerStatus(p, "jnlp").State))
	}
	p.Finalizers = nil
	if _, err := env.Client.CoreV1().Pods(ns).Update(ctx, p, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitGone(t, ns, held)
	if c := sim.Counters(); c.Deleted != 2 {
		t.Errorf("Deleted = %d, want 2 (each deletion counted once)", c.Deleted)
	}

	// A pod bound to some other node is not ours to finish: it stays terminating.
	other := agentPod(ns, "on-another-node", "http://127.0.0.1:1/", "x", "-noReconnect")
	other.Spec.NodeName = "a-node-nobody-runs"
	createPod(t, other)
	if err := env.Client.CoreV1().Pods(ns).Delete(ctx, other.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(4 * testRetry)
	p, err := getPod(t, ns, other.Name)
	if err != nil || p.DeletionTimestamp == nil {
		t.Errorf("pod on another node after delete: err=%v pod=%v, want still there, terminating", err, p)
	}
	grace := int64(0)
	if err := env.Client.CoreV1().Pods(ns).Delete(ctx, other.Name, metav1.DeleteOptions{GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
}

// TestLabelSelector checks the simulator leaves pods outside its selector alone.
func TestLabelSelector(t *testing.T) {
	ns := newNamespace(t)
	sim := startSim(t, Config{Namespace: ns, NodeName: "nodesim-selector", LabelSelector: "app.kubernetes.io/name=jenkins-agent"})
	mine := agentPod(ns, "mine", "http://127.0.0.1:1/", "mine", "-noReconnect")
	notMine := agentPod(ns, "not-mine", "http://127.0.0.1:1/", "not-mine", "-noReconnect")
	notMine.Labels = map[string]string{"app": "other"}
	createPod(t, notMine)
	createPod(t, mine)
	waitPod(t, ns, "mine", "bound", func(p *corev1.Pod) bool { return p.Spec.NodeName == "nodesim-selector" })
	time.Sleep(2 * testRetry)
	p, err := getPod(t, ns, "not-mine")
	if err != nil {
		t.Fatal(err)
	}
	if p.Spec.NodeName != "" || len(p.Status.Conditions) != 0 {
		t.Errorf("pod outside the selector was touched: %s", describe(p))
	}
	if c := sim.Counters(); c.PodsSeen != 1 {
		t.Errorf("PodsSeen = %d, want 1", c.PodsSeen)
	}
}
