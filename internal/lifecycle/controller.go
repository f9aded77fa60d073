package lifecycle

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/kubernetes/scheme"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// Controller turns Jenkins demand into agent pods and finished agents into nothing.
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
	synced       []cache.InformerSynced

	// slots bounds the provisioning and deletion steps under way; steps counts them for shutdown.
	slots chan struct{}
	steps sync.WaitGroup
	// stopping is set when Run's context ends: no step starts after it.
	stopping bool

	mu sync.Mutex
	// inFlight names agents with a step under way, so a poll never starts a second one.
	inFlight map[string]bool
	// expected are creations not yet seen by the informer: name → template (expectations).
	expected map[string]expectation
	backoff  *backoff
	// surplusSince is when a template first had more ready agents than waiting builds.
	surplusSince map[string]time.Time
	// seen dedupes one-shot observations (events, metrics) per agent: "online/NAME", "busy/NAME"...
	seen map[string]time.Time
	// exposed counts agents that could take a build unnoticed; the busy watch runs while > 0.
	exposed     int
	exposedKick chan struct{}
	status      Status
	ready       bool
}

type expectation struct {
	template string
	since    time.Time
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
	return &Controller{
		cfg:          cfg,
		log:          logger,
		jenkins:      jc,
		kube:         kube,
		templates:    templates,
		metrics:      metrics,
		recorder:     broadcaster.NewRecorder(scheme.Scheme, corev1.EventSource{Component: "jenkins-agent-provisioner"}),
		now:          time.Now,
		slots:        make(chan struct{}, cfg.Workers),
		inFlight:     map[string]bool{},
		expected:     map[string]expectation{},
		backoff:      newBackoff(cfg.BackoffBase, cfg.BackoffMax),
		surplusSince: map[string]time.Time{},
		seen:         map[string]time.Time{},
		exposedKick:  make(chan struct{}, 1),
	}, nil
}

// ManagedSelector selects the pods and Secrets this provisioner made.
func ManagedSelector() labels.Selector {
	return labels.SelectorFromSet(labels.Set{podtemplate.LabelManagedBy: podtemplate.ManagedByValue})
}

// Run provisions until ctx ends. On return no step of ours is still running; agents are left alone.
func (c *Controller) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactoryWithOptions(c.kube, 0,
		informers.WithNamespace(c.cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = ManagedSelector().String() }),
		informers.WithTransform(trimForCache))
	pods := factory.Core().V1().Pods()
	secrets := factory.Core().V1().Secrets()
	c.podLister = pods.Lister().Pods(c.cfg.Namespace)
	c.secretLister = secrets.Lister().Secrets(c.cfg.Namespace)
	c.synced = []cache.InformerSynced{pods.Informer().HasSynced, secrets.Informer().HasSynced}
	if _, err := pods.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) { c.observed(obj) },
	}); err != nil {
		return fmt.Errorf("watch agent pods: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), c.synced...) {
		return fmt.Errorf("wait for pod and secret caches: %w", ctx.Err())
	}

	// Steps under way finish before Run returns (their context is cancelled with ctx, so an API
	// call in flight returns promptly), so a shutdown never leaves half a step running.
	defer func() {
		c.mu.Lock()
		c.stopping = true
		c.mu.Unlock()
		c.steps.Wait()
	}()

	var watch sync.WaitGroup
	watch.Go(func() { c.busyWatch(ctx) })
	defer watch.Wait()

	c.log.Info("provisioning", zap.String("namespace", c.cfg.Namespace), zap.Duration("pollInterval", c.cfg.PollInterval),
		zap.Int("maxAgents", c.cfg.MaxAgents))
	placeholderChecked := time.Time{}
	ticker := time.NewTicker(c.cfg.PollInterval)
	defer ticker.Stop()
	for {
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
		select {
		case <-ctx.Done():
			c.log.Info("stopping: no new agents; running agents are left alone")
			return nil
		case <-ticker.C:
		}
	}
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
func trimForCache(obj any) (any, error) {
	if m, ok := obj.(metav1.Object); ok {
		m.SetManagedFields(nil)
	}
	return obj, nil
}

// observed clears the expectation of a pod the informer now shows.
func (c *Controller) observed(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	c.mu.Lock()
	delete(c.expected, pod.Name)
	c.mu.Unlock()
}

// snapshot is one poll's view of the world.
type snapshot struct {
	at        time.Time
	demand    []jenkins.Demand
	computers map[string]*jenkins.Computer
	agents    []*Agent
	set       *podtemplate.Set
}

// poll reads Jenkins (two requests) and acts on what it sees.
//
// The computer list is read before the queue, on purpose. The two reads are not one snapshot, and a
// build can move from the queue to an idle agent between them. Read in this order, such a build shows
// up at worst as an idle agent and no waiting build (one agent too few, made up next poll); read the
// other way round it would show up as a busy agent and a waiting build, and a second agent would be
// created for a build that already has one.
func (c *Controller) poll(ctx context.Context) error {
	start := c.now()
	// A hung request must not blind the controller for the client's whole retry budget: give the
	// two reads a deadline, and let the next poll try afresh.
	readCtx, cancel := context.WithTimeout(ctx, max(5*c.cfg.PollInterval, 5*time.Second))
	defer cancel()
	computers, err := c.jenkins.Computers(readCtx)
	if err != nil {
		// Never decide on half a view: deleting or creating from a stale or partial picture is how
		// builds get dropped and agents killed.
		c.setReady(false)
		return fmt.Errorf("read Jenkins computers: %w", err)
	}
	demand, err := c.jenkins.Queue(readCtx)
	if err != nil {
		c.setReady(false)
		return fmt.Errorf("read Jenkins queue: %w", err)
	}
	c.setReady(true)
	// "Waiting for next available executor on X" names a label or the one node carrying it; the
	// computer list of this poll says which.
	demand = jenkins.ResolveNodes(demand, computers)
	snap := &snapshot{at: start, demand: demand, computers: map[string]*jenkins.Computer{}, set: c.templates.Current()}
	for i := range computers {
		snap.computers[computers[i].Name] = &computers[i]
	}
	snap.agents = c.agents(snap)
	c.act(ctx, snap)
	c.metrics.pollDuration.Observe(c.now().Sub(start).Seconds())
	return nil
}

func (c *Controller) setReady(v bool) {
	c.mu.Lock()
	c.ready = v
	c.mu.Unlock()
}

// agents joins our pods and our Jenkins nodes by name and classifies each.
func (c *Controller) agents(snap *snapshot) []*Agent {
	pods, _ := c.podLister.List(labels.Everything())
	byName := map[string]*Agent{}
	for _, p := range pods {
		byName[p.Name] = &Agent{Name: p.Name, Template: p.Labels[podtemplate.LabelTemplate], Pod: p}
	}
	for name, comp := range snap.computers {
		tmpl, _, ok := parseNodeDescription(comp.Description)
		if !ok {
			continue
		}
		a := byName[name]
		if a == nil {
			a = &Agent{Name: name, Template: tmpl}
			byName[name] = a
		}
		a.Computer = comp
	}
	opts := classifyOptions{
		UnschedulableGrace:    c.cfg.UnschedulableGrace,
		DefaultConnectTimeout: c.cfg.DefaultConnectTimeout,
		OrphanGrace:           c.cfg.OrphanGrace,
		ConfigErrorGrace:      15 * time.Second,
	}
	out := make([]*Agent, 0, len(byName))
	for _, a := range byName {
		a.State, a.Reason = classify(a.Pod, a.Computer, c.now(), snap.at, opts)
		a.Build = currentBuild(a.Computer)
		a.Marked = a.Computer != nil && a.Computer.TemporarilyOffline && strings.HasPrefix(a.Computer.OfflineReason, reasonPrefix)
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// act compares what should be with what is and starts the steps that close the gap.
func (c *Controller) act(ctx context.Context, snap *snapshot) {
	now := c.now()
	byNode := map[string]string{}
	for _, a := range snap.agents {
		byNode[a.Name] = a.Template
	}

	// What each agent's state asks for.
	exposed := 0
	for _, a := range snap.agents {
		c.observe(a, now)
		switch a.State {
		case Busy:
			if !a.Marked {
				c.start(a.Name, func() { c.markBusy(ctx, a) })
			}
		case Done, Released:
			c.start(a.Name, func() { c.finish(ctx, a) })
		case Failed:
			// Back the template off now, before this poll plans new agents: done in the
			// asynchronous step, the plan below would replace the failed agent at once.
			c.noteFailure(a)
			c.start(a.Name, func() { c.fail(ctx, a) })
		case Orphan:
			if c.orphanExpired(a, snap.at) {
				c.start(a.Name, func() { c.removeOrphan(ctx, a) })
			}
		case Terminating:
			if a.Computer != nil {
				c.start(a.Name, func() { c.deleteNode(ctx, a.Name, a.Template) })
			}
		case Retained:
			if until, err := time.Parse(time.RFC3339, a.Pod.Annotations[annotationRetainUntil]); err != nil || now.After(until) {
				c.start(a.Name, func() { c.deletePodAndSecret(ctx, a, "retention expired") })
			}
		case Idle, Starting:
			// Any agent that is, or may any moment be, connected and unmarked: a starting pod can
			// connect, take a build and finish a short one between two polls.
			if a.Pod != nil && !a.Marked {
				exposed++
			}
		}
	}
	c.setExposed(exposed)
	c.reapSecrets(ctx, snap)

	// What demand asks for.
	set := snap.set
	if set == nil {
		c.updateStatus(snap, nil)
		return
	}
	waiting := c.mapDemand(ctx, snap, byNode)
	loads := c.loads(snap, waiting, now)
	creates := planCreates(loads, c.liveTotal(snap), c.cfg.MaxAgents)
	for _, l := range loads {
		c.release(ctx, snap, l, now)
	}
	for name, n := range creates {
		t, ok := set.Get(name)
		if !ok {
			continue
		}
		queued := waiting[name]
		for i := range n {
			var queuedAt time.Time
			if i < len(queued) {
				queuedAt = queued[i].InQueueSince
			}
			c.provisionAsync(ctx, t, queuedAt)
		}
	}
	c.updateStatus(snap, waiting)
}

// mapDemand assigns every waiting build to the template that will serve it.
func (c *Controller) mapDemand(ctx context.Context, snap *snapshot, byNode map[string]string) map[string][]jenkins.Demand {
	out := map[string][]jenkins.Demand{}
	unserved := map[string]int{}
	for _, d := range snap.demand {
		name, label := c.templateFor(ctx, snap.set, d, byNode)
		c.metrics.waiting(label)
		if name == "" {
			unserved[label]++
			continue
		}
		out[name] = append(out[name], d)
	}
	c.metrics.setWaiting()
	for label, n := range unserved {
		key := "unserved/" + label
		c.mu.Lock()
		last, ok := c.seen[key]
		if !ok || c.now().Sub(last) > time.Minute {
			c.seen[key] = c.now()
			c.mu.Unlock()
			c.log.Info("builds wait for a label no template serves", zap.String("label", label), zap.Int("builds", n))
			continue
		}
		c.mu.Unlock()
	}
	for _, list := range out {
		sort.Slice(list, func(i, j int) bool { return list[i].InQueueSince.Before(list[j].InQueueSince) })
	}
	return out
}

// templateFor names the template serving a build, and the label (for logs and metrics).
func (c *Controller) templateFor(ctx context.Context, set *podtemplate.Set, d jenkins.Demand, byNode map[string]string) (string, string) {
	switch {
	case d.Label != "":
		if t, ok := set.Select(d.Label); ok {
			return t.Name, d.Label
		}
		return "", d.Label
	case d.Node != "":
		// Jenkins names the one node that carries the label instead of the label: if it is one of
		// ours, the build waits for that agent's template.
		if tmpl, ok := byNode[d.Node]; ok && tmpl != "" {
			if _, ok := set.Get(tmpl); ok {
				return tmpl, tmpl
			}
		}
		return "", "node:" + d.Node
	default:
		// Jenkins named neither label nor node. A freestyle job's own configuration says what it
		// asks for; anything else (a pipeline node {} block, or a build Jenkins said has no label)
		// is an unlabelled build.
		expr := ""
		if d.Kind == jenkins.KindFreestyle && d.TaskURL != "" && !d.Unlabelled {
			e, err := c.jenkins.JobLabelExpression(ctx, d.TaskURL)
			if err != nil {
				c.log.Warn("read job label expression", zap.Int64("queueItem", d.QueueID), zap.String("job", d.TaskURL), zap.Error(err))
				return "", "unknown"
			}
			expr = e
		}
		if t, ok := set.Select(expr); ok {
			return t.Name, expr
		}
		return "", expr
	}
}

// loads sums, per template, what the plan needs.
func (c *Controller) loads(snap *snapshot, waiting map[string][]jenkins.Demand, now time.Time) []templateLoad {
	byName := map[string]*templateLoad{}
	for _, t := range snap.set.Templates {
		l := &templateLoad{Name: t.Name, MaxAgents: t.MaxAgents, Waiting: len(waiting[t.Name])}
		if len(waiting[t.Name]) > 0 {
			l.OldestWaiting = waiting[t.Name][0].InQueueSince
		}
		l.BackedOff, _ = c.backoff.active(t.Name, now)
		l.Probing = c.backoff.probing(t.Name)
		byName[t.Name] = l
	}
	for _, a := range snap.agents {
		l := byName[a.Template]
		if l == nil || a.Pod == nil {
			continue
		}
		l.Live++
		if (a.State == Idle || a.State == Starting) && !a.Marked {
			l.Ready++
		}
	}
	c.mu.Lock()
	for name, e := range c.expected {
		if now.Sub(e.since) > time.Minute {
			delete(c.expected, name) // the informer lost it or it never came: the re-list is the truth
			continue
		}
		if l := byName[e.template]; l != nil && !c.podExists(name) {
			l.Live++
			l.Ready++
		}
	}
	c.mu.Unlock()
	out := make([]templateLoad, 0, len(byName))
	for _, t := range snap.set.Templates {
		out = append(out, *byName[t.Name])
	}
	return out
}

func (c *Controller) podExists(name string) bool {
	_, err := c.podLister.Get(name)
	return err == nil
}

// liveTotal counts every agent pod of ours, plus creations not yet in the cache.
func (c *Controller) liveTotal(snap *snapshot) int {
	n := 0
	for _, a := range snap.agents {
		if a.Pod != nil {
			n++
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for name := range c.expected {
		if !c.podExists(name) {
			n++
		}
	}
	return n
}

// release lets surplus agents go once demand has stayed below supply for ReleaseGrace. Releasing
// is a mark first (no build can land on a temporarily offline node), deletion on the next poll, so an
// agent that took a build in the meantime finishes it.
func (c *Controller) release(ctx context.Context, snap *snapshot, l templateLoad, now time.Time) {
	surplus := l.Ready - l.Waiting
	c.mu.Lock()
	if surplus <= 0 {
		delete(c.surplusSince, l.Name)
		c.mu.Unlock()
		return
	}
	since, ok := c.surplusSince[l.Name]
	if !ok {
		c.surplusSince[l.Name] = now
		c.mu.Unlock()
		return
	}
	c.mu.Unlock()
	if now.Sub(since) < c.cfg.ReleaseGrace {
		return
	}
	// Release the youngest first: they are the least far along.
	var candidates []*Agent
	for _, a := range snap.agents {
		if a.Template == l.Name && a.Pod != nil && a.Computer != nil && !a.Marked && (a.State == Idle || a.State == Starting) {
			candidates = append(candidates, a)
		}
	}
	sort.Slice(candidates, func(i, j int) bool {
		return candidates[i].Pod.CreationTimestamp.After(candidates[j].Pod.CreationTimestamp.Time)
	})
	for _, a := range candidates[:min(surplus, len(candidates))] {
		c.start(a.Name, func() {
			c.logAgent(a).Info("releasing agent: no build is waiting for it", zap.Duration("grace", c.cfg.ReleaseGrace))
			if err := c.jenkins.SetTemporarilyOffline(ctx, a.Name, reasonReleased); err != nil {
				c.logAgent(a).Warn("mark agent released", zap.Error(err))
			}
		})
	}
}

// start runs step for an agent, at most Workers at once, unless one is already under way for it.
func (c *Controller) start(name string, step func()) {
	c.mu.Lock()
	if c.inFlight[name] || c.stopping {
		c.mu.Unlock()
		return
	}
	c.inFlight[name] = true
	c.steps.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.steps.Done()
		c.slots <- struct{}{}
		defer func() {
			<-c.slots
			c.mu.Lock()
			delete(c.inFlight, name)
			c.mu.Unlock()
		}()
		step()
	}()
}

func (c *Controller) logAgent(a *Agent) *zap.Logger {
	return c.log.With(zap.String("agent", a.Name), zap.String("template", a.Template))
}

// observe emits the once-per-agent events and metrics for what a poll shows.
func (c *Controller) observe(a *Agent, now time.Time) {
	if a.Pod == nil {
		return
	}
	switch a.State {
	case Idle, Busy:
		if c.once("online/"+a.Name, now) {
			c.backoff.succeed(a.Template)
			c.recorder.Eventf(a.Pod, corev1.EventTypeNormal, "AgentOnline", "Agent %s connected to Jenkins", a.Name)
			c.logAgent(a).Info("agent online")
			if queued, err := time.Parse(time.RFC3339Nano, a.Pod.Annotations[annotationQueuedAt]); err == nil {
				c.metrics.queueToOnline.WithLabelValues(a.Template).Observe(now.Sub(queued).Seconds())
			}
		}
	}
	if a.State == Busy && a.Build != "" && c.once("busy/"+a.Name, now) {
		c.recorder.Eventf(a.Pod, corev1.EventTypeNormal, "BuildStarted", "Build %s started on agent %s", a.Build, a.Name)
		c.logAgent(a).Info("build started", zap.String("build", a.Build))
	}
}

// once reports whether key is seen for the first time; keys are forgotten after an hour.
func (c *Controller) once(key string, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.seen[key]; ok {
		return false
	}
	c.seen[key] = now
	if len(c.seen) > 10000 {
		for k, t := range c.seen {
			if now.Sub(t) > time.Hour {
				delete(c.seen, k)
			}
		}
	}
	return true
}

func (c *Controller) setExposed(n int) {
	c.mu.Lock()
	c.exposed = n
	c.mu.Unlock()
	if n > 0 {
		select {
		case c.exposedKick <- struct{}{}:
		default:
		}
	}
}

// busyWatch reads the computer list alone at BusyPollInterval while any agent of ours is connected
// (or about to be) and unmarked: the window in which Jenkins may hand it a build that a 1 s poll could
// miss entirely if the build is short. Outside that window it costs nothing.
func (c *Controller) busyWatch(ctx context.Context) {
	for {
		c.mu.Lock()
		exposed := c.exposed
		c.mu.Unlock()
		if exposed == 0 {
			select {
			case <-ctx.Done():
				return
			case <-c.exposedKick:
				continue
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.cfg.BusyPollInterval):
		}
		readCtx, cancel := context.WithTimeout(ctx, markTimeout)
		computers, err := c.jenkins.Computers(readCtx)
		cancel()
		if err != nil {
			continue
		}
		for i := range computers {
			comp := &computers[i]
			tmpl, _, ours := parseNodeDescription(comp.Description)
			if !ours || !comp.Busy() || (comp.TemporarilyOffline && strings.HasPrefix(comp.OfflineReason, reasonPrefix)) {
				continue
			}
			a := &Agent{Name: comp.Name, Template: tmpl, Computer: comp, State: Busy, Build: currentBuild(comp)}
			if p, err := c.podLister.Get(comp.Name); err == nil {
				a.Pod = p
			}
			c.start(a.Name, func() { c.markBusy(ctx, a) })
		}
	}
}

// markBusy makes sure no second build lands on an agent that runs one.
func (c *Controller) markBusy(ctx context.Context, a *Agent) {
	reason := reasonBusy
	if a.Build != "" {
		reason += " (" + a.Build + ")"
	}
	// A mark is a tiny request that must land before the build ends. Give up on a slow attempt
	// quickly: the next busy watch or poll (a fraction of a second later) starts a fresh one,
	// rather than one hung connection holding the agent unmarked for the client's full timeout.
	ctx, cancel := context.WithTimeout(ctx, markTimeout)
	defer cancel()
	if err := c.jenkins.SetTemporarilyOffline(ctx, a.Name, reason); err != nil {
		c.logAgent(a).Warn("mark busy agent temporarily offline", zap.Error(err))
		return
	}
	c.logAgent(a).Debug("marked single-use agent offline", zap.String("build", a.Build))
}

// finish deletes an agent that ran its build or was released: node, pod, Secret.
func (c *Controller) finish(ctx context.Context, a *Agent) {
	log := c.logAgent(a)
	finishedAt := c.now()
	if a.Computer != nil {
		if err := c.deleteNodeErr(ctx, a.Name); err != nil {
			log.Warn("delete finished agent's node", zap.Error(err))
			return
		}
	}
	if a.Pod == nil {
		return
	}
	if a.State == Done {
		c.recorder.Eventf(a.Pod, corev1.EventTypeNormal, "BuildFinished", "Build finished on agent %s; deleting the agent", a.Name)
		c.metrics.completed.WithLabelValues(a.Template).Inc()
		log.Info("build finished, deleting agent")
		if a.Pod.Annotations[annotationPodRetention] == string(podtemplate.RetentionAlways) {
			c.retain(ctx, a)
			return
		}
	} else {
		log.Info("deleting released agent")
	}
	if err := c.deletePodAndSecret(ctx, a, a.Reason); err == nil && a.State == Done {
		c.metrics.finishedToDeleted.WithLabelValues(a.Template).Observe(c.now().Sub(finishedAt).Seconds())
	}
}

// fail removes an agent that can never run its build, says why everywhere a user looks, and backs
// the template off so a broken template is retried with growing gaps, never in a loop.
func (c *Controller) fail(ctx context.Context, a *Agent) {
	log := c.logAgent(a)
	reason := a.Reason
	if a.Computer != nil {
		if !strings.HasPrefix(a.Computer.OfflineReason, reasonFailed) {
			// While the node exists its offline reason tells a Jenkins user why no agent came.
			_ = c.jenkins.SetTemporarilyOffline(ctx, a.Name, reasonFailed+reason)
		}
		if err := c.deleteNodeErr(ctx, a.Name); err != nil {
			log.Warn("delete failed agent's node", zap.Error(err))
			return
		}
	}
	if a.Pod == nil {
		return
	}
	switch podtemplate.Retention(a.Pod.Annotations[annotationPodRetention]) {
	case podtemplate.RetentionOnFailure, podtemplate.RetentionAlways:
		c.retain(ctx, a)
		return
	}
	_ = c.deletePodAndSecret(ctx, a, reason)
}

// noteFailure counts an agent's failure once: metric, status page, log, Event, template backoff.
func (c *Controller) noteFailure(a *Agent) {
	if !c.once("failed/"+a.Name, c.now()) {
		return
	}
	wait := c.backoff.fail(a.Template, c.now())
	c.metrics.failed.WithLabelValues(a.Template, reasonKind(a.Reason)).Inc()
	c.recordFailure(a, a.Reason)
	c.logAgent(a).Warn("agent failed; removing it and backing the template off", zap.String("reason", a.Reason), zap.Duration("backoff", wait))
	if a.Pod != nil {
		c.recorder.Eventf(a.Pod, corev1.EventTypeWarning, "AgentFailed", "Agent %s failed: %s; template %s backs off %s", a.Name, a.Reason, a.Template, wait)
	}
}

// retain keeps a pod for inspection until its retention timeout, recorded on the pod.
func (c *Controller) retain(ctx context.Context, a *Agent) {
	timeout, err := time.ParseDuration(a.Pod.Annotations[annotationRetentionTimeout])
	if err != nil || timeout <= 0 {
		timeout = time.Hour
	}
	until := c.now().Add(timeout).UTC().Format(time.RFC3339)
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, annotationRetainUntil, until)
	if _, err := c.kube.CoreV1().Pods(c.cfg.Namespace).Patch(ctx, a.Name, types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		c.kubeError("patch", "pods", err)
		c.logAgent(a).Warn("mark pod retained", zap.Error(err))
		return
	}
	c.recorder.Eventf(a.Pod, corev1.EventTypeNormal, "Retained", "Pod kept by podRetention until %s", until)
}

func (c *Controller) removeOrphan(ctx context.Context, a *Agent) {
	log := c.logAgent(a)
	if a.Pod == nil {
		log.Info("deleting Jenkins node without a pod", zap.String("reason", a.Reason))
		c.deleteNode(ctx, a.Name, a.Template)
		return
	}
	log.Info("deleting agent pod without a Jenkins node", zap.String("reason", a.Reason))
	c.recorder.Eventf(a.Pod, corev1.EventTypeWarning, "Orphaned", "Deleting agent pod: %s", a.Reason)
	_ = c.deletePodAndSecret(ctx, a, a.Reason)
}

// orphanExpired applies the grace to half an agent. A node's age is in its description.
func (c *Controller) orphanExpired(a *Agent, seenAt time.Time) bool {
	c.mu.Lock()
	_, creating := c.expected[a.Name]
	c.mu.Unlock()
	if creating {
		return false
	}
	if a.Pod != nil {
		return true // classify already applied the grace to pods
	}
	if a.Computer == nil {
		return false
	}
	_, created, _ := parseNodeDescription(a.Computer.Description)
	return seenAt.Sub(created) > c.cfg.OrphanGrace
}

func (c *Controller) deleteNode(ctx context.Context, name, template string) {
	if err := c.deleteNodeErr(ctx, name); err != nil {
		c.log.Warn("delete Jenkins node", zap.String("agent", name), zap.String("template", template), zap.Error(err))
	}
}

func (c *Controller) deleteNodeErr(ctx context.Context, name string) error {
	if err := c.jenkins.DeleteNode(ctx, name); err != nil {
		return fmt.Errorf("delete Jenkins node %s: %w", name, err)
	}
	return nil
}

// deletePodAndSecret deletes an agent's pod and Secret; already gone is fine.
func (c *Controller) deletePodAndSecret(ctx context.Context, a *Agent, reason string) error {
	err := c.kube.CoreV1().Pods(c.cfg.Namespace).Delete(ctx, a.Name, metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		c.kubeError("delete", "pods", err)
		c.logAgent(a).Warn("delete agent pod", zap.Error(err))
		return fmt.Errorf("delete pod %s: %w", a.Name, err)
	}
	if a.Pod != nil && err == nil {
		c.recorder.Eventf(a.Pod, corev1.EventTypeNormal, "Deleted", "Agent pod deleted: %s", firstNonEmpty(reason, string(a.State)))
	}
	if err := c.kube.CoreV1().Secrets(c.cfg.Namespace).Delete(ctx, a.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		c.kubeError("delete", "secrets", err)
		c.logAgent(a).Warn("delete agent secret", zap.Error(err))
	}
	return nil
}

// reapSecrets removes per-agent Secrets whose pod is gone, and gives an owner to those whose pod
// exists but which a crash left without one.
func (c *Controller) reapSecrets(ctx context.Context, snap *snapshot) {
	secrets, _ := c.secretLister.List(labels.Everything())
	for _, s := range secrets {
		pod, err := c.podLister.Get(s.Name)
		if err == nil {
			if len(s.OwnerReferences) == 0 && pod.UID != "" {
				c.start("secret/"+s.Name, func() { c.ownSecret(ctx, s, pod) })
			}
			continue
		}
		c.mu.Lock()
		_, creating := c.expected[s.Name]
		c.mu.Unlock()
		if creating || snap.at.Sub(s.CreationTimestamp.Time) < c.cfg.OrphanGrace {
			continue
		}
		if _, nodeExists := snap.computers[s.Name]; nodeExists {
			continue // the node's own orphan handling removes both
		}
		c.start("secret/"+s.Name, func() {
			c.log.Info("deleting agent Secret without a pod", zap.String("agent", s.Name))
			if err := c.kube.CoreV1().Secrets(c.cfg.Namespace).Delete(ctx, s.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
				c.kubeError("delete", "secrets", err)
			}
		})
	}
}

func (c *Controller) ownSecret(ctx context.Context, s *corev1.Secret, pod *corev1.Pod) {
	owned := s.DeepCopy()
	podtemplate.SetSecretOwner(owned, pod)
	patch := ownerPatch(owned)
	if _, err := c.kube.CoreV1().Secrets(c.cfg.Namespace).Patch(ctx, s.Name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil && !apierrors.IsNotFound(err) {
		c.kubeError("patch", "secrets", err)
	}
}

// markTimeout bounds one attempt to mark an agent busy, retries included.
const markTimeout = 2 * time.Second

// nodeMarker starts the description of every Jenkins node we create.
const nodeMarker = "[jenkins-agent-provisioner]"

var descriptionRE = regexp.MustCompile(`^\[jenkins-agent-provisioner\] template=([a-z0-9-]+) created=(\S+)`)

func nodeDescription(template, namespace string, created time.Time) string {
	return fmt.Sprintf("%s template=%s created=%s namespace=%s: single-use Kubernetes agent, deleted when its build ends",
		nodeMarker, template, created.UTC().Format(time.RFC3339), namespace)
}

// parseNodeDescription recognises our agent nodes (not the placeholder) and reads their template and
// creation time.
func parseNodeDescription(desc string) (template string, created time.Time, ok bool) {
	m := descriptionRE.FindStringSubmatch(desc)
	if m == nil {
		return "", time.Time{}, false
	}
	created, err := time.Parse(time.RFC3339, m[2])
	if err != nil {
		return "", time.Time{}, false
	}
	return m[1], created, true
}

// reasonKind shortens a failure reason to a bounded metric label: the first word.
func reasonKind(reason string) string {
	kind, _, _ := strings.Cut(reason, " ")
	kind = strings.TrimRight(kind, ":,")
	switch {
	case kind == "":
		return "Unknown"
	case strings.HasPrefix(reason, "agent not online"):
		return "ConnectTimeout"
	case strings.HasPrefix(reason, "agent exited"):
		return "AgentExited"
	case strings.HasPrefix(reason, "Unschedulable"):
		return "Unschedulable"
	}
	if waitingFailures[kind] || kind == "Error" || kind == "OOMKilled" || kind == "ContainerCannotRun" {
		return kind
	}
	return "Other"
}
