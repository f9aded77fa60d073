package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/statuspage/statuspagetest"
)

// A ResourceQuota that admits fewer agent pods than builds wait: creations the apiserver refuses
// back the template off, an Event says "quota exceeded", nothing is left behind for the refused
// attempts, and every build runs as the quota frees.
func TestQuotaRefusalsBackOffAndEveryBuildRuns(t *testing.T) {
	r := newRig(t, rigOptions{noController: true})
	_, err := env.Client.CoreV1().ResourceQuotas(r.ns).Create(context.Background(), &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "agents"},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{corev1.ResourcePods: resource.MustParse("2")}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	maven, _, _ := createJobs(r.jenkins, 6, time.Second)
	r.queue(len(maven), maven...)
	r.startBinary()

	r.waitBuilds(len(maven), 2*time.Minute)
	r.assertNothingLeft(time.Minute)
	refused := events(t, r.ns, "ProvisioningRefused")
	if len(refused) == 0 {
		t.Fatal("no ProvisioningRefused event")
	}
	if !strings.Contains(refused[0].Message, "quota exceeded") {
		t.Errorf("ProvisioningRefused says %q, want it to say quota exceeded", refused[0].Message)
	}
	// Backed off, one probe at a time: a handful of refused attempts (a batch when an agent of the
	// template has just come online, then single probes with growing gaps), not one per waiting
	// build per poll, which would be about 6 × 50 polls here.
	attempts := 0
	for _, e := range refused {
		attempts += int(max(e.Count, 1))
	}
	t.Logf("%d creations refused by the quota", attempts)
	if attempts > 20 {
		t.Errorf("%d refused creations for 6 builds under a quota of 2: the template is not backing off", attempts)
	}
	r.pods.mu.Lock()
	defer r.pods.mu.Unlock()
	if r.pods.maxTotal > 2 {
		t.Errorf("%d pods at once under a quota of 2", r.pods.maxTotal)
	}
}

// leaseHolder names the replica holding the leader Lease.
func leaseHolder(t *testing.T, ns string) string {
	t.Helper()
	l, err := env.Client.CoordinationV1().Leases(ns).Get(context.Background(), "jenkins-agent-provisioner", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// Two replicas with leader election: one leads and provisions, the other only waits; when the leader
// is killed the other takes over within the lease, and the builds still run, each on its own pod,
// within the caps.
func TestLeaderElectionFailover(t *testing.T) {
	const perTemplate = 3
	r := newRig(t, rigOptions{noController: true, maxPerTemplate: perTemplate})
	replicas := map[string]*process{}
	for _, name := range []string{"replica-a", "replica-b"} {
		replicas[name] = r.startBinary("PROVISIONER_LEADER_ELECT=true", "PROVISIONER_LEASE_DURATION=3s", "POD_NAME="+name)
	}
	var leader string
	eventually(t, 30*time.Second, func() (bool, string) {
		leader = leaseHolder(t, r.ns)
		return leader != "", "no leader yet"
	})
	follower := "replica-a"
	if leader == "replica-a" {
		follower = "replica-b"
	}
	// Builds outlast the lease: while no replica leads, nobody marks agents busy, so an agent whose
	// build ended in that window could take a second build (README, "High availability"). Builds
	// longer than the takeover keep every agent single-use, which is what this test checks.
	maven, docker, _ := createJobs(r.jenkins, 6, 6*time.Second)
	jobs := append(maven, docker...)
	r.queue(len(jobs), jobs...)
	eventually(t, 30*time.Second, func() (bool, string) {
		for _, b := range r.jenkins.Builds() {
			if !b.Started.IsZero() {
				return true, ""
			}
		}
		return false, "no build started; " + r.pods.summary()
	})
	eventually(t, 10*time.Second, func() (bool, string) {
		return strings.Contains(replicas[follower].logs.String(), `"following"`), follower + " does not say it follows"
	})
	if strings.Contains(replicas[follower].logs.String(), "agent pod created") {
		t.Errorf("follower %s created agents", follower)
	}

	killedAt := time.Now()
	replicas[leader].kill(t)
	eventually(t, 20*time.Second, func() (bool, string) {
		return leaseHolder(t, r.ns) == follower, "lease still held by " + leaseHolder(t, r.ns)
	})
	t.Logf("%s took over %s after %s was killed (lease 3s)", follower, time.Since(killedAt).Round(100*time.Millisecond), leader)

	builds := r.waitBuilds(len(jobs), 2*time.Minute)
	pods := r.pods.createdNames()
	nodes := map[string]bool{}
	for _, b := range builds {
		if _, ok := pods[b.Node]; !ok || nodes[b.Node] {
			t.Errorf("%s #%d ran on %q: not a fresh agent pod of ours", b.Job, b.Number, b.Node)
		}
		nodes[b.Node] = true
	}
	r.assertNothingLeft(time.Minute)
	r.pods.mu.Lock()
	defer r.pods.mu.Unlock()
	for tmpl, n := range r.pods.maxTemplate {
		if n > perTemplate {
			t.Errorf("template %s had %d pods at once, cap %d", tmpl, n, perTemplate)
		}
	}
	// At most the agent the dead leader was making when it died comes on top of one per build.
	if len(r.pods.created) > len(jobs)+perTemplate {
		t.Errorf("%d pods for %d builds: more agents than the demand", len(r.pods.created), len(jobs))
	}
}

// The metrics scraped during a run match what happened: pods created, builds finished, latency
// histograms filled for each agent.
func TestMetricsMatchWhatHappened(t *testing.T) {
	r := newRig(t, rigOptions{noController: true})
	listen := freeAddr(t)
	p := r.startBinary("PROVISIONER_LISTEN=" + listen)
	maven, docker, pipeline := createJobs(r.jenkins, 3, time.Second)
	jobs := append(append(maven, docker...), pipeline...)
	r.queue(len(jobs), jobs...)
	r.waitBuilds(len(jobs), 2*time.Minute)
	r.assertNothingLeft(time.Minute)

	var families map[string]*dto
	eventually(t, 10*time.Second, func() (bool, string) {
		families = scrape(t, "http://"+listen+"/metrics")
		got := sum(families, "provisioner_agents_completed_total", nil)
		return got == float64(len(jobs)), fmt.Sprintf("completed_total %v, want %d", got, len(jobs))
	})
	created := float64(len(r.pods.createdNames()))
	checks := []struct {
		name string
		want float64
	}{
		{"provisioner_agents_provisioned_total", created},
		{"provisioner_queue_to_pod_created_seconds_count", created},
		{"provisioner_queue_to_agent_online_seconds_count", float64(len(jobs))},
		{"provisioner_build_finished_to_pod_deleted_seconds_count", float64(len(jobs))},
		{"provisioner_leader", 1},
	}
	for _, c := range checks {
		if got := sum(families, c.name, nil); got != c.want {
			t.Errorf("%s = %v, want %v", c.name, got, c.want)
		}
	}
	for _, tmpl := range []string{"maven", "docker", "nodejs"} {
		if got := sum(families, "provisioner_agents_completed_total", map[string]string{"template": tmpl}); got != 3 {
			t.Errorf("completed agents of %s = %v, want 3", tmpl, got)
		}
	}
	if got := sum(families, "provisioner_jenkins_requests_total", map[string]string{"endpoint": "queue", "code": "200"}); got < 5 {
		t.Errorf("Jenkins queue requests counted: %v, want the polls", got)
	}
	resp, err := http.Get("http://" + listen + "/readyz")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("/readyz: %v %v", resp, err)
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
}

type dto = model.Vector

// scrape reads a Prometheus text exposition into samples by metric name (histograms expanded into
// _count and _sum).
func scrape(t *testing.T, url string) map[string]*dto {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse metrics: %v", err)
	}
	out := map[string]*dto{}
	for name, fam := range mf {
		for _, m := range fam.Metric {
			labels := model.Metric{}
			for _, lp := range m.Label {
				labels[model.LabelName(lp.GetName())] = model.LabelValue(lp.GetValue())
			}
			add := func(n string, v float64) {
				if out[n] == nil {
					out[n] = &dto{}
				}
				*out[n] = append(*out[n], &model.Sample{Metric: labels, Value: model.SampleValue(v)})
			}
			switch {
			case m.Counter != nil:
				add(name, m.Counter.GetValue())
			case m.Gauge != nil:
				add(name, m.Gauge.GetValue())
			case m.Histogram != nil:
				add(name+"_count", float64(m.Histogram.GetSampleCount()))
				add(name+"_sum", m.Histogram.GetSampleSum())
			}
		}
	}
	return out
}

// sum adds the samples of a metric whose labels include match.
func sum(f map[string]*dto, name string, match map[string]string) float64 {
	v := f[name]
	if v == nil {
		return 0
	}
	total := 0.0
outer:
	for _, s := range *v {
		for k, want := range match {
			if string(s.Metric[model.LabelName(k)]) != want {
				continue outer
			}
		}
		total += float64(s.Value)
	}
	return total
}

// The status page, loaded in a real browser during a run, shows the builds waiting, the agents with
// their state and build, and the failures with their reasons.
func TestStatusPageInABrowser(t *testing.T) {
	r := newRig(t, rigOptions{noController: true, maxPerTemplate: 1, brokenImage: "nonexistent.invalid/agent:1"})
	listen := freeAddr(t)
	r.startBinary("PROVISIONER_LISTEN=" + listen)
	r.jenkins.CreateFreestyleJob("long-1", "maven", 20*time.Second)
	r.jenkins.CreateFreestyleJob("long-2", "maven", 20*time.Second)
	r.jenkins.CreateFreestyleJob("gpu", "broken", time.Second)
	r.queue(3, "long-1", "long-2", "gpu")

	// One maven agent busy (cap 1), one maven build waiting, one failure recorded.
	eventually(t, 60*time.Second, func() (bool, string) {
		busy := false
		for _, n := range r.jenkins.Nodes() {
			busy = busy || n.Busy
		}
		return busy && len(events(t, r.ns, "AgentFailed")) > 0, "waiting for a busy agent and a failure"
	})
	time.Sleep(500 * time.Millisecond) // one more poll, so the page shows both
	shot, err := statuspagetest.ScreenshotPath("e2e-status-page.png")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dom, err := statuspagetest.Capture(ctx, "http://"+listen+"/", shot)
	if err != nil {
		t.Fatalf("load the status page in Chromium: %v", err)
	}
	t.Logf("screenshot: %s", shot)
	for what, re := range map[string]string{
		// The second maven build waits (the cap of 1 holds it back); with one maven node, Jenkins
		// names that node rather than the label, and the page shows the template it goes to.
		"a waiting maven build":          `<tr class="waiting"[^>]*data-template="maven"[^>]*data-builds="1"`,
		"the busy maven agent":           `data-template="maven"[^>]*data-state="busy"`,
		"a link to the build in Jenkins": `href="http://127\.0\.0\.1:\d+/job/long-\d/1/"`,
		"the failure and its reason":     `ErrImagePull`,
		"the replica's role":             `id="role"[^>]*>\s*leader`,
	} {
		if !regexp.MustCompile(re).MatchString(dom) {
			t.Errorf("status page does not show %s (%s); page:\n%s", what, re, tail(dom, 4000))
		}
	}
}
