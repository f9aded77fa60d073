package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// Snapshot is one poll's view of the world: everything decide reads, taken by observe. It is never
// changed after observe returns it.
type Snapshot struct {
	// At is when the Jenkins view was taken (the start of the poll).
	At time.Time
	// JenkinsFresh is true when both Jenkins reads of this poll succeeded, so Demand and Computers are
	// the whole truth as of At. decide holds every decision while it is false: deleting or creating
	// from a stale or partial picture is how builds get dropped and agents killed.
	JenkinsFresh bool
	// JenkinsStarting is true when Jenkins answered its start-up page (ErrStarting): it restarted.
	JenkinsStarting bool
	// Demand is the queue, node-named demand already resolved against Computers.
	Demand []jenkins.Demand
	// JobLabels are the label expressions of freestyle jobs whose queue items name no label, by task
	// URL; a lookup that failed (or did not fit the poll's budget) has Failed set.
	JobLabels map[string]JobLabel
	// Computers is Jenkins' computer list.
	Computers []jenkins.Computer
	// Pods and Secrets are ours, from the label-selected informer caches.
	Pods    []*corev1.Pod
	Secrets []*corev1.Secret
	// Templates is the current template set (nil before the first load).
	Templates *podtemplate.Set
	// Creating are the creations counted before their pods are in Pods (see expectations).
	Creating []Creation
	// Outcomes are what act learned since the last poll that decide must weigh (refusals).
	Outcomes []Outcome
	// Gone says, for agent pods deleted lately, what their final state showed killed them
	// (Evicted, OOMKilled, DeletedExternally).
	Gone map[string]Reason
	// Evicted are pods of ours the watch saw Kueue evict (kept a while; decide tells each once).
	Evicted []Eviction
	// LabelCache parses each distinct label expression once across polls (nil: no cache). It is a
	// memo, not state: decide's answers are the same with or without it.
	LabelCache *labelexpr.Cache
}

// JobLabel is the label expression a freestyle job asks for, or why it is not known.
type JobLabel struct {
	Expr   string
	Failed bool
	Detail string
}

// Outcome is a result of an action that changes later decisions: the API server refused a creation.
type Outcome struct {
	At       time.Time
	Agent    string
	Template string
	Reason   Reason
	// Code is the HTTP status of the refusal ("unknown" when none).
	Code string
	// Pod is the pod that was refused (for its Event).
	Pod *corev1.Pod
}

// Bounds of the job-label lookups one poll may make.
const (
	jobLabelParallel = 4
	jobLabelFailTTL  = 10 * time.Second
)

// observe does every read of one poll and returns the snapshot. An error says the Jenkins view is
// not fresh; the snapshot then has JenkinsFresh false (and still the cluster's side).
//
// The computer list is read before the queue, on purpose. The two reads are not one snapshot, and a
// build can move from the queue to an idle agent between them. Read in this order, such a build shows
// up at worst as an idle agent and no waiting build (one agent too few, made up next poll); read the
// other way round it would show up as a busy agent and a waiting build, and a second agent would be
// created for a build that already has one.
func (c *Controller) observe(ctx context.Context) (Snapshot, error) {
	snap := Snapshot{At: c.now(), Templates: c.templates.Current(), Outcomes: c.act.drainOutcomes(), LabelCache: c.labelCache}
	snap.Evicted = c.evictions.list(snap.At)
	err := c.observeJenkins(ctx, &snap)
	snap.JenkinsStarting = errors.Is(err, jenkins.ErrStarting)
	// The cluster's side after Jenkins', and creations before pods: a creation that ends between the
	// two lists then shows in both (decide counts it once), never in neither.
	snap.Creating = c.exp.list(snap.At)
	snap.Pods, _ = c.podLister.List(labels.Everything())
	snap.Secrets, _ = c.secretLister.List(labels.Everything())
	sort.Slice(snap.Pods, func(i, j int) bool { return snap.Pods[i].Name < snap.Pods[j].Name })
	sort.Slice(snap.Secrets, func(i, j int) bool { return snap.Secrets[i].Name < snap.Secrets[j].Name })
	// Why pods went, read after the pod list: a pod missing from it was deleted before, and the
	// informer has recorded its final state by now or will by the next poll.
	snap.Gone = c.gone.snapshot(snap.At)
	return snap, err
}

func (c *Controller) observeJenkins(ctx context.Context, snap *Snapshot) error {
	// A hung request must not blind the controller for the client's whole retry budget: give the
	// poll's reads one deadline, and let the next poll try afresh.
	readCtx, cancel := context.WithTimeout(ctx, max(5*c.cfg.PollInterval, 5*time.Second))
	defer cancel()
	computers, err := c.jenkins.Computers(readCtx)
	if err != nil {
		return fmt.Errorf("read Jenkins computers: %w", err)
	}
	demand, err := c.jenkins.Queue(readCtx)
	if err != nil {
		return fmt.Errorf("read Jenkins queue: %w", err)
	}
	// "Waiting for next available executor on X" names a label or the one node carrying it; the
	// computer list of this poll says which.
	snap.Demand = jenkins.ResolveNodes(demand, computers)
	snap.Computers = computers
	snap.JobLabels = c.labels.lookup(readCtx, snap.Demand, snap.At)
	snap.JenkinsFresh = true
	return nil
}

// needsJobLabel reports whether a queue item's label can only be read from its job's configuration:
// a freestyle item for which Jenkins named neither label nor node (a pipeline node {} block, or a
// build Jenkins said has no label, is an unlabelled build).
func needsJobLabel(d jenkins.Demand) bool {
	return d.Label == "" && d.Node == "" && d.Kind == jenkins.KindFreestyle && d.TaskURL != "" && !d.Unlabelled
}

// jobLabels reads freestyle jobs' label expressions for observe: a few at a time, within the poll's
// deadline, and a failed job is not asked again for jobLabelFailTTL (the client caches answers).
type jobLabels struct {
	jenkins Jenkins
	log     *zap.Logger

	mu     sync.Mutex
	failed map[string]failedLookup
}

type failedLookup struct {
	at     time.Time
	detail string
}

func newJobLabels(j Jenkins, log *zap.Logger) *jobLabels {
	return &jobLabels{jenkins: j, log: log, failed: map[string]failedLookup{}}
}

func (l *jobLabels) lookup(ctx context.Context, demand []jenkins.Demand, now time.Time) map[string]JobLabel {
	out := map[string]JobLabel{}
	var todo []jenkins.Demand
	l.mu.Lock()
	for _, d := range demand {
		if !needsJobLabel(d) {
			continue
		}
		if _, dup := out[d.TaskURL]; dup {
			continue
		}
		if f, ok := l.failed[d.TaskURL]; ok && now.Sub(f.at) < jobLabelFailTTL {
			out[d.TaskURL] = JobLabel{Failed: true, Detail: f.detail}
			continue
		}
		out[d.TaskURL] = JobLabel{Failed: true, Detail: "not looked up within the poll's deadline"}
		todo = append(todo, d)
	}
	l.mu.Unlock()
	if len(todo) == 0 {
		return out
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	slots := make(chan struct{}, jobLabelParallel)
	for _, d := range todo {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break // the rest stay "not looked up"
		}
		wg.Go(func() {
			defer func() { <-slots }()
			expr, err := l.jenkins.JobLabelExpression(ctx, d.TaskURL)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				l.log.Warn("read job label expression", zap.Int64("queueItem", d.QueueID), zap.String("job", d.TaskURL), zap.Error(err))
				out[d.TaskURL] = JobLabel{Failed: true, Detail: err.Error()}
				l.mu.Lock()
				l.failed[d.TaskURL] = failedLookup{at: now, detail: err.Error()}
				l.mu.Unlock()
				return
			}
			out[d.TaskURL] = JobLabel{Expr: expr}
		})
	}
	wg.Wait()
	l.mu.Lock()
	for url, f := range l.failed {
		if now.Sub(f.at) >= jobLabelFailTTL {
			delete(l.failed, url)
		}
	}
	l.mu.Unlock()
	return out
}
