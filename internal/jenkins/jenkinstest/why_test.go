package jenkinstest

import (
	"fmt"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// agentSpec is one node a why scenario sets up.
type agentSpec struct {
	name, labels, mode string
	connect            bool
	busyFor            string // label of a one-hour job started on it first
}

func setupAgents(t *testing.T, s *Server, c *testClient, agents []agentSpec) {
	t.Helper()
	for _, a := range agents {
		mode := a.mode
		if mode == "" {
			mode = "EXCLUSIVE"
		}
		createNode(t, c, a.name, a.labels, mode, true).mustStatus(t, http.StatusFound)
		if a.connect {
			connect(t, s, a.name)
		}
	}
	// Occupy the busy agents with long builds before the item under test is scheduled.
	for _, a := range agents {
		if a.busyFor == "" {
			continue
		}
		job := "occupy-" + a.name
		s.CreateFreestyleJob(job, a.busyFor, time.Hour)
		if _, err := s.Schedule(job); err != nil {
			t.Fatal(err)
		}
		eventually(t, a.name+" busy", func() bool {
			for _, n := range s.Nodes() {
				if n.Name == a.name {
					return n.Busy
				}
			}
			return false
		})
	}
}

func TestWhy(t *testing.T) {
	offline := func(names ...string) []agentSpec {
		var out []agentSpec
		for _, n := range names {
			out = append(out, agentSpec{name: n, labels: "other", mode: "NORMAL"})
		}
		return out
	}
	tests := []struct {
		name    string
		agents  []agentSpec
		label   string // "" = no label
		lang    string
		want    string
		builtIn int // executors on the built-in node
	}{
		{"no agents at all: no label named", nil, "linux", "en", "Waiting for next available executor", 0},
		{name: "no agents, German", label: "linux", lang: "de", want: "Warte auf den nächsten freien Build-Prozessor"},
		// The message users know from a controller with executors and no agent: the idle built-in
		// node refuses the item, and with idle executors around Jenkins shows the refusal.
		{name: "no agents, idle built-in node lacks the label", label: "linux", lang: "en",
			want: "‘Jenkins’ doesn’t have label ‘linux’", builtIn: 2},
		{name: "no agents, idle built-in node lacks the label, German", label: "linux", lang: "de",
			want: "„Jenkins“ hat nicht das Label „linux“", builtIn: 2},
		{"label carried by no node", []agentSpec{{name: "a1", labels: "windows"}}, "linux", "en",
			"There are no nodes with the label ‘linux’", 0},
		{"label carried by no node, German", []agentSpec{{name: "a1", labels: "windows"}}, "linux", "de-DE,de;q=0.9,en;q=0.5",
			"Es gibt keine Knoten mit dem Label „linux“", 0},
		{"expression normalised", []agentSpec{{name: "a1", labels: "windows"}}, "linux &&  docker", "en",
			"There are no nodes with the label ‘linux&&docker’", 0},
		{"two offline nodes carry it", []agentSpec{{name: "a1", labels: "linux"}, {name: "a2", labels: "linux"}}, "linux", "en",
			"All nodes of label ‘linux’ are offline", 0},
		{"the one node carrying it is offline", []agentSpec{{name: "a1", labels: "linux"}}, "linux", "en", "‘a1’ is offline", 0},
		{"the one node is offline, German", []agentSpec{{name: "a1", labels: "linux"}}, "linux", "de", "a1 ist offline", 0},
		{"label is a node name", []agentSpec{{name: "a1", labels: "linux"}}, "a1", "en", "‘a1’ is offline", 0},
		{"the one node is busy", []agentSpec{{name: "a1", labels: "linux", connect: true, busyFor: "linux"}}, "linux", "en",
			"Waiting for next available executor on ‘a1’", 0},
		{"two busy nodes", []agentSpec{
			{name: "a1", labels: "linux", connect: true, busyFor: "a1"},
			{name: "a2", labels: "linux", connect: true, busyFor: "a2"}}, "linux", "en",
			"Waiting for next available executor on ‘linux’", 0},
		{"busy node, German", []agentSpec{{name: "a1", labels: "linux", connect: true, busyFor: "linux"}}, "linux", "de",
			"Warte auf den nächsten freien Build-Prozessor auf a1", 0},
		{"unlabelled, only an offline exclusive node", []agentSpec{{name: "ex", labels: "linux"}}, "", "en",
			"Waiting for next available executor", 0},
		{"unlabelled, idle exclusive node refuses", []agentSpec{{name: "ex", labels: "linux", connect: true}}, "", "en",
			"‘ex’ is reserved for jobs with matching label expression", 0},
		{"unlabelled, composite of refusals", append([]agentSpec{{name: "ex", labels: "linux", connect: true}},
			offline("off")...), "", "en",
			"‘ex’ is reserved for jobs with matching label expression; ‘off’ is offline", 0},
		{"unlabelled, composite cut after five", append([]agentSpec{{name: "ex", labels: "linux", connect: true}},
			offline("o1", "o2", "o3", "o4", "o5", "o6")...), "", "en",
			"‘ex’ is reserved for jobs with matching label expression; ‘o1’ is offline; ‘o2’ is offline; ‘o3’ is offline; ‘o4’ is offline; ... and 2 more", 0},
		{"unlabelled, composite, German", []agentSpec{{name: "ex", labels: "linux", connect: true}}, "", "de",
			"„ex“ ist für Projekte mit passendem Label-Ausdruck reserviert", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newTestServer(t, Options{BuiltInExecutors: tt.builtIn})
			c := newClient(t, s, "admin", "admin-token")
			setupAgents(t, s, c, tt.agents)
			s.CreateFreestyleJob("target", tt.label, time.Second)
			id, err := s.Schedule("target")
			if err != nil {
				t.Fatal(err)
			}
			c.lang = tt.lang
			_, whys := queueWhys(t, c)
			if diff := cmp.Diff(tt.want, whys[id]); diff != "" {
				t.Errorf("why (-want +got):\n%s", diff)
			}
		})
	}
}

func TestWhyPipelinePlaceholder(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	setupAgents(t, s, c, []agentSpec{{name: "a1", labels: "windows"}})
	s.CreatePipelineJob("pipe", "linux || mac", time.Second)
	if _, err := s.Schedule("pipe"); err != nil {
		t.Fatal(err)
	}
	m := c.get("queue/api/json?tree=items[why,task[name,url]]").mustStatus(t, http.StatusOK).json(t)
	want := map[string]any{"_class": "hudson.model.Queue", "items": []any{map[string]any{
		"_class": "hudson.model.Queue$BuildableItem",
		"task": map[string]any{
			"_class": "org.jenkinsci.plugins.workflow.support.steps.ExecutorStepExecution$PlaceholderTask",
			"name":   "part of pipe #1", "url": "job/pipe/1/",
		},
		"why": "There are no nodes with the label ‘linux||mac’",
	}}}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("queue (-want +got):\n%s", diff)
	}
}

func TestWhyQuietPeriodAndBuildInProgress(t *testing.T) {
	s := newTestServer(t, Options{QuietPeriod: 5 * time.Second})
	c := newClient(t, s, "admin", "admin-token")
	setupAgents(t, s, c, []agentSpec{{name: "a1", labels: "linux", connect: true}})
	s.CreateFreestyleJob("j", "linux", 400*time.Millisecond)

	id, err := s.Schedule("j")
	if err != nil {
		t.Fatal(err)
	}
	_, whys := queueWhys(t, c)
	if !regexp.MustCompile(`^In the quiet period\. Expires in 4\.\d sec$`).MatchString(whys[id]) {
		t.Errorf("why = %q, want the quiet period with about 4.9 sec left", whys[id])
	}
	c.lang = "de"
	_, whys = queueWhys(t, c)
	if !regexp.MustCompile(`^In Ruhe-Periode\. Endet in 4,\d Sekunden$`).MatchString(whys[id]) {
		t.Errorf("German why = %q", whys[id])
	}
	c.lang = "en"
	m := c.get(fmt.Sprintf("queue/item/%d/api/json", id)).json(t)
	if m["_class"] != "hudson.model.Queue$WaitingItem" {
		t.Errorf("_class = %v, want the WaitingItem", m["_class"])
	}

	// With no quiet period: build #1 runs; a second item is blocked while it does, with no ETA
	// because the job has no finished build to estimate from.
	c.post("job/j/build", map[string][]string{"delay": {"0sec"}}) // joins the waiting item: Jenkins does not queue a job twice
	if err := s.Cancel(id); err != nil {
		t.Fatal(err)
	}
	run := func() int64 {
		loc := c.post("job/j/build", map[string][]string{"delay": {"0"}}).mustStatus(t, http.StatusCreated).header.Get("Location")
		var n int64
		if _, err := fmt.Sscanf(loc, s.URL()+"queue/item/%d/", &n); err != nil {
			t.Fatalf("Location %q: %v", loc, err)
		}
		return n
	}
	run()
	eventually(t, "build #1 to start", func() bool { b := s.Builds(); return len(b) == 1 && !b[0].Started.IsZero() })
	second := run()
	_, whys = queueWhys(t, c)
	if diff := cmp.Diff("Build #1 is already in progress (ETA: N/A)", whys[second]); diff != "" {
		t.Errorf("why (-want +got):\n%s", diff)
	}
	// Once #1 finished, #2 runs; a third item's ETA comes from #1's duration.
	eventually(t, "build #2 to start", func() bool { b := s.Builds(); return len(b) == 2 && !b[1].Started.IsZero() })
	third := run()
	_, whys = queueWhys(t, c)
	if !regexp.MustCompile(`^Build #2 is already in progress \(ETA: 0\.\d{1,2} sec\)$`).MatchString(whys[third]) {
		t.Errorf("why = %q, want build #2 in progress with an ETA under a second", whys[third])
	}
}

// TestWhyCompositeLabelMissing covers the window Jenkins shows between maintain() passes: the
// refusals were collected while the label's node was busy, and the node has become idle since.
func TestWhyCompositeLabelMissing(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	setupAgents(t, s, c, []agentSpec{
		{name: "n1", labels: "x", connect: true, busyFor: "x"},
		{name: "n2", labels: "y", connect: true, mode: "NORMAL"},
	})
	s.CreateFreestyleJob("target", "x", time.Second)
	id, err := s.Schedule("target")
	if err != nil {
		t.Fatal(err)
	}
	_, whys := queueWhys(t, c)
	if diff := cmp.Diff("Waiting for next available executor on ‘n1’", whys[id]); diff != "" {
		t.Errorf("why while n1 is busy (-want +got):\n%s", diff)
	}
	s.mu.Lock()
	for _, r := range s.runs {
		if r.job.name == "occupy-n1" {
			s.finishRun(r, "SUCCESS") // no maintain(): the queue has not looked again yet
		}
	}
	var it *queueItem
	for _, x := range s.items {
		if x.id == id {
			it = x
		}
	}
	got := s.buildableWhy(it, langEN)
	s.mu.Unlock()
	if diff := cmp.Diff("‘n2’ doesn’t have label ‘x’", got); diff != "" {
		t.Errorf("why between passes (-want +got):\n%s", diff)
	}
}

// TestQueueOrder: waiting, blocked, then buildable newest first, as Queue.getItems lists them.
func TestQueueOrder(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	setupAgents(t, s, c, []agentSpec{{name: "a1", labels: "busy", connect: true}})
	s.CreateFreestyleJob("blockme", "busy", time.Hour)
	s.CreateFreestyleJob("b1", "nosuch", time.Second)
	s.CreateFreestyleJob("b2", "nosuch", time.Second)
	s.CreateFreestyleJob("w", "nosuch", time.Second)
	mustID := func(id int64, err error) int64 {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	mustID(s.Schedule("blockme"))
	eventually(t, "blockme running", func() bool { b := s.Builds(); return len(b) == 1 && !b[0].Started.IsZero() })
	b1 := mustID(s.Schedule("b1"))
	blocked := mustID(s.Schedule("blockme"))
	b2 := mustID(s.Schedule("b2"))
	waiting := mustID(s.schedule("w", time.Hour, ""))
	ids, _ := queueWhys(t, c)
	if diff := cmp.Diff([]int64{waiting, blocked, b2, b1}, ids); diff != "" {
		t.Errorf("queue order (-want +got):\n%s", diff)
	}
}
