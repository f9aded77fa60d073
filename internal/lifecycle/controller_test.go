package lifecycle

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap/zaptest"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
)

// One poll on fakes: observe reads, decide plans, act creates; a Jenkins outage holds everything.
func TestPollObservesDecidesActs(t *testing.T) {
	c, kube, jc := newTestController(t)
	jc.queue = []jenkins.Demand{
		{QueueID: 1, Label: "maven", Kind: jenkins.KindFreestyle, InQueueSince: t0.Add(-time.Second)},
		{QueueID: 2, Kind: jenkins.KindFreestyle, TaskURL: "http://j/job/legacy/", Ambiguous: true, InQueueSince: t0.Add(-time.Second)},
		{QueueID: 3, Kind: jenkins.KindFreestyle, TaskURL: "http://j/job/gone/", Ambiguous: true, InQueueSince: t0.Add(-time.Second)},
	}
	jc.jobLabels["http://j/job/legacy/"] = "docker"
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { c.act.work(ctx, 2, 1); close(done) }()

	if err := c.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if !c.Ready() {
		t.Error("not ready after a successful poll")
	}
	waitFor(t, func() bool { return len(kubeWrites(kube)) == 4 })
	var creates []string
	for _, w := range kubeWrites(kube) {
		creates = append(creates, strings.Join(strings.Fields(w)[:2], " ")+" "+strings.SplitN(strings.Fields(w)[2], "-", 2)[0])
	}
	want := []string{"create pods docker", "create pods maven", "create secrets docker", "create secrets maven"}
	sort.Strings(creates)
	if diff := cmp.Diff(want, creates); diff != "" {
		t.Errorf("writes (-want +got):\n%s", diff)
	}
	st := c.Status()
	var rows []string
	for _, w := range st.Waiting {
		rows = append(rows, w.Label+"→"+w.Template+" "+string(w.Why.Kind))
	}
	sort.Strings(rows)
	if diff := cmp.Diff([]string{"docker→docker AgentStarting", "maven→maven AgentStarting", "unknown→ LabelUnknown"}, rows); diff != "" {
		t.Errorf("waiting (-want +got):\n%s", diff)
	}

	// The failed job lookup is not repeated within its TTL.
	lookups := func() int {
		n := 0
		for _, call := range jc.Calls() {
			if call == "JobLabelExpression http://j/job/gone/" {
				n++
			}
		}
		return n
	}
	if err := c.poll(ctx); err != nil {
		t.Fatal(err)
	}
	if n := lookups(); n != 1 {
		t.Errorf("failed job read %d times in two polls, want once", n)
	}

	// Jenkins down: not ready, the status of the last good poll stays, nothing is done.
	jc.fail["Computers"] = errUnavailable
	kube.ClearActions()
	if err := c.poll(ctx); err == nil {
		t.Error("poll with Jenkins down returned no error")
	}
	if c.Ready() {
		t.Error("ready while Jenkins cannot be read")
	}
	if got := len(c.Status().Waiting); got != 3 {
		t.Errorf("status lost while holding: %d waiting rows", got)
	}
	if w := kubeWrites(kube); len(w) != 0 {
		t.Errorf("writes while holding: %v", w)
	}
	cancel()
	<-done
}

// Run on fakes: informers, the placeholder, a poll marking a busy agent, and a clean stop.
func TestRun(t *testing.T) {
	pod := agentPod("maven-a", "maven")
	pod.CreationTimestamp.Time = time.Now().Add(-time.Minute)
	kube := fake.NewClientset(pod)
	jc := &fakeJenkins{fail: map[string]error{}, jobLabels: map[string]string{}}
	jc.computers = []jenkins.Computer{{Name: "maven-a", Description: nodeDescription(testID, "maven-a", "maven", time.Now()),
		Executors: []jenkins.Executor{{Build: &jenkins.Build{URL: "http://j/job/a/1/"}}}}}
	c, err := New(zaptest.NewLogger(t), jc, kube, staticTemplates{testTemplates()}, nil,
		Config{Namespace: "ci", PollInterval: 20 * time.Millisecond, Identity: testID})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	waitFor(t, func() bool {
		marks := 0
		for _, call := range jc.Calls() {
			if strings.HasPrefix(call, "SetTemporarilyOffline maven-a "+reasonBusy) {
				marks++
			}
		}
		return marks > 0 && c.Ready()
	})
	if calls := jc.Calls(); calls[0] != "EnsurePlaceholderNode "+PlaceholderNodeName {
		t.Errorf("first call %q, want the placeholder", calls[0])
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after its context ended")
	}
}

func TestNewRefusesAConfigWithoutNamespace(t *testing.T) {
	if _, err := New(zaptest.NewLogger(t), &fakeJenkins{}, fake.NewClientset(), staticTemplates{}, nil, Config{}); err == nil {
		t.Error("New without a namespace: no error")
	}
}

// The waiting gauge carries why, and a label no longer waiting leaves no series.
func TestWaitingGauge(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg)
	m.setWaiting(map[WaitKey]int{{"maven", WaitTemplateCap}: 2, {"gpu", WaitNoTemplate}: 1})
	m.setWaiting(map[WaitKey]int{{"maven", WaitStarting}: 1})
	if diff := cmp.Diff([]string{`label=maven,reason=AgentStarting 1`}, series(t, reg, "provisioner_builds_waiting")); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

// Notices become Events, log lines and metrics.
func TestApplyReportsNotices(t *testing.T) {
	pod := agentPod("maven-a", "maven")
	c, _, _ := newTestController(t, pod)
	reg := prometheus.NewRegistry()
	c.metrics = NewMetrics(reg)
	c.apply(Decision{Notices: []Notice{
		{Kind: NoticeOnline, Agent: "maven-a", Template: "maven", Pod: pod, Latency: time.Second},
		{Kind: NoticeBuildStarted, Agent: "maven-a", Template: "maven", Pod: pod, Build: "http://j/job/a/1/"},
		{Kind: NoticeFailed, Agent: "maven-a", Template: "maven", Pod: pod, Reason: Reason{KindCrash, "Error"}, Backoff: time.Second},
		{Kind: NoticeRefused, Agent: "maven-b", Template: "maven", Pod: pod, Reason: Reason{KindQuotaExceeded, "quota"}, Code: "403", Backoff: time.Second},
		{Kind: NoticeUnserved, Label: "gpu", Builds: 2},
	}, Status: Status{Waiting: []WaitingLabel{{Label: "gpu", Builds: 2, Why: WaitReason{Kind: WaitNoTemplate}}}}})
	want := []string{"reason=Crash,template=maven 1", "reason=quota_exceeded,template=maven 1"}
	if diff := cmp.Diff(want, series(t, reg, "provisioner_agents_failed_total")); diff != "" {
		t.Errorf("series (-want +got):\n%s", diff)
	}
}

// The busy watch's judgement: busy agents of ours without our mark.
func TestBusyUnmarked(t *testing.T) {
	w := newTestWorld().node("maven-a", "maven", time.Minute, building).node("maven-b", "maven", time.Minute, building, marked(reasonBusy)).
		node("maven-c", "maven", time.Minute, online)
	w.snap.Computers = append(w.snap.Computers, jenkins.Computer{Name: "static", Executors: []jenkins.Executor{{Build: &jenkins.Build{URL: "u"}}}})
	got := actions(Decision{Actions: busyUnmarked(testID, w.snap.Computers)})
	if diff := cmp.Diff([]string{"MarkBusy maven-a build=http://j/job/a/1/"}, got); diff != "" {
		t.Errorf("marks (-want +got):\n%s", diff)
	}
}

// series lists a metric's series as "name=value,... number" lines.
func series(t *testing.T, reg *prometheus.Registry, name string) []string {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := []string{}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			v := m.GetGauge().GetValue() + m.GetCounter().GetValue()
			out = append(out, fmt.Sprintf("%s %g", strings.Join(labels, ","), v))
		}
	}
	sort.Strings(out)
	return out
}

// The busy watch reads computers only while armed, and marks what it finds busy and unmarked.
func TestBusyWatchRun(t *testing.T) {
	w := newBusyWatch()
	reads := make(chan struct{}, 100)
	marks := make(chan Action, 100)
	read := func(context.Context) ([]jenkins.Computer, error) {
		reads <- struct{}{}
		return newTestWorld().node("maven-a", "maven", time.Minute, building).snap.Computers, nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.run(ctx, testID, time.Millisecond, read, func(a Action) { marks <- a }); close(done) }()
	w.set(0)
	w.arm()
	a := <-marks
	if a.Agent != "maven-a" || a.Kind != ActMarkBusy {
		t.Errorf("mark = %+v", a)
	}
	w.set(0)
	cancel()
	<-done
}
