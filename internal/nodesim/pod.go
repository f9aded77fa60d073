package nodesim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// Exit codes the simulated containers end with, as a Linux runtime reports them.
const (
	exitSIGTERM = 143 // a JVM (the agent) ends on SIGTERM with 128+15
	exitSIGKILL = 137 // a process that ignores SIGTERM (sleep as PID 1) is killed: 128+9
)

// podRun plays the kubelet for one pod bound to this node, from its first status to a terminal phase
// (or until it is cancelled for deletion or shutdown). Only its goroutine touches status until done
// is closed; after that the deletion path may read it.
type podRun struct {
	s      *Simulator
	uid    types.UID
	pod    *corev1.Pod // as first seen bound: the spec never changes in ways a kubelet honours here
	cancel context.CancelFunc
	done   chan struct{}
	status corev1.PodStatus
	latest atomic.Pointer[corev1.Pod] // the last object written, to skip a GET before the next write
	shown  *corev1.PodStatus          // the status last written, so an unchanged one is not sent again
}

// ctr is the run's bookkeeping for one container beyond what its status shows.
type ctr struct {
	spec      corev1.Container
	init      bool
	agent     bool
	pulls     int       // failed pull attempts, to alternate ErrImagePull and ImagePullBackOff
	notBefore time.Time // next start attempt: after a pull or config error, or a crash-loop back-off
}

type agentEventKind int

const (
	agentConnected agentEventKind = iota
	agentRefused
	agentDisconnected
	agentExited
)

type agentEvent struct {
	kind agentEventKind
	code int32 // for agentExited
	err  error
	gen  int
}

// agentProc is the one goroutine that plays the agent process of a running agent container.
type agentProc struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (a *agentProc) stop() {
	if a != nil {
		a.cancel()
		<-a.done
	}
}

func (r *podRun) run(ctx context.Context) {
	defer close(r.done)
	s, pod := r.s, r.pod
	log := s.log.With(zap.String("agent", pod.Name))
	b := s.behaviourOf(pod)

	ctrs := make([]*ctr, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	for _, c := range pod.Spec.InitContainers {
		ctrs = append(ctrs, &ctr{spec: c, init: true})
	}
	agentName := agentContainer(pod)
	for _, c := range pod.Spec.Containers {
		ctrs = append(ctrs, &ctr{spec: c, agent: c.Name == agentName})
	}

	start := metav1.Now()
	if pod.Status.StartTime != nil {
		start = *pod.Status.StartTime
	}
	r.status = corev1.PodStatus{
		Phase:     corev1.PodPending,
		HostIP:    s.hostIP,
		HostIPs:   []corev1.HostIP{{IP: s.hostIP}},
		StartTime: &start,
	}
	waitingReason := "ContainerCreating"
	if len(pod.Spec.InitContainers) > 0 {
		waitingReason = "PodInitializing"
	}
	for _, c := range ctrs {
		st := corev1.ContainerStatus{
			Name: c.spec.Name, Image: c.spec.Image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: waitingReason}},
		}
		if c.init {
			r.status.InitContainerStatuses = append(r.status.InitContainerStatuses, st)
		} else {
			r.status.ContainerStatuses = append(r.status.ContainerStatuses, st)
		}
	}
	statusOf := func(i int) *corev1.ContainerStatus {
		if i < len(pod.Spec.InitContainers) {
			return &r.status.InitContainerStatuses[i]
		}
		return &r.status.ContainerStatuses[i-len(pod.Spec.InitContainers)]
	}
	r.publish(ctx, false)

	if b.StartDelay > 0 {
		log.Info("slow start", zap.Duration("delay", b.StartDelay))
		if !waitfor.Duration(ctx, b.StartDelay) {
			return
		}
	}
	// The sandbox is up: the pod has an IP from here on.
	ip := s.allocateIP()
	r.status.PodIP, r.status.PodIPs = ip, []corev1.PodIP{{IP: ip}}

	var deadline time.Time
	if d := pod.Spec.ActiveDeadlineSeconds; d != nil {
		deadline = start.Add(time.Duration(*d) * time.Second)
	}

	events := make(chan agentEvent)
	var agent *agentProc
	gen := 0
	defer func() { agent.stop() }()
	var crashAt, retryAt time.Time
	reportedRunning := false

	for {
		now := time.Now()
		retryAt = time.Time{}

		// Start what can start: init containers in order (each finishes at once), then every regular
		// container; a failing init container holds back everything after it, as in a kubelet.
		b = s.behaviourOf(r.currentPod())
		for i, c := range ctrs {
			st := statusOf(i)
			if st.State.Waiting == nil || now.Before(c.notBefore) {
				if c.init && st.State.Terminated == nil {
					break
				}
				continue
			}
			env, ok := r.tryStart(ctx, c, st, b, pullTarget(pod, b, c), now)
			if ctx.Err() != nil {
				return
			}
			if !ok {
				c.notBefore = now.Add(s.cfg.RetryInterval)
				if c.init {
					break
				}
				continue
			}
			c.notBefore = time.Time{}
			if c.agent {
				switch {
				case b.Crash:
					crashAt = now.Add(s.cfg.CrashAfter)
				case b.NoConnect:
					s.note(pod.Name, "AgentSilent", "agent container runs but never connects (no-connect)")
				default:
					gen++
					agent = r.startAgent(ctx, c, env, events, gen, b.ConnectDelay)
				}
			}
		}

		r.refresh(false)
		if r.status.Phase == corev1.PodRunning && !reportedRunning && allStarted(r.status.ContainerStatuses) {
			reportedRunning = true
			s.count(func(c *Counters) { c.Started++ })
		}
		for i, c := range ctrs {
			if statusOf(i).State.Waiting != nil {
				retryAt = earliest(retryAt, c.notBefore)
			}
		}
		if isTerminal(r.status.Phase) {
			r.publishFinal(ctx)
			return
		}
		if !r.publish(ctx, false) {
			retryAt = earliest(retryAt, now.Add(s.cfg.RetryInterval))
		}

		var wake <-chan time.Time
		var timer *time.Timer
		if next := earliest(retryAt, crashAt, deadline); !next.IsZero() {
			timer = time.NewTimer(max(time.Until(next), 0))
			wake = timer.C
		}
		ev, woke, stopped := agentEvent{}, false, false
		select {
		case <-ctx.Done():
			stopped = true
		case <-wake:
			woke = true
		case ev = <-events:
		}
		if timer != nil {
			timer.Stop()
		}
		switch {
		case stopped:
			return
		case woke:
			now = time.Now()
			if !deadline.IsZero() && !now.Before(deadline) {
				agent.stop()
				agent = nil
				s.emit(pod, "kubelet", corev1.EventTypeNormal, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline")
				killStatus(pod, &r.status, now)
				r.status.Phase = corev1.PodFailed
				r.status.Reason = "DeadlineExceeded"
				r.status.Message = "Pod was active on the node longer than the specified deadline"
				r.publishFinal(ctx)
				return
			}
			if !crashAt.IsZero() && !now.Before(crashAt) {
				crashAt = time.Time{}
				if i := agentIndex(ctrs); i >= 0 {
					r.exited(ctrs, i, statusOf, 1, "agent container crashed (crash behaviour)", now)
				}
			}
		case ev.gen != gen:
			// A late word from an agent process already replaced by a restart.
		default:
			switch ev.kind {
			case agentConnected:
				s.count(func(c *Counters) { c.AgentsConnected++ })
				s.note(pod.Name, "AgentConnected", "agent connected to Jenkins")
			case agentRefused:
				s.count(func(c *Counters) { c.AgentsRefused++ })
				s.note(pod.Name, "AgentRefused", fmt.Sprintf("agent connection refused: %v", ev.err))
			case agentDisconnected:
				s.note(pod.Name, "AgentDisconnected", "Jenkins disconnected the agent")
			case agentExited:
				agent.stop()
				agent = nil
				msg := "agent exited"
				if ev.err != nil {
					msg = fmt.Sprintf("agent exited: %v", ev.err)
				}
				if i := agentIndex(ctrs); i >= 0 {
					r.exited(ctrs, i, statusOf, ev.code, msg, time.Now())
				}
			}
		}
	}
}

// exited ends container i with code. If the restart policy brings it back, it waits in
// CrashLoopBackOff; otherwise, as the agent's life is the pod's life (the simplification the package
// doc explains), the pod's other containers end too.
func (r *podRun) exited(ctrs []*ctr, i int, statusOf func(int) *corev1.ContainerStatus, code int32, msg string, now time.Time) {
	s, pod := r.s, r.pod
	c, st := ctrs[i], statusOf(i)
	s.count(func(cn *Counters) { cn.AgentsExited++ })
	s.note(pod.Name, "AgentExited", fmt.Sprintf("container %s exited with code %d: %s", c.spec.Name, code, msg))
	st.State = corev1.ContainerState{Terminated: terminated(st, code, now, c.spec, msg)}
	st.Ready, st.Started = false, ptr(false)

	restart := pod.Spec.RestartPolicy == corev1.RestartPolicyAlways ||
		(pod.Spec.RestartPolicy == corev1.RestartPolicyOnFailure && code != 0)
	if restart {
		backoff := min(s.cfg.RetryInterval<<min(st.RestartCount, 8), 300*time.Second)
		st.LastTerminationState = st.State
		st.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
			Reason: "CrashLoopBackOff",
			Message: fmt.Sprintf("back-off %s restarting failed container=%s pod=%s_%s(%s)",
				backoff, c.spec.Name, pod.Name, pod.Namespace, pod.UID),
		}}
		c.notBefore = now.Add(backoff)
		s.emit(pod, "kubelet", corev1.EventTypeWarning, "BackOff", fmt.Sprintf("Back-off restarting failed container %s in pod %s_%s(%s)", c.spec.Name, pod.Name, pod.Namespace, pod.UID))
		return
	}
	for j, other := range ctrs {
		if j == i || other.init {
			continue
		}
		ost := statusOf(j)
		switch {
		case ost.State.Running != nil:
			if code == 0 {
				ost.State = corev1.ContainerState{Terminated: terminated(ost, 0, now, other.spec, "")}
			} else {
				ost.State = corev1.ContainerState{Terminated: terminated(ost, exitSIGKILL, now, other.spec, "")}
			}
			ost.Ready, ost.Started = false, ptr(false)
		case ost.State.Waiting != nil:
			ost.State = corev1.ContainerState{Terminated: unknownTerminated()}
			ost.Ready, ost.Started = false, ptr(false)
		}
	}
}

func terminated(st *corev1.ContainerStatus, code int32, now time.Time, spec corev1.Container, msg string) *corev1.ContainerStateTerminated {
	t := &corev1.ContainerStateTerminated{ExitCode: code, Reason: "Completed", FinishedAt: metav1.NewTime(now), ContainerID: st.ContainerID}
	if st.State.Running != nil {
		t.StartedAt = st.State.Running.StartedAt
	}
	if code != 0 {
		t.Reason = "Error"
		// A kubelet shows the log tail only when the container asks for it; that is the only place a
		// real cluster would show why the agent ended.
		if spec.TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
			t.Message = msg
		}
	}
	return t
}

func unknownTerminated() *corev1.ContainerStateTerminated {
	return &corev1.ContainerStateTerminated{
		ExitCode: exitSIGKILL, Reason: "ContainerStatusUnknown",
		Message: "The container could not be located when the pod was terminated",
	}
}

// tryStart takes one waiting container one attempt further: pull, resolve its environment, start.
// It returns the environment when the container started.
func (r *podRun) tryStart(ctx context.Context, c *ctr, st *corev1.ContainerStatus, b Behaviour, pullFails bool, now time.Time) (map[string]string, bool) {
	s, pod := r.s, r.pod
	if pullFails {
		c.pulls++
		crierr := pullErrorMessage(c.spec.Image)
		if c.pulls%2 == 1 {
			s.emit(pod, "kubelet", corev1.EventTypeNormal, "Pulling", fmt.Sprintf("Pulling image %q", c.spec.Image))
			s.emit(pod, "kubelet", corev1.EventTypeWarning, "Failed", fmt.Sprintf("Failed to pull image %q: %s", c.spec.Image, crierr))
			s.emit(pod, "kubelet", corev1.EventTypeWarning, "Failed", "Error: ErrImagePull")
			st.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull", Message: crierr}}
		} else {
			msg := fmt.Sprintf("Back-off pulling image %q", c.spec.Image)
			s.emit(pod, "kubelet", corev1.EventTypeNormal, "BackOff", msg)
			s.emit(pod, "kubelet", corev1.EventTypeWarning, "Failed", "Error: ImagePullBackOff")
			st.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: msg + ": ErrImagePull: " + crierr}}
		}
		return nil, false
	}
	env, err := s.resolveEnv(ctx, pod, &c.spec, &r.status)
	if err != nil {
		if ctx.Err() != nil {
			return nil, false
		}
		if st.State.Waiting == nil || st.State.Waiting.Message != err.Error() {
			s.emit(pod, "kubelet", corev1.EventTypeWarning, "Failed", "Error: "+err.Error())
		}
		st.State = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: err.Error()}}
		return nil, false
	}
	if st.ImageID == "" {
		s.emit(pod, "kubelet", corev1.EventTypeNormal, "Pulled", fmt.Sprintf("Container image %q already present on machine", c.spec.Image))
		ref := ParseImage(c.spec.Image)
		sum := sha256.Sum256([]byte(ref.String()))
		st.ImageID = ref.Host + "/" + ref.Path + "@sha256:" + hex.EncodeToString(sum[:])
		st.Image = ref.String()
	}
	if st.LastTerminationState.Terminated != nil {
		st.RestartCount++
	}
	st.ContainerID = "containerd://" + randomHex(32)
	s.emit(pod, "kubelet", corev1.EventTypeNormal, "Created", "Created container: "+c.spec.Name)
	s.emit(pod, "kubelet", corev1.EventTypeNormal, "Started", "Started container "+c.spec.Name)
	at := metav1.NewTime(now)
	if c.init {
		// Init containers are not run: they finish at once, successfully.
		st.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
			ExitCode: 0, Reason: "Completed", StartedAt: at, FinishedAt: at, ContainerID: st.ContainerID,
		}}
		st.Ready, st.Started = true, ptr(false)
		return env, true
	}
	st.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: at}}
	// No probes are simulated: a running container is started and ready, as a kubelet reports a
	// container without probes.
	st.Ready, st.Started = true, ptr(true)
	return env, true
}

// pullTarget says whether container c is one whose image pull fails under b: the containers whose
// image DefaultBehaviour calls bad, or, when a test forces PullError on a pod with only good images,
// the agent container (else the first container).
func pullTarget(pod *corev1.Pod, b Behaviour, c *ctr) bool {
	if !b.PullError {
		return false
	}
	anyBad := false
	for _, x := range allContainers(pod) {
		anyBad = anyBad || BadImage(x.Image)
	}
	if anyBad {
		return BadImage(c.spec.Image)
	}
	if agentContainer(pod) != "" {
		return c.agent
	}
	return !c.init && len(pod.Spec.Containers) > 0 && pod.Spec.Containers[0].Name == c.spec.Name
}

// startAgent launches the goroutine that plays the agent process of container c.
// connectDelay is the time the agent takes before its first connection: the JVM starting and
// remoting's handshake.
func (r *podRun) startAgent(ctx context.Context, c *ctr, env map[string]string, events chan<- agentEvent, gen int, connectDelay time.Duration) *agentProc {
	actx, cancel := context.WithCancel(ctx)
	a := &agentProc{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(a.done)
		if connectDelay > 0 && !waitfor.Duration(actx, connectDelay) {
			return
		}
		r.s.playAgent(actx, r.pod.Name, agentArgs(env, c.spec.Args), events, gen)
	}()
	return a
}

// currentPod is the newest copy of the pod this run knows, for behaviour decisions that may read
// annotations changed since the start.
func (r *podRun) currentPod() *corev1.Pod {
	if p := r.latest.Load(); p != nil {
		return p
	}
	return r.pod
}

// publish writes the run's status unless it is what the apiserver already has. It reports false when
// the write failed for a reason worth retrying; the caller tries again after RetryInterval, as a
// kubelet's status manager keeps trying until the apiserver has the status.
func (r *podRun) publish(ctx context.Context, final bool) bool {
	if ctx.Err() != nil || (r.shown != nil && equality.Semantic.DeepEqual(*r.shown, r.status)) {
		return true
	}
	err := r.s.writeStatus(ctx, r.pod, r.status, r.latest.Load())
	switch {
	case err == nil:
		r.shown = r.status.DeepCopy()
		return true
	case ctx.Err() != nil || errors.Is(err, errPodGone):
		// Stopping, or the pod is gone: nobody is left to read the status.
		return true
	default:
		r.s.log.Warn("pod status not written", zap.String("agent", r.pod.Name), zap.Bool("final", final), zap.Error(err))
		return false
	}
}

// publishFinal writes a terminal status, retrying until it is written or the run is stopped: a pod
// whose end is never reported would look alive to the controller for ever.
func (r *podRun) publishFinal(ctx context.Context) {
	for !r.publish(ctx, true) {
		if !waitfor.Duration(ctx, r.s.cfg.RetryInterval) {
			return
		}
	}
}

// refresh recomputes the phase and conditions from the container statuses.
func (r *podRun) refresh(terminal bool) {
	refreshStatus(r.pod, &r.status, terminal, metav1.Now())
}

// refreshStatus sets phase and the kubelet-owned conditions from the container statuses, with the
// kubelet's own rules (getPhase in pkg/kubelet/kubelet_pods.go, without sidecar init containers).
func refreshStatus(pod *corev1.Pod, st *corev1.PodStatus, terminal bool, now metav1.Time) {
	st.Phase = phaseOf(pod, st, terminal)
	done := isTerminal(st.Phase)
	setCondition(st, corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, now)
	setCondition(st, corev1.PodCondition{Type: corev1.PodReadyToStartContainers, Status: boolCond(st.PodIP != "" && !done)}, now)

	var incomplete []string
	for _, c := range pod.Spec.InitContainers {
		cs := findStatus(st.InitContainerStatuses, c.Name)
		if cs == nil || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 0 {
			incomplete = append(incomplete, c.Name)
		}
	}
	if len(incomplete) == 0 || done {
		setCondition(st, corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}, now)
	} else {
		setCondition(st, corev1.PodCondition{Type: corev1.PodInitialized, Status: corev1.ConditionFalse,
			Reason: "ContainersNotInitialized", Message: fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(incomplete, " "))}, now)
	}

	var unready []string
	for _, c := range pod.Spec.Containers {
		if cs := findStatus(st.ContainerStatuses, c.Name); cs == nil || !cs.Ready {
			unready = append(unready, c.Name)
		}
	}
	for _, t := range []corev1.PodConditionType{corev1.ContainersReady, corev1.PodReady} {
		switch {
		case done:
			setCondition(st, corev1.PodCondition{Type: t, Status: corev1.ConditionFalse, Reason: "PodCompleted"}, now)
		case len(unready) == 0:
			setCondition(st, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue}, now)
		default:
			setCondition(st, corev1.PodCondition{Type: t, Status: corev1.ConditionFalse,
				Reason: "ContainersNotReady", Message: fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " "))}, now)
		}
	}
}

// phaseOf is the kubelet's getPhase for regular init containers and containers.
func phaseOf(pod *corev1.Pod, st *corev1.PodStatus, terminal bool) corev1.PodPhase {
	pendingInit, failedInit := 0, 0
	for _, c := range pod.Spec.InitContainers {
		cs := findStatus(st.InitContainerStatuses, c.Name)
		switch {
		case cs == nil, cs.State.Running != nil:
			pendingInit++
		case cs.State.Terminated != nil:
			if cs.State.Terminated.ExitCode != 0 {
				failedInit++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				if cs.LastTerminationState.Terminated.ExitCode != 0 {
					failedInit++
				}
			} else {
				pendingInit++
			}
		default:
			pendingInit++
		}
	}
	unknown, running, waiting, stopped, succeeded := 0, 0, 0, 0, 0
	for _, c := range pod.Spec.Containers {
		cs := findStatus(st.ContainerStatuses, c.Name)
		switch {
		case cs == nil:
			unknown++
		case cs.State.Running != nil:
			running++
		case cs.State.Terminated != nil:
			stopped++
			if cs.State.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.State.Waiting != nil:
			if cs.LastTerminationState.Terminated != nil {
				stopped++
			} else {
				waiting++
			}
		default:
			unknown++
		}
	}
	if failedInit > 0 && pod.Spec.RestartPolicy == corev1.RestartPolicyNever {
		return corev1.PodFailed
	}
	switch {
	case pendingInit > 0, waiting > 0:
		return corev1.PodPending
	case running > 0 && unknown == 0:
		return corev1.PodRunning
	case running == 0 && stopped > 0 && unknown == 0:
		if terminal {
			if stopped == succeeded {
				return corev1.PodSucceeded
			}
			return corev1.PodFailed
		}
		switch {
		case pod.Spec.RestartPolicy == corev1.RestartPolicyAlways:
			return corev1.PodRunning
		case stopped == succeeded:
			return corev1.PodSucceeded
		case pod.Spec.RestartPolicy == corev1.RestartPolicyNever:
			return corev1.PodFailed
		default:
			return corev1.PodRunning
		}
	default:
		return corev1.PodPending
	}
}

// killStatus is what a kubelet reports after it stopped a pod it was told to end (deletion, deadline):
// running containers terminated (the agent by SIGTERM, the rest by SIGKILL after ignoring it),
// containers that never started "could not be located", and a terminal phase. It reports whether
// anything changed, so an already finished pod is not written again.
func killStatus(pod *corev1.Pod, st *corev1.PodStatus, now time.Time) bool {
	before := st.DeepCopy()
	agent := agentContainer(pod)
	for _, c := range pod.Spec.Containers {
		cs := findStatus(st.ContainerStatuses, c.Name)
		if cs == nil {
			st.ContainerStatuses = append(st.ContainerStatuses, corev1.ContainerStatus{Name: c.Name, Image: c.Image})
			cs = &st.ContainerStatuses[len(st.ContainerStatuses)-1]
		}
		switch {
		case cs.State.Running != nil:
			code := int32(exitSIGKILL)
			if c.Name == agent {
				code = exitSIGTERM
			}
			cs.State = corev1.ContainerState{Terminated: terminated(cs, code, now, c, "")}
		case cs.State.Terminated == nil:
			cs.State = corev1.ContainerState{Terminated: unknownTerminated()}
		}
		cs.Ready, cs.Started = false, ptr(false)
	}
	for i := range st.InitContainerStatuses {
		if cs := &st.InitContainerStatuses[i]; cs.State.Terminated == nil {
			cs.State = corev1.ContainerState{Terminated: unknownTerminated()}
		}
	}
	refreshStatus(pod, st, true, metav1.NewTime(now))
	return !statusEqual(before, st)
}

// statusEqual compares what matters for a rewrite: phase and container states (times aside).
func statusEqual(a, b *corev1.PodStatus) bool {
	if a.Phase != b.Phase || len(a.ContainerStatuses) != len(b.ContainerStatuses) {
		return false
	}
	for i := range a.ContainerStatuses {
		x, y := a.ContainerStatuses[i].State, b.ContainerStatuses[i].State
		if (x.Running == nil) != (y.Running == nil) || (x.Waiting == nil) != (y.Waiting == nil) || (x.Terminated == nil) != (y.Terminated == nil) {
			return false
		}
	}
	return true
}

func findStatus(list []corev1.ContainerStatus, name string) *corev1.ContainerStatus {
	for i := range list {
		if list[i].Name == name {
			return &list[i]
		}
	}
	return nil
}

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
