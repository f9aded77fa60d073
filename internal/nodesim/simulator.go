package nodesim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	listerscorev1 "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/util/retry"
	"k8s.io/client-go/util/workqueue"
)

// Config says where the simulator works and how its pods behave. Only Client and Namespace are required.
type Config struct {
	Client    kubernetes.Interface
	Namespace string
	NodeName  string                      // default "nodesim-0"
	Behaviour func(*corev1.Pod) Behaviour // default DefaultBehaviour: by image and annotation, see package doc
	Logger    *zap.Logger

	// LabelSelector limits the pods the simulator schedules and runs ("" = every pod in Namespace), so a
	// demo can share a namespace with pods some other node should run.
	LabelSelector string
	// Capacity is the node's capacity and allocatable; missing entries take the defaults (64 CPU,
	// 256Gi memory, 1000 pods), which are large so a test never hits them by accident.
	Capacity corev1.ResourceList
	// RetryInterval paces every retry the simulator plays: a kubelet's image pull and config-error
	// retries, remoting's reconnect loop, the scheduler's retry of an unschedulable pod, and the first
	// crash-loop back-off. Default 2s (remoting's own is 10s; tests want less).
	RetryInterval time.Duration
	// RemotingTimeScale scales remoting's reconnect timing after Jenkins drops an agent (the 10 s
	// TCP waits, the 0/1/3/7/10 s WebSocket back-off, and -noReconnectAfter itself). Default 1:
	// remoting's real intervals; tests use a small fraction (0.01 plays a 10 s wait in 100 ms).
	RemotingTimeScale float64
	// CrashAfter is how long a crashing agent container runs before it exits 1. Default 500ms.
	CrashAfter time.Duration
	// Workers is the number of workqueue workers. Default 2.
	Workers int
	// StartUp is the start-up time of every pod, so tests and benchmarks can model a real cluster
	// instead of an instant start; a pod's own behaviour (slow-start and the like) wins where it
	// sets a delay. Zero (the default) starts pods at once.
	StartUp StartUp
}

const (
	defaultNodeName = "nodesim-0"
	nodeLeaseNS     = "kube-node-lease"
	leaseDuration   = 40 * time.Second // the kubelet's default nodeLeaseDurationSeconds
	leaseRenew      = 10 * time.Second // the kubelet renews at a quarter of the duration
)

// Simulator is one fake node: scheduler, kubelet and inbound agents for the pods of one namespace.
type Simulator struct {
	cfg    Config
	log    *zap.Logger
	hostIP string
	subnet byte // third octet of this node's pod IPs, so two simulators do not hand out the same IPs

	mu        sync.Mutex
	started   bool
	queue     workqueue.TypedRateLimitingInterface[string]
	lister    listerscorev1.PodLister
	runs      map[string]*podRun // by namespace/name; kept after a run ends so a stale cache cannot restart it
	overrides map[string]Behaviour
	behaviour func(*corev1.Pod) Behaviour
	seen      map[types.UID]bool
	gatedSeen map[types.UID]bool      // pods noted as held by scheduling gates, so each is noted once
	firstSeen map[types.UID]time.Time // when the informer first delivered each pod: ScheduleDelay counts from it
	warned    map[types.UID]bool
	deleted   map[types.UID]bool
	counters  Counters
	events    []Event
	nextIP    int
	recorders map[string]record.EventRecorder
}

// Counters are totals since Run started, for tests that assert how much happened.
type Counters struct {
	PodsSeen        int // distinct pods (by UID) the informer delivered
	Bound           int // pods bound to this node
	Unschedulable   int // times a pod was reported unschedulable
	Started         int // pods whose containers all started (phase Running)
	AgentsConnected int // successful agent connections to Jenkins
	AgentsRefused   int // connection attempts Jenkins refused (or could not be reached)
	AgentsExited    int // agent containers that terminated
	Deleted         int // graceful deletions this node finished
}

// Event is one thing the simulator did, in order, for tests and the demo's narration.
type Event struct {
	Time    time.Time
	Pod     string
	Reason  string // the Kubernetes event reason where one exists (Scheduled, Pulling, Failed, BackOff, Started, Killing, ...), else the simulator's own (AgentConnected, AgentRefused, AgentExited, Deleted)
	Message string
}

// New fills in defaults; Run does the work.
func New(cfg Config) *Simulator {
	if cfg.NodeName == "" {
		cfg.NodeName = defaultNodeName
	}
	if cfg.Behaviour == nil {
		cfg.Behaviour = DefaultBehaviour
	}
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if cfg.RetryInterval <= 0 {
		cfg.RetryInterval = 2 * time.Second
	}
	if cfg.RemotingTimeScale <= 0 {
		cfg.RemotingTimeScale = 1
	}
	if cfg.CrashAfter <= 0 {
		cfg.CrashAfter = 500 * time.Millisecond
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("64"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("1000"),
	}
	for k, v := range cfg.Capacity {
		capacity[k] = v
	}
	cfg.Capacity = capacity
	h := fnv.New32a()
	h.Write([]byte(cfg.NodeName))
	sum := h.Sum32()
	return &Simulator{
		cfg:       cfg,
		log:       cfg.Logger.With(zap.String("node", cfg.NodeName)),
		hostIP:    fmt.Sprintf("10.0.%d.%d", byte(sum>>8), 1+byte(sum)%254),
		subnet:    byte(sum),
		runs:      map[string]*podRun{},
		overrides: map[string]Behaviour{},
		behaviour: cfg.Behaviour,
		seen:      map[types.UID]bool{},
		gatedSeen: map[types.UID]bool{},
		firstSeen: map[types.UID]time.Time{},
		warned:    map[types.UID]bool{},
		deleted:   map[types.UID]bool{},
		recorders: map[string]record.EventRecorder{},
	}
}

// NodeName is the name of the Node object the simulator registers and binds pods to.
func (s *Simulator) NodeName() string { return s.cfg.NodeName }

// SetBehaviour fixes one pod's behaviour by name, ahead of Config.Behaviour; it takes effect at the
// pod's next step (scheduling, the next pull retry, or its start).
func (s *Simulator) SetBehaviour(pod string, b Behaviour) {
	s.mu.Lock()
	s.overrides[pod] = b
	q := s.queue
	s.mu.Unlock()
	if q != nil {
		q.Add(s.cfg.Namespace + "/" + pod)
	}
}

// ClearBehaviour drops a SetBehaviour override.
func (s *Simulator) ClearBehaviour(pod string) {
	s.mu.Lock()
	delete(s.overrides, pod)
	s.mu.Unlock()
}

// SetBehaviourFunc replaces Config.Behaviour while running, so a test can "fix" a cause (a broken image,
// say) and see the next pods of the same template succeed; pods already waiting are re-evaluated at
// their next retry too.
func (s *Simulator) SetBehaviourFunc(f func(*corev1.Pod) Behaviour) {
	if f == nil {
		f = DefaultBehaviour
	}
	s.mu.Lock()
	s.behaviour = f
	s.mu.Unlock()
}

func (s *Simulator) behaviourOf(pod *corev1.Pod) Behaviour {
	s.mu.Lock()
	b, ok := s.overrides[pod.Name]
	f := s.behaviour
	warn := !s.warned[pod.UID]
	s.warned[pod.UID] = true
	s.mu.Unlock()
	if v, has := pod.Annotations[AnnotationBehaviour]; has && warn {
		if _, err := ParseBehaviour(v); err != nil {
			s.log.Warn("ignoring the pod's behaviour annotation", zap.String("agent", pod.Name), zap.Error(err))
		}
	}
	if !ok {
		b = f(pod)
	}
	return b.withStartUp(s.cfg.StartUp)
}

// Counters returns a copy of the totals.
func (s *Simulator) Counters() Counters {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counters
}

// Events returns a copy of everything recorded so far, oldest first.
func (s *Simulator) Events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.events...)
}

func (s *Simulator) count(f func(*Counters)) {
	s.mu.Lock()
	f(&s.counters)
	s.mu.Unlock()
}

// note records an event in the simulator's own list and the log.
func (s *Simulator) note(pod, reason, message string) {
	s.mu.Lock()
	s.events = append(s.events, Event{Time: time.Now(), Pod: pod, Reason: reason, Message: message})
	s.mu.Unlock()
	s.log.Info(message, zap.String("agent", pod), zap.String("reason", reason))
}

// noteWarning is note for what a kubelet reports as a Warning event, logged at warn level.
func (s *Simulator) noteWarning(pod, reason, message string) {
	s.mu.Lock()
	s.events = append(s.events, Event{Time: time.Now(), Pod: pod, Reason: reason, Message: message})
	s.mu.Unlock()
	s.log.Warn(message, zap.String("agent", pod), zap.String("reason", reason))
}

// emit records an event and also posts it as a Kubernetes Event from component ("kubelet" or
// "default-scheduler"), so `kubectl describe pod` in the demo tells the same story a real cluster would.
func (s *Simulator) emit(pod *corev1.Pod, component, eventType, reason, message string) {
	if eventType == corev1.EventTypeWarning {
		s.noteWarning(pod.Name, reason, message)
	} else {
		s.note(pod.Name, reason, message)
	}
	s.mu.Lock()
	rec := s.recorders[component]
	s.mu.Unlock()
	if rec != nil {
		rec.Event(pod, eventType, reason, message)
	}
}

// Run registers the node, then schedules and runs pods until ctx ends, and returns nil then; an error
// means it could not start. Pods keep their last status when it returns, as they would if a kubelet
// stopped, and the Node stays (its Lease is no longer renewed); their agents disconnect.
func (s *Simulator) Run(ctx context.Context) error {
	if s.cfg.Client == nil || s.cfg.Namespace == "" {
		return errors.New("nodesim: Config.Client and Config.Namespace are required")
	}
	selector, err := labels.Parse(s.cfg.LabelSelector)
	if err != nil {
		return fmt.Errorf("nodesim: label selector %q: %w", s.cfg.LabelSelector, err)
	}
	s.mu.Lock()
	if s.started {
		s.mu.Unlock()
		return errors.New("nodesim: Run called twice")
	}
	s.started = true
	s.mu.Unlock()

	node, err := s.registerNode(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped while starting: not a failure
		}
		return err
	}

	// No WithContext: the broadcaster would then shut itself down on ctx as well as in the deferred
	// Shutdown, and a second shutdown closes closed channels.
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: s.cfg.Client.CoreV1().Events("")})
	defer broadcaster.Shutdown()
	s.mu.Lock()
	s.recorders["kubelet"] = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "kubelet", Host: s.cfg.NodeName})
	s.recorders["default-scheduler"] = broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "default-scheduler"})
	s.mu.Unlock()

	var wg sync.WaitGroup
	wg.Go(func() { s.renewLease(ctx, node) })

	factory := informers.NewSharedInformerFactoryWithOptions(s.cfg.Client, 0,
		informers.WithNamespace(s.cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector.String() }))
	podInformer := factory.Core().V1().Pods()
	queue := workqueue.NewTypedRateLimitingQueueWithConfig(
		workqueue.NewTypedItemExponentialFailureRateLimiter[string](50*time.Millisecond, 10*time.Second),
		workqueue.TypedRateLimitingQueueConfig[string]{Name: "nodesim-" + s.cfg.NodeName})
	s.mu.Lock()
	s.queue = queue
	s.lister = podInformer.Lister()
	s.mu.Unlock()
	enqueue := func(obj any) {
		key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
		if err != nil {
			s.log.Error("cannot key pod", zap.Error(err))
			return
		}
		queue.Add(key)
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    enqueue,
		UpdateFunc: func(_, obj any) { enqueue(obj) },
		DeleteFunc: enqueue,
	}); err != nil {
		return fmt.Errorf("nodesim: pod event handler: %w", err)
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), podInformer.Informer().HasSynced) {
		queue.ShutDown()
		factory.Shutdown()
		wg.Wait()
		// Only an ended ctx stops the wait: a shutdown before the first list is not a failure.
		return nil
	}
	s.log.Info("node simulator running", zap.String("namespace", s.cfg.Namespace), zap.String("selector", selector.String()))

	for range s.cfg.Workers {
		wg.Go(func() {
			for s.processNext(ctx) {
			}
		})
	}
	<-ctx.Done()
	queue.ShutDown()
	factory.Shutdown()
	s.mu.Lock()
	runs := make([]*podRun, 0, len(s.runs))
	for _, r := range s.runs {
		runs = append(runs, r)
	}
	s.mu.Unlock()
	for _, r := range runs {
		r.cancel()
		<-r.done
	}
	wg.Wait()
	s.mu.Lock()
	clear(s.recorders)
	s.mu.Unlock()
	return nil
}

func (s *Simulator) processNext(ctx context.Context) bool {
	key, quit := s.queue.Get()
	if quit {
		return false
	}
	defer s.queue.Done(key)
	if err := s.sync(ctx, key); err != nil {
		if ctx.Err() == nil {
			s.log.Warn("pod sync failed, retrying", zap.String("key", key), zap.Error(err))
			s.queue.AddRateLimited(key)
		}
		return true
	}
	s.queue.Forget(key)
	return true
}

// sync brings one pod one step on: bind or report it unschedulable, start running it, or finish its
// deletion. Everything it decides comes from the cached pod, so a re-list gives the same answers.
func (s *Simulator) sync(ctx context.Context, key string) error {
	ns, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		return fmt.Errorf("split key %q: %w", key, err)
	}
	pod, err := s.lister.Pods(ns).Get(name)
	if apierrors.IsNotFound(err) {
		s.forget(key, "")
		return nil
	}
	if err != nil {
		return fmt.Errorf("get pod %s from cache: %w", key, err)
	}
	s.mu.Lock()
	if !s.seen[pod.UID] {
		s.seen[pod.UID] = true
		s.firstSeen[pod.UID] = time.Now()
		s.counters.PodsSeen++
	}
	s.mu.Unlock()
	// A pod recreated under the same name is a different pod: whatever ran for the old one ends.
	s.forget(key, pod.UID)

	switch {
	case pod.Spec.NodeName == "":
		if pod.DeletionTimestamp != nil {
			// The apiserver removes an unbound pod at once; one still here is held by a finalizer,
			// which is its owner's business, not a scheduler's.
			return nil
		}
		return s.schedule(ctx, key, pod)
	case pod.Spec.NodeName != s.cfg.NodeName:
		return nil
	case pod.DeletionTimestamp != nil:
		return s.finishDeletion(ctx, key, pod)
	default:
		s.ensureRun(ctx, key, pod)
		return nil
	}
}

// forget stops and drops the run kept for key unless it belongs to keepUID; used when a pod is gone or
// replaced. It writes nothing: the pod it ran is no longer there to write to.
func (s *Simulator) forget(key string, keepUID types.UID) {
	s.mu.Lock()
	r := s.runs[key]
	if r == nil || r.uid == keepUID {
		s.mu.Unlock()
		return
	}
	delete(s.runs, key)
	s.mu.Unlock()
	r.cancel()
	<-r.done
}

const (
	unschedulableMessage = "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector. " +
		"preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
)

// schedule plays kube-scheduler for an unbound pod: bind it to this node, or say why it cannot be.
func (s *Simulator) schedule(ctx context.Context, key string, pod *corev1.Pod) error {
	if len(pod.Spec.SchedulingGates) > 0 {
		s.gated(pod)
		return nil
	}
	reason := ""
	switch b := s.behaviourOf(pod); {
	case b.Unschedulable:
		reason = unschedulableMessage
	case !s.selectorMatches(pod):
		reason = unschedulableMessage
	default:
		if res := s.insufficient(pod); res != "" {
			reason = fmt.Sprintf("0/1 nodes are available: 1 Insufficient %s. preemption: 0/1 nodes are available: "+
				"1 No preemption victims found for incoming pod.", res)
		}
	}
	if d := s.behaviourOf(pod).ScheduleDelay; reason == "" && d > 0 {
		// The scheduler's latency: queueing, filtering and scoring before the binding.
		s.mu.Lock()
		wait := time.Until(s.firstSeen[pod.UID].Add(d))
		s.mu.Unlock()
		if wait > 0 {
			s.queue.AddAfter(key, wait)
			return nil
		}
	}
	if reason != "" {
		if err := s.markUnschedulable(ctx, pod, reason); err != nil {
			return err
		}
		// The scheduler retries unschedulable pods on its own clock; so does this, so a fixed cause
		// (SetBehaviour, a new node label) is noticed without an event on the pod.
		s.queue.AddAfter(key, s.cfg.RetryInterval)
		return nil
	}
	err := s.cfg.Client.CoreV1().Pods(pod.Namespace).Bind(ctx, &corev1.Binding{
		ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
		Target:     corev1.ObjectReference{APIVersion: "v1", Kind: "Node", Name: s.cfg.NodeName},
	}, metav1.CreateOptions{})
	switch {
	case apierrors.IsConflict(err) || apierrors.IsNotFound(err):
		// Bound already (the cache lags our own binding) or gone: the next event says which.
		return nil
	case err != nil:
		return fmt.Errorf("bind pod %s to %s: %w", key, s.cfg.NodeName, err)
	}
	s.count(func(c *Counters) { c.Bound++ })
	s.emit(pod, "default-scheduler", corev1.EventTypeNormal, "Scheduled",
		fmt.Sprintf("Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, s.cfg.NodeName))
	return nil
}

// gated leaves a pod with scheduling gates alone, as kube-scheduler does: its SchedulingGates
// PreEnqueue plugin keeps such a pod out of the active queue, so it is neither bound (the
// apiserver refuses a binding while gates remain) nor reported unschedulable, and no
// FailedScheduling event is posted. The PodScheduled=False condition with reason SchedulingGated
// is the apiserver's own, written at creation (pod strategy's applySchedulingGatedCondition), so
// nothing is written here either. Removing the last gate is an update event, which brings the pod
// back to schedule. The simulator notes the first time it sees each gated pod (Events only, with
// reason SchedulingGated), so tests can tell "seen and held" from "not seen yet".
func (s *Simulator) gated(pod *corev1.Pod) {
	s.mu.Lock()
	first := !s.gatedSeen[pod.UID]
	s.gatedSeen[pod.UID] = true
	s.mu.Unlock()
	if !first {
		return
	}
	gates := make([]string, 0, len(pod.Spec.SchedulingGates))
	for _, g := range pod.Spec.SchedulingGates {
		gates = append(gates, g.Name)
	}
	s.note(pod.Name, corev1.PodReasonSchedulingGated, "waiting for scheduling gates: "+strings.Join(gates, ", "))
}

// selectorMatches checks the pod's nodeSelector against this node's labels; affinity and taints are
// not simulated (the node has no taints).
func (s *Simulator) selectorMatches(pod *corev1.Pod) bool {
	nodeLabels := s.nodeLabels()
	for k, v := range pod.Spec.NodeSelector {
		if nodeLabels[k] != v {
			return false
		}
	}
	return true
}

// insufficient names the first resource the pod requests beyond the node's allocatable. Pods already
// running are not subtracted: the defaults are large enough that only an absurd request trips this.
func (s *Simulator) insufficient(pod *corev1.Pod) string {
	want := corev1.ResourceList{}
	for _, c := range pod.Spec.Containers {
		for k, v := range c.Resources.Requests {
			q := want[k]
			q.Add(v)
			want[k] = q
		}
	}
	for _, k := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		have, ok := s.cfg.Capacity[k]
		if q, asked := want[k]; asked && ok && q.Cmp(have) > 0 {
			return string(k)
		}
	}
	return ""
}

// markUnschedulable writes PodScheduled=False as the scheduler does, once per distinct message.
func (s *Simulator) markUnschedulable(ctx context.Context, pod *corev1.Pod, message string) error {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable && c.Message == message {
			return nil
		}
	}
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur, err := s.cfg.Client.CoreV1().Pods(pod.Namespace).Get(ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		if cur.UID != pod.UID || cur.Spec.NodeName != "" {
			return nil
		}
		setCondition(&cur.Status, corev1.PodCondition{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: corev1.PodReasonUnschedulable, Message: message,
		}, metav1.Now())
		_, err = s.cfg.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, cur, metav1.UpdateOptions{})
		return err
	})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("report pod %s/%s unschedulable: %w", pod.Namespace, pod.Name, err)
	}
	s.count(func(c *Counters) { c.Unschedulable++ })
	s.emit(pod, "default-scheduler", corev1.EventTypeWarning, "FailedScheduling", message)
	return nil
}

// setCondition replaces or adds a condition, keeping lastTransitionTime when the status is unchanged
// (as the scheduler and kubelet do, so "since when" stays true).
func setCondition(st *corev1.PodStatus, c corev1.PodCondition, now metav1.Time) {
	for i := range st.Conditions {
		if st.Conditions[i].Type != c.Type {
			continue
		}
		if st.Conditions[i].Status == c.Status {
			c.LastTransitionTime = st.Conditions[i].LastTransitionTime
		} else {
			c.LastTransitionTime = now
		}
		if c.LastProbeTime.IsZero() {
			c.LastProbeTime = st.Conditions[i].LastProbeTime
		}
		st.Conditions[i] = c
		return
	}
	c.LastTransitionTime = now
	st.Conditions = append(st.Conditions, c)
}

// ensureRun starts the goroutine that plays the kubelet for a pod bound here, once per pod UID.
func (s *Simulator) ensureRun(ctx context.Context, key string, pod *corev1.Pod) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.runs[key]; ok {
		return
	}
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		// Finished before this simulator saw it (a restart): a terminal pod never runs again.
		return
	}
	runCtx, cancel := context.WithCancel(ctx)
	r := &podRun{s: s, uid: pod.UID, pod: pod.DeepCopy(), cancel: cancel, done: make(chan struct{})}
	s.runs[key] = r
	go r.run(runCtx)
}

// finishDeletion plays the kubelet's end of a graceful deletion: stop the containers, report them
// terminated, then delete the pod for good with grace 0 and a UID precondition (so a pod recreated
// under the same name in the meantime is never touched).
func (s *Simulator) finishDeletion(ctx context.Context, key string, pod *corev1.Pod) error {
	s.mu.Lock()
	r := s.runs[key]
	s.mu.Unlock()
	st := *pod.Status.DeepCopy()
	if r != nil {
		r.cancel()
		<-r.done
		st = *r.status.DeepCopy()
	}
	if killStatus(pod, &st, time.Now()) {
		s.emit(pod, "kubelet", corev1.EventTypeNormal, "Killing", "Stopping container(s) of a pod being deleted")
		if err := s.writeStatus(ctx, pod, st, nil); err != nil && !errors.Is(err, errPodGone) {
			return err
		}
	}
	grace := int64(0)
	uid := pod.UID
	err := s.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
		GracePeriodSeconds: &grace,
		Preconditions:      &metav1.Preconditions{UID: &uid},
	})
	switch {
	case apierrors.IsNotFound(err) || apierrors.IsConflict(err):
		return nil
	case err != nil:
		return fmt.Errorf("finish deletion of pod %s: %w", key, err)
	}
	// A finalizer keeps the pod after this delete and brings it back here with every update: count
	// and tell the deletion once.
	s.mu.Lock()
	first := !s.deleted[pod.UID]
	s.deleted[pod.UID] = true
	if first {
		s.counters.Deleted++
	}
	s.mu.Unlock()
	if first {
		s.note(pod.Name, "Deleted", "pod deletion finished")
	}
	return nil
}

var errPodGone = errors.New("pod gone or replaced")

// writeStatus puts st on the pod, keeping the parts others own (conditions of types this node does not
// manage, qosClass). base, when given, is the last object this node wrote, which saves a GET.
func (s *Simulator) writeStatus(ctx context.Context, pod *corev1.Pod, st corev1.PodStatus, base *corev1.Pod) error {
	pods := s.cfg.Client.CoreV1().Pods(pod.Namespace)
	var written *corev1.Pod
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur := base
		base = nil
		if cur == nil {
			var err error
			if cur, err = pods.Get(ctx, pod.Name, metav1.GetOptions{}); err != nil {
				return err
			}
		}
		if cur.UID != pod.UID {
			return errPodGone
		}
		next := cur.DeepCopy()
		next.Status = mergeStatus(cur.Status, st)
		out, err := pods.UpdateStatus(ctx, next, metav1.UpdateOptions{})
		if err != nil {
			return err
		}
		written = out
		return nil
	})
	if apierrors.IsNotFound(err) {
		return errPodGone
	}
	if err != nil {
		return fmt.Errorf("update status of pod %s/%s: %w", pod.Namespace, pod.Name, err)
	}
	s.mu.Lock()
	if r := s.runs[pod.Namespace+"/"+pod.Name]; r != nil && r.uid == pod.UID {
		r.latest.Store(written)
	}
	s.mu.Unlock()
	return nil
}

// managedConditions are the pod conditions a kubelet owns; any other (DisruptionTarget, readiness
// gates) is left as found.
var managedConditions = map[corev1.PodConditionType]bool{
	corev1.PodScheduled:              true,
	corev1.PodReadyToStartContainers: true,
	corev1.PodInitialized:            true,
	corev1.ContainersReady:           true,
	corev1.PodReady:                  true,
}

func mergeStatus(cur, ours corev1.PodStatus) corev1.PodStatus {
	out := *ours.DeepCopy()
	out.QOSClass = cur.QOSClass
	for _, c := range cur.Conditions {
		if !managedConditions[c.Type] {
			out.Conditions = append(out.Conditions, c)
		}
	}
	return out
}

func (s *Simulator) nodeLabels() map[string]string {
	return map[string]string{
		"kubernetes.io/hostname":           s.cfg.NodeName,
		"kubernetes.io/os":                 "linux",
		"kubernetes.io/arch":               "amd64",
		"node.kubernetes.io/instance-type": "nodesim",
	}
}

// registerNode creates (or takes over) the Node object and reports it Ready, as a kubelet does when it
// starts; the lifecycle controller and `kubectl get nodes` then see a believable node.
func (s *Simulator) registerNode(ctx context.Context) (*corev1.Node, error) {
	now := metav1.Now()
	status := corev1.NodeStatus{
		Capacity:    s.cfg.Capacity.DeepCopy(),
		Allocatable: s.cfg.Capacity.DeepCopy(),
		Phase:       corev1.NodeRunning,
		Conditions: []corev1.NodeCondition{
			{Type: corev1.NodeMemoryPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientMemory", Message: "kubelet has sufficient memory available"},
			{Type: corev1.NodeDiskPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasNoDiskPressure", Message: "kubelet has no disk pressure"},
			{Type: corev1.NodePIDPressure, Status: corev1.ConditionFalse, Reason: "KubeletHasSufficientPID", Message: "kubelet has sufficient PID available"},
			{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady", Message: "kubelet is posting ready status"},
		},
		Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeInternalIP, Address: s.hostIP},
			{Type: corev1.NodeHostName, Address: s.cfg.NodeName},
		},
		NodeInfo: corev1.NodeSystemInfo{
			MachineID: s.cfg.NodeName, SystemUUID: s.cfg.NodeName, BootID: s.cfg.NodeName,
			KernelVersion: "nodesim", OSImage: "nodesim (no containers run)", ContainerRuntimeVersion: "nodesim://1",
			KubeletVersion: "v1.37.2-nodesim", OperatingSystem: "linux", Architecture: "amd64",
		},
	}
	for i := range status.Conditions {
		status.Conditions[i].LastHeartbeatTime = now
		status.Conditions[i].LastTransitionTime = now
	}
	nodes := s.cfg.Client.CoreV1().Nodes()
	node, err := nodes.Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: s.cfg.NodeName, Labels: s.nodeLabels()},
		Status:     status,
	}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		// Another simulator (or an earlier run) registered the same node: take it over. Two
		// simulators starting together may race on the status update, hence the retry.
		err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
			current, err := nodes.Get(ctx, s.cfg.NodeName, metav1.GetOptions{})
			if err != nil {
				return err
			}
			current.Status = status
			node, err = nodes.UpdateStatus(ctx, current, metav1.UpdateOptions{})
			return err
		})
	} else if err == nil {
		node.Status = status
		node, err = nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{})
	}
	if err != nil {
		return nil, fmt.Errorf("nodesim: register node %s: %w", s.cfg.NodeName, err)
	}
	s.log.Info("node registered", zap.String("internalIP", s.hostIP))
	return node, nil
}

// renewLease keeps the node's heartbeat Lease fresh, so a kube-controller-manager running beside the
// simulator does not mark the node NotReady and evict its pods.
func (s *Simulator) renewLease(ctx context.Context, node *corev1.Node) {
	leases := s.cfg.Client.CoordinationV1().Leases(nodeLeaseNS)
	duration := int32(leaseDuration / time.Second)
	holder := s.cfg.NodeName
	renew := func() error {
		now := metav1.NewMicroTime(time.Now())
		lease, err := leases.Get(ctx, s.cfg.NodeName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{
					Name: s.cfg.NodeName, Namespace: nodeLeaseNS,
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID}},
				},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &duration, RenewTime: &now},
			}, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		lease.Spec.HolderIdentity, lease.Spec.LeaseDurationSeconds, lease.Spec.RenewTime = &holder, &duration, &now
		_, err = leases.Update(ctx, lease, metav1.UpdateOptions{})
		return err
	}
	t := time.NewTicker(leaseRenew)
	defer t.Stop()
	for {
		if err := renew(); err != nil && ctx.Err() == nil {
			s.log.Warn("node lease not renewed", zap.Error(err))
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
