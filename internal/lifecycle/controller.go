package lifecycle

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// Controller turns Jenkins demand into agent pods and finished agents into nothing: each poll it
// observes (observe.go), decides (decide.go) and acts (act.go).
type Controller struct {
	cfg       Config
	log       *zap.Logger
	jenkins   Jenkins
	kube      kubernetes.Interface
	templates Templates
	metrics   *Metrics
	recorder  record.EventRecorder
	now       func() time.Time

	podLister    corelisters.PodNamespaceLister
	secretLister corelisters.SecretNamespaceLister

	exp *expectations
	// evictions are the pods the watch saw Kueue evict, for the next poll.
	evictions *evictionLog
	act       *actor
	watch     *busyWatch
	labels    *jobLabels
	gone      *gonePods
	// labelCache serves every poll's template selection (labelexpr.Cache: bounded).
	labelCache *labelexpr.Cache
	// mem is the memory decide carries from poll to poll; only the poll loop touches it.
	mem Memory

	mu     sync.Mutex
	status Status
	ready  bool
}

// New makes a controller. The informers start in Run.
func New(logger *zap.Logger, jc Jenkins, kube kubernetes.Interface, templates Templates, metrics *Metrics, cfg Config) (*Controller, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if metrics == nil {
		metrics = NewMetrics(nil)
	}
	broadcaster := record.NewBroadcaster()
	broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: kube.CoreV1().Events(cfg.Namespace)})
	c := &Controller{
		cfg:        cfg,
		log:        logger,
		jenkins:    jc,
		kube:       kube,
		templates:  templates,
		metrics:    metrics,
		recorder:   broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "jenkins-agent-provisioner"}),
		now:        time.Now,
		exp:        newExpectations(),
		evictions:  newEvictionLog(),
		watch:      newBusyWatch(),
		labels:     newJobLabels(jc, logger),
		gone:       newGonePods(),
		mem:        NewMemory(),
		labelCache: labelexpr.NewCache(0),
	}
	if cfg.Clock != nil {
		c.now = cfg.Clock
	}
	c.act = newActor(logger, c.step)
	c.status.JenkinsURL = cfg.JenkinsURL
	return c, nil
}

// ManagedSelector selects the pods and Secrets this provisioner made.
func ManagedSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{podtemplate.LabelManagedBy: podtemplate.ManagedByValue})
}

// Run provisions until ctx ends. On return no step of ours is still running; agents are left alone.
func (c *Controller) Run(ctx context.Context) error {
	// Run may also end by itself (refusedTooOften): stop ends the informers, workers and watch then,
	// before the deferred waits for them.
	ctx, stop := context.WithCancel(ctx)
	defer stop()
	if len(c.cfg.Identity.Key) == 0 {
		id, err := c.ensureIdentity(ctx)
		if err != nil {
			return err
		}
		c.cfg.Identity = id
	}
	factory := informers.NewSharedInformerFactoryWithOptions(c.kube, 0,
		informers.WithNamespace(c.cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = ManagedSelector().String() }),
		informers.WithTransform(trimForCache))
	pods := factory.Core().V1().Pods()
	secrets := factory.Core().V1().Secrets()
	c.podLister = pods.Lister().Pods(c.cfg.Namespace)
	c.secretLister = secrets.Lister().Secrets(c.cfg.Namespace)
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				c.exp.observed(pod.Name)
			}
		},
		UpdateFunc: func(_, obj any) { c.evictions.note(obj, c.now()) },
		DeleteFunc: func(obj any) {
			c.gone.deleted(obj, c.now())
			c.evictions.note(obj, c.now())
		},
	}); err != nil {
		return fmt.Errorf("watch agent pods: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), pods.Informer().HasSynced, secrets.Informer().HasSynced) {
		return fmt.Errorf("wait for pod and secret caches: %w", ctx.Err())
	}

	// Steps under way finish before Run returns (their context is cancelled with ctx, so an API call
	// in flight returns promptly), so a shutdown never leaves half a step running.
	var workers sync.WaitGroup
	defer workers.Wait()
	workers.Go(func() { c.act.work(ctx, c.cfg.Workers, min(c.cfg.Workers, 4)) })
	workers.Go(func() {
		c.watch.run(ctx, c.cfg.Identity, c.cfg.BusyPollInterval, c.jenkins.Computers, func(a Action) { c.act.submit(a) })
	})

	c.log.Info("provisioning", zap.String("namespace", c.cfg.Namespace), zap.String("installation", c.cfg.Identity.ID), zap.Duration("pollInterval", c.cfg.PollInterval),
		zap.Int("maxAgents", c.cfg.MaxAgents))
	placeholderChecked := time.Time{}
	ticker := time.NewTicker(c.cfg.PollInterval)
	defer ticker.Stop()
	for {
		// The placeholder comes before the reads: Jenkins names the label a build waits for only
		// while at least one agent node exists.
		if c.now().Sub(placeholderChecked) > time.Minute {
			if err := c.ensurePlaceholder(ctx); err != nil {
				c.log.Warn("placeholder node", zap.Error(err))
			} else {
				placeholderChecked = c.now()
			}
		}
		if err := c.poll(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("poll", zap.Error(err))
		}
		if err := c.refusedTooOften(); err != nil {
			c.log.Error("giving up: Jenkins refuses the token; a replica with a good token can lead", zap.Error(err))
			stop()
			return err
		}
		select {
		case <-ctx.Done():
			c.log.Info("stopping: no new agents; running agents are left alone")
			return nil
		case <-ticker.C:
		}
	}
}

// ensureIdentity reads (or creates once) the installation identity, retrying while the API server
// is unreachable: nothing may be created or deleted before the controller knows what is its own.
func (c *Controller) ensureIdentity(ctx context.Context) (Identity, error) {
	for {
		id, err := EnsureIdentity(ctx, c.kube, c.cfg.Namespace, c.cfg.InstallationID)
		if err == nil {
			return id, nil
		}
		if apierrors.IsForbidden(err) || ctx.Err() != nil {
			return Identity{}, err
		}
		c.log.Warn("installation identity; retrying", zap.Error(err))
		if !waitfor.Duration(ctx, 2*time.Second) {
			return Identity{}, fmt.Errorf("installation identity: %w", ctx.Err())
		}
	}
}

// unauthorizedCounter is implemented by *jenkins.Client: 401 answers in a row.
type unauthorizedCounter interface{ ConsecutiveUnauthorized() int }

// refusedTooOften is an error once Jenkins has answered 401 to MaxUnauthorized requests in a row
// (the client re-reads the token file after each). The token will not fix itself; returning from
// Run gives up the Lease (cmd/provisioner releases it), so a standby whose token works takes over.
func (c *Controller) refusedTooOften() error {
	counter, ok := c.jenkins.(unauthorizedCounter)
	if !ok || c.cfg.MaxUnauthorized < 0 {
		return nil
	}
	if n := counter.ConsecutiveUnauthorized(); n >= c.cfg.MaxUnauthorized {
		return fmt.Errorf("lifecycle: Jenkins answered %d requests in a row with 401 (PROVISIONER_MAX_UNAUTHORIZED=%d): %w",
			n, c.cfg.MaxUnauthorized, jenkins.ErrUnauthorized)
	}
	return nil
}

// Ready reports whether the controller has synced caches and read Jenkins successfully lately.
func (c *Controller) Ready() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ready
}

func (c *Controller) ensurePlaceholder(ctx context.Context) error {
	err := c.jenkins.EnsurePlaceholderNode(ctx, c.cfg.PlaceholderName, c.cfg.PlaceholderName, placeholderDescription)
	if err != nil {
		return fmt.Errorf("ensure placeholder node %s: %w", c.cfg.PlaceholderName, err)
	}
	return nil
}

// trimForCache drops what the controller never reads from cached pods and Secrets: managedFields
// are often the largest part of an object, and with a thousand agents the cache is most of the
// process's memory.
//
// Agent Secrets lose their data too: each holds an agent's Jenkins secret, the controller never
// reads it back (it deletes and owns Secrets by name and UID), and what is not in memory cannot leak
// through a heap dump or a debug handler.
func trimForCache(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	if s, ok := obj.(*corev1.Secret); ok {
		s.Data, s.StringData = nil, nil
	}
	return obj, nil
}

// poll is one observe → decide → act round.
func (c *Controller) poll(ctx context.Context) error {
	snap, readErr := c.observe(ctx)
	d := Decide(snap, c.mem, c.cfg.decideConfig(), c.now())
	c.mu.Lock()
	c.ready = snap.JenkinsFresh
	c.mu.Unlock()
	// A held decision changes nothing but the memory of the outage.
	c.mem = d.Memory
	if d.Hold {
		// Outcomes not weighed yet wait for a poll that decides.
		for _, o := range snap.Outcomes {
			c.act.report(o)
		}
		return readErr
	}
	c.apply(d)
	c.metrics.pollDuration.Observe(c.now().Sub(snap.At).Seconds())
	return nil
}

// apply hands a decision to act: its notices reported, its status and gauges published, its actions
// queued.
func (c *Controller) apply(d Decision) {
	for _, n := range d.Notices {
		c.notify(n)
	}
	c.metrics.setAgents(d.Agents)
	c.metrics.setWaiting(d.Waiting)
	c.metrics.warm.set(d.Warm)
	c.metrics.setForeign(d.Foreign)
	for _, w := range d.Status.Waiting {
		if w.Why.Kind != WaitStarting {
			c.log.Debug("builds wait", zap.String("label", w.Label), zap.String("template", w.Template), zap.Int("builds", w.Builds),
				zap.String("why", string(w.Why.Kind)), zap.String("detail", w.Why.Detail), zap.Time("until", w.Why.Until))
		}
	}
	c.mu.Lock()
	d.Status.JenkinsURL = c.cfg.JenkinsURL
	c.status = d.Status
	c.mu.Unlock()
	c.watch.set(d.Exposed)
	for _, a := range d.Actions {
		if a.Kind == ActCreate {
			if a.Spec == nil {
				continue
			}
			// The name is reserved as an expectation before the step starts, so the next poll
			// counts it whatever the step has done by then.
			a.Agent = podtemplate.NewAgentName(a.Template)
			c.exp.expect(a.Agent, a.Template)
			if !c.act.submit(a) {
				c.exp.ended(a.Agent, false, c.now())
			}
			continue
		}
		c.act.submit(a)
	}
}

// notify turns a notice into its Event, log line and metric.
func (c *Controller) notify(n Notice) {
	log := c.log.With(zap.String("agent", n.Agent), zap.String("template", n.Template))
	switch n.Kind {
	case NoticeOnline:
		c.recorder.Eventf(n.Pod, corev1.EventTypeNormal, "AgentOnline", "Agent %s connected to Jenkins", n.Agent)
		log.Info("agent online")
		if n.Latency > 0 {
			c.metrics.queueToOnline.WithLabelValues(n.Template).Observe(n.Latency.Seconds())
		}
	case NoticeBuildStarted:
		if n.ReadyFor > 0 {
			c.notifyReadyTook(n, log)
		}
		c.recorder.Eventf(n.Pod, corev1.EventTypeNormal, "BuildStarted", "Build %s started on agent %s", n.Build, n.Agent)
		log.Info("build started", zap.String("build", n.Build))
	case NoticeFailed:
		c.metrics.failed.WithLabelValues(n.Template, string(n.Reason.Kind)).Inc()
		log.Warn("agent failed; removing it and backing the template off", zap.String("reason", n.Reason.Detail),
			zap.String("kind", string(n.Reason.Kind)), zap.Duration("backoff", n.Backoff))
		if n.Pod != nil {
			c.recorder.Eventf(n.Pod, corev1.EventTypeWarning, "AgentFailed", "Agent %s failed: %s; template %s backs off %s",
				n.Agent, n.Reason.Detail, n.Template, n.Backoff)
		}
	case NoticeRefused:
		c.metrics.failed.WithLabelValues(n.Template, string(n.Reason.Kind)).Inc()
		if n.Pod != nil {
			c.recorder.Eventf(n.Pod, corev1.EventTypeWarning, "ProvisioningRefused", "Cannot create agent pod for template %s: %s (HTTP %s); backing off %s",
				n.Template, n.Reason.Detail, n.Code, n.Backoff)
		}
		log.Warn("apiserver refused the agent; backing the template off", zap.String("reason", n.Reason.Detail),
			zap.String("kind", string(n.Reason.Kind)), zap.String("code", n.Code), zap.Duration("backoff", n.Backoff))
	case NoticeEvicted:
		if n.Build != "" {
			c.metrics.buildsLost.WithLabelValues(n.Template, string(n.Reason.Kind)).Inc()
			c.recorder.Eventf(n.Pod, corev1.EventTypeWarning, "AgentEvicted", "Agent %s %s; build %s lost with it", n.Agent, n.Reason.Detail, n.Build)
			log.Warn("agent evicted by Kueue with its build", zap.String("reason", n.Reason.Detail), zap.String("build", n.Build))
		} else {
			c.recorder.Eventf(n.Pod, corev1.EventTypeWarning, "AgentEvicted", "Agent %s %s; no build ran on it", n.Agent, n.Reason.Detail)
			log.Info("agent evicted by Kueue before a build", zap.String("reason", n.Reason.Detail))
		}
	case NoticeForeign:
		// Never deleted nor counted: someone else made it (another installation, a person, an
		// attacker naming a pod after a Secret). Say so once; an operator decides.
		c.log.Warn("object looks like one of ours but this installation did not make it; leaving it alone",
			zap.String("kind", n.Object), zap.String("name", n.Agent), zap.String("reason", n.Reason.Detail))
		if n.Pod != nil {
			c.recorder.Eventf(n.Pod, corev1.EventTypeWarning, "ForeignAgentPod", "Pod %s carries the provisioner's labels but was not made by installation %s: left alone, not counted",
				n.Agent, c.cfg.Identity.ID)
		}
	case NoticeBadDemand:
		c.log.Warn("queued build asks for a label that cannot be read; serving the rest of the queue",
			zap.Int64("queueItem", n.QueueID), zap.String("reason", n.Reason.Detail))
	case NoticeUnserved:
		c.log.Info("builds wait for a label no template serves", zap.String("label", n.Label), zap.Int("builds", n.Builds))
	case NoticeSuspended:
		log.Info("agent disconnected; keeping it for its build to resume", zap.String("reason", n.Reason.Detail),
			zap.String("build", n.Build), zap.Duration("reconnectGrace", n.Backoff))
		if n.Pod != nil {
			c.recorder.Eventf(n.Pod, corev1.EventTypeNormal, "AgentSuspended", "Agent %s: %s; kept up to %s for it to reconnect%s",
				n.Agent, n.Reason.Detail, n.Backoff, buildSuffix(n.Build))
		}
	case NoticeResuming:
		log.Info("a resumed build is bound to this agent; bringing it online for that build", zap.String("build", n.Build))
		if n.Pod != nil {
			c.recorder.Eventf(n.Pod, corev1.EventTypeNormal, "AgentResuming", "Agent %s serves its resumed node block%s", n.Agent, buildSuffix(n.Build))
		}
	case NoticeLost:
		c.metrics.lost.WithLabelValues(n.Template, string(n.Reason.Kind)).Inc()
		log.Warn("agent killed mid-build; deleting its node and pod", zap.String("kind", string(n.Reason.Kind)),
			zap.String("reason", n.Reason.Detail), zap.String("build", n.Build))
		var obj runtime.Object = n.Pod
		if n.Pod == nil {
			// The pod is gone: the Event names it by reference.
			obj = &corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: c.cfg.Namespace, Name: n.Agent}
		}
		c.recorder.Eventf(obj, corev1.EventTypeWarning, "AgentLost", "Agent %s killed mid-build (%s): %s%s; deleting its Jenkins node",
			n.Agent, n.Reason.Kind, n.Reason.Detail, buildSuffix(n.Build))
	}
}
