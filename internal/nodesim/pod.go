package nodesim

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
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
