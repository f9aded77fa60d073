package nodesim

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
	"time"

	"go.uber.org/zap"
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
