package harness

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/testenv"
	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// The Kueue sharing scenario (issue 14): two Jenkins controllers, each with its own provisioner
// process, namespace and LocalQueue, share one cluster through Kueue ClusterQueues in one cohort.
// Team A floods its queue, borrows B's unused share, and the rest of its builds wait gated by
// Kueue; team B then queues a few builds and gets its share back as A's builds end (the
// documented no-preemption policy: reclaimWithinCohort and withinClusterQueue Never). It needs a
// Plane started with testenv.Options{Kueue: true}.

// kueueGate is the scheduling gate Kueue's pod webhook puts on a queued pod until admission.
const kueueGate = "kueue.x-k8s.io/admission"

// KueueShareOptions shape the scenario.
type KueueShareOptions struct {
	BuildsA, BuildsB int
	// Duration of every build; longer than ConnectTimeout, so that A's gated pods wait longer
	// than the connect timeout for their admission.
	Duration       time.Duration
	ConnectTimeout time.Duration
	// AgentsPerTeam is each ClusterQueue's nominal quota in agents (of the default jnlp
	// container's 100m cpu and 256Mi).
	AgentsPerTeam int
	// Env is added to both provisioners' settings.
	Env map[string]string
	// PlainCaps runs the comparison without Kueue: each provisioner capped at AgentsPerTeam
	// (MAX_AGENTS and the template's maxAgents), the static split that keeps one team from
	// taking the other's share when nothing lends and reclaims quota.
	PlainCaps bool
	// Preempt sets the ClusterQueues' reclaimWithinCohort to Any: B's arrival makes Kueue evict A's
	// borrowing agents, busy or not (the policy docs/operating.md warns against), to show that an
	// eviction is cleaned up and told.
	Preempt bool
}

// KueueTeam is what one team's world ended with.
type KueueTeam struct {
	NS          string  `json:"namespace"`
	Builds      int     `json:"builds"`
	PodsMade    int     `json:"podsCreated"`  // distinct agent pods the provisioner created
	MaxAdmitted int     `json:"maxAdmitted"`  // most pods without Kueue's gate alive at once
	EverGated   int     `json:"everGated"`    // pods seen carrying Kueue's gate
	Failed      float64 `json:"agentsFailed"` // provisioner_agents_failed_total at the end
	Lost        float64 `json:"buildsLost"`
	// Aborted counts the team's builds that did not end SUCCESS on an agent; Evictions are the
	// AgentEvicted Events' messages in its namespace.
	Aborted    int        `json:"buildsAborted"`
	Evictions  []string   `json:"evictionEvents,omitempty"` // provisioner_builds_lost_total (Kueue evictions of busy agents)
	MaxBackoff float64    `json:"maxBackoffSeconds"`        // longest template backoff the provisioner logged
	Invariants Invariants `json:"invariants"`
}

// KueueShareResult is the scenario's outcome.
type KueueShareResult struct {
	A, B KueueTeam
	// BFirstStartSecs is from B's builds being queued to the first of them starting on an agent.
	BFirstStartSecs float64 `json:"bFirstStartSeconds"`
	// TotalSecs is from A's first build queued to the last build of both teams done; ADoneSecs to
	// the last of A's.
	TotalSecs float64  `json:"totalSeconds"`
	ADoneSecs float64  `json:"aDoneSeconds"`
	Errors    []string `json:"errors,omitempty"`
}

// KueueShare runs the scenario once.
func (p *Plane) KueueShare(ctx context.Context, o KueueShareOptions) KueueShareResult {
	var res KueueShareResult
	fail := func(format string, args ...any) KueueShareResult {
		res.Errors = append(res.Errors, fmt.Sprintf(format, args...))
		return res
	}
	n := worldSeq.Add(1)
	cohort := fmt.Sprintf("jenkins-%d", n)
	flavor := fmt.Sprintf("default-flavor-%d", n)
	if !o.PlainCaps {
		if err := p.Env.CreateResourceFlavor(ctx, flavor); err != nil {
			return fail("%v", err)
		}
	}
	quota := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewMilliQuantity(int64(100*o.AgentsPerTeam), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(int64(256<<20)*int64(o.AgentsPerTeam), resource.BinarySI),
	}
	reclaim := "Never"
	if o.Preempt {
		reclaim = "Any"
	}
	teams := []struct {
		name   string
		builds int
		w      *World
		proc   *Proc
		jobs   []Build
		watch  *gateWatch
	}{{name: "team-a", builds: o.BuildsA}, {name: "team-b", builds: o.BuildsB}}
	for i := range teams {
		t := &teams[i]
		cq := fmt.Sprintf("%s-%d", t.name, n)
		if !o.PlainCaps {
			if err := p.Env.CreateClusterQueue(ctx, testenv.ClusterQueue{
				Name: cq, Cohort: cohort, Flavor: flavor, Quota: quota,
				WithinClusterQueue: "Never", ReclaimWithinCohort: reclaim,
			}); err != nil {
				return fail("%v", err)
			}
		}
		maxAgents := o.BuildsA + o.BuildsB
		// Team A names its LocalQueue in the template (queue:), team B through the installation's
		// PROVISIONER_KUEUE_QUEUE: both ways an operator has.
		queueLine, env := "    queue: jenkins-agents\n", maps.Clone(o.Env)
		if o.PlainCaps {
			maxAgents, queueLine = o.AgentsPerTeam, ""
		} else if i == 1 {
			queueLine = ""
			if env == nil {
				env = map[string]string{}
			}
			env["PROVISIONER_KUEUE_QUEUE"] = "jenkins-agents"
		}
		w, err := p.NewWorld(ctx, WorldOptions{
			Name:      t.name,
			Templates: []Template{{Name: "agent", Labels: []string{t.name}, MaxAgents: maxAgents}},
			MaxAgents: maxAgents,
			TemplatesYAML: fmt.Sprintf("templates:\n  - name: agent\n    labels: [%s]\n    maxAgents: %d\n    connectTimeout: %s\n%s",
				t.name, maxAgents, o.ConnectTimeout, queueLine),
			Env: env,
		})
		if err != nil {
			return fail("%s: %v", t.name, err)
		}
		defer w.Close()
		t.w = w
		if !o.PlainCaps {
			if err := p.Env.CreateLocalQueue(ctx, w.NS, "jenkins-agents", cq); err != nil {
				return fail("%v", err)
			}
			if err := p.Env.WaitLocalQueueActive(ctx, w.NS, "jenkins-agents"); err != nil {
				return fail("%v", err)
			}
		}
		if t.watch, err = watchGates(ctx, w); err != nil {
			return fail("%s: %v", t.name, err)
		}
		if t.proc, err = w.StartProvisioner(t.name, nil); err != nil {
			return fail("%s: %v", t.name, err)
		}
		if err := t.proc.WaitReady(ctx, time.Minute); err != nil {
			return fail("%s: %v", t.name, err)
		}
		t.jobs = w.NewJobs(t.builds, []string{t.name}, o.Duration)
	}
	a, b := &teams[0], &teams[1]
	begin := time.Now()
	for i := range a.jobs {
		if err := a.w.Schedule(&a.jobs[i]); err != nil {
			return fail("%v", err)
		}
	}
	// B queues once A holds its own share and B's: the moment B's quota is lent out. With plain
	// caps A can hold only its own.
	held := 2 * o.AgentsPerTeam
	if o.PlainCaps {
		held = o.AgentsPerTeam
	}
	if err := a.w.WaitStarted(ctx, a.jobs, held, 2*time.Minute); err != nil {
		return fail("team A borrowing: %v", err)
	}
	bQueued := time.Now()
	for i := range b.jobs {
		if err := b.w.Schedule(&b.jobs[i]); err != nil {
			return fail("%v", err)
		}
	}
	if err := b.w.WaitStarted(ctx, b.jobs, 1, 3*time.Minute); err != nil {
		return fail("team B's first build: %v", err)
	}
	for _, r := range b.w.Jenkins.Builds() {
		if r.Node != "" && !r.Started.IsZero() && (res.BFirstStartSecs == 0 || r.Started.Sub(bQueued).Seconds() < res.BFirstStartSecs) {
			res.BFirstStartSecs = r.Started.Sub(bQueued).Seconds()
		}
	}
	total := time.Duration(o.BuildsA+o.BuildsB) * (o.Duration + o.ConnectTimeout + 10*time.Second)
	for _, t := range teams {
		if err := t.w.WaitBuilds(ctx, t.jobs, total); err != nil {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: %v", t.name, err))
		}
	}
	res.TotalSecs = time.Since(begin).Seconds()
	for _, r := range a.w.Jenkins.Builds() {
		if r.Done {
			res.ADoneSecs = max(res.ADoneSecs, r.Finished.Sub(begin).Seconds())
		}
	}
	// What the run left is read even when it ran out of time: that is when it matters most.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	for i, t := range teams {
		out := KueueTeam{NS: t.w.NS, Builds: t.builds}
		if m, err := t.proc.Metrics(ctx); err == nil {
			out.Failed = m.Sum("provisioner_agents_failed_total")
			out.Lost = m.Sum("provisioner_builds_lost_total")
		} else {
			res.Errors = append(res.Errors, fmt.Sprintf("%s metrics: %v", t.name, err))
		}
		out.Invariants = t.w.Check(ctx, t.jobs, time.Minute)
		for _, r := range t.w.Jenkins.Builds() {
			if r.Done && r.Node != "" && r.Result != "SUCCESS" {
				out.Aborted++
			}
		}
		if evs, err := p.Env.Client.CoreV1().Events(t.w.NS).List(ctx, metav1.ListOptions{FieldSelector: "reason=AgentEvicted"}); err == nil {
			for _, e := range evs.Items {
				out.Evictions = append(out.Evictions, e.Message)
			}
		} else {
			res.Errors = append(res.Errors, fmt.Sprintf("%s events: %v", t.name, err))
		}
		out.PodsMade, _ = t.w.Pods.Created()
		out.MaxAdmitted, out.EverGated = t.watch.stop()
		out.MaxBackoff = maxLoggedBackoff(filepath.Join(t.w.Dir, t.name+".log"))
		if i == 0 {
			res.A = out
		} else {
			res.B = out
		}
	}
	return res
}

// gateWatch polls a world's agent pods and keeps the most alive at once without Kueue's gate
// (admitted: quota taken) and how many ever carried it. Polling at 200 ms rather than a watch:
// the figure is a maximum over seconds-long admissions, and a list of a dozen pods is cheap.
type gateWatch struct {
	mu          sync.Mutex
	maxAdmitted int
	gated       map[string]bool
	cancel      context.CancelFunc
	done        chan struct{}
}

func watchGates(ctx context.Context, w *World) (*gateWatch, error) {
	ctx, cancel := context.WithCancel(ctx)
	g := &gateWatch{gated: map[string]bool{}, cancel: cancel, done: make(chan struct{})}
	sel := metav1.ListOptions{LabelSelector: lifecycle.ManagedSelector().String()}
	go func() {
		defer close(g.done)
		for {
			if pods, err := w.P.Env.Client.CoreV1().Pods(w.NS).List(ctx, sel); err == nil {
				admitted := 0
				g.mu.Lock()
				for _, pod := range pods.Items {
					gated := slices.ContainsFunc(pod.Spec.SchedulingGates, func(s corev1.PodSchedulingGate) bool { return s.Name == kueueGate })
					if gated {
						g.gated[pod.Name] = true
					}
					if !gated && pod.DeletionTimestamp == nil && pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
						admitted++
					}
				}
				g.maxAdmitted = max(g.maxAdmitted, admitted)
				g.mu.Unlock()
			}
			if !waitfor.Duration(ctx, 200*time.Millisecond) {
				return
			}
		}
	}()
	return g, nil
}

func (g *gateWatch) stop() (maxAdmitted, everGated int) {
	g.cancel()
	<-g.done
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.maxAdmitted, len(g.gated)
}

// maxLoggedBackoff reads a provisioner's JSON log for the longest "backoff" it logged (zap writes
// a duration as seconds); 0 if none or the log is unreadable.
func maxLoggedBackoff(path string) float64 {
	f, err := os.Open(path)
	if err != nil {
		return 0
	}
	defer f.Close()
	var most float64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var line struct {
			Backoff any `json:"backoff"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil {
			continue
		}
		switch v := line.Backoff.(type) {
		case float64:
			most = max(most, v)
		case string:
			if d, err := time.ParseDuration(v); err == nil {
				most = max(most, d.Seconds())
			}
		}
	}
	return most
}
