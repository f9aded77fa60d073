package jenkinstest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fixturesDir is the folder of recorded Jenkins payloads, kept once in the repository beside the
// client (internal/jenkins/testdata/fixtures) and read by both packages' tests.
func fixturesDir(t *testing.T) string {
	t.Helper()
	fx := filepath.Join("..", "testdata", "fixtures")
	if st, err := os.Stat(fx); err != nil || !st.IsDir() {
		t.Fatalf("recorded Jenkins payloads not found at internal/jenkins/testdata/fixtures: %v", err)
	}
	return fx
}

// world is one emulator state holding every kind of object the recordings show.
type world struct {
	s *Server
	c *testClient
	// queue ids
	blocked, buildable, placeholder, cancelled, started int64
}

func newWorld(t *testing.T) *world {
	t.Helper()
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	for _, n := range []struct{ name, labels string }{
		{"idle", "linux agent"}, {"busy", "busy agent"}, {"temp", "agent"}, {"never", "agent"},
		{"crashed", "agent"}, {"disc", "agent"}, {"relaunch", "agent"},
	} {
		createNode(t, c, n.name, n.labels, "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	}
	for _, name := range []string{"idle", "busy", "temp", "disc", "relaunch"} {
		connect(t, s, name)
	}
	connect(t, s, "crashed").Close()
	c.post("computer/temp/toggleOffline", url.Values{"offlineMessage": {"testing purposes"}}).mustStatus(t, http.StatusFound)
	c.post("computer/disc/doDisconnect", url.Values{"offlineMessage": {"jam.stop"}}).mustStatus(t, http.StatusFound)
	// A node that was connected, then disconnected, and whose cause was cleared by bringing it
	// back online: offline with a null cause, waiting for its agent (the "launching" recording).
	c.post("computer/relaunch/doDisconnect", nil).mustStatus(t, http.StatusFound)
	c.post("computer/relaunch/toggleOffline", nil).mustStatus(t, http.StatusFound)
	c.post("computer/relaunch/toggleOffline", nil).mustStatus(t, http.StatusFound)

	s.CreateFreestyleJob("long", "busy", time.Hour)
	s.CreateFreestyleJob("nolabel", "nosuch", time.Second)
	s.CreateFreestyleJob("quick", "linux", time.Millisecond)
	s.CreateFreestyleJob("tocancel", "nosuch", time.Second)
	s.CreatePipelineJob("pipe", "nosuch2", time.Second)
	w := &world{s: s, c: c}
	mustSchedule := func(job string) int64 {
		id, err := s.Schedule(job)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	// Items a user starts (POST /job/NAME/build) carry a UserIdCause naming that user.
	build := func(job string) int64 {
		loc := c.post("job/"+job+"/build", url.Values{"delay": {"0sec"}}).mustStatus(t, http.StatusCreated).header.Get("Location")
		var id int64
		if _, err := fmt.Sscanf(strings.TrimPrefix(loc, s.URL()), "queue/item/%d/", &id); err != nil {
			t.Fatalf("Location %q: %v", loc, err)
		}
		return id
	}
	mustSchedule("long")
	eventually(t, "long #1 to start", func() bool { return len(s.Builds()) == 1 && !s.Builds()[0].Started.IsZero() })
	w.blocked = build("long")
	w.buildable = mustSchedule("nolabel")
	mustSchedule("pipe")
	eventually(t, "the pipeline's node item", func() bool {
		for _, b := range s.Builds() {
			if b.Job == "pipe" && b.PlaceholderQueueID != 0 {
				w.placeholder = b.PlaceholderQueueID
				return true
			}
		}
		return false
	})
	w.cancelled = build("tocancel")
	if err := s.Cancel(w.cancelled); err != nil {
		t.Fatal(err)
	}
	w.started = build("quick")
	eventually(t, "quick #1 to finish", func() bool {
		for _, b := range s.Builds() {
			if b.Job == "quick" && b.Done {
				return true
			}
		}
		return false
	})
	return w
}

// TestConformance checks every recorded payload against the emulator's answer for the same kind
// of object: every recorded key present, same JSON type (a recorded null matches anything), same
// `_class` where recorded.
func TestConformance(t *testing.T) {
	dir := fixturesDir(t)
	w := newWorld(t)
	get := func(path string) func(t *testing.T) any {
		return func(t *testing.T) any {
			var v any
			if err := json.Unmarshal(w.c.get(path).mustStatus(t, http.StatusOK).body, &v); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return v
		}
	}
	item := func(id *int64) func(t *testing.T) any {
		return func(t *testing.T) any { return get(fmt.Sprintf("queue/item/%d/api/json?pretty=true", *id))(t) }
	}
	producers := map[string]func(t *testing.T) any{
		"computer-list_depth0_prettyprint_2017_camunda.json":                           get("computer/api/json?pretty=true"),
		"computer-list_depth0_prettyprint_cdancy.json":                                 get("computer/api/json?pretty=true"),
		"computer-list_with-jnlp-agents_node-jenkins.json":                             get("computer/api/json"),
		"computer_agent_offline_channeltermination-stacktrace_jenkins-2.89.4_jam.json": get("computer/crashed/api/json"),
		"computer_agent_offline_launching_jenkins-2.89.4_jam.json":                     get("computer/relaunch/api/json"),
		"computer_agent_offline_usercause-disconnect_jenkins-2.89.4_jam.json":          get("computer/disc/api/json"),
		"computer_agent_online_busy_depth0_jenkins-2.89.4_jam.json":                    get("computer/busy/api/json"),
		"computer_agent_online_idle_depth0_jenkins-2.89.4_jam.json":                    get("computer/idle/api/json"),
		"computer_agent_temporarily-offline_usercause_jenkins-2.89.4_jam.json":         get("computer/temp/api/json"),
		"computer_jnlp-agent_never-connected_node-jenkins.json":                        get("computer/never/api/json"),
		"computer_jnlp-agent_online_node-jenkins.json":                                 get("computer/idle/api/json"),
		"computer_jnlp-agent_temporarily-offline_node-jenkins.json":                    get("computer/temp/api/json"),
		"crumbIssuer_200_jenkins-2.89.4_jam.json":                                      get("crumbIssuer/api/json"),
		"label_master_builtin_node-jenkins.json":                                       get("label/built-in/api/json"),
		"queue-item_BlockedItem_prettyprint_cdancy.json":                               item(&w.blocked),
		"queue-item_LeftItem_cancelled_prettyprint_cdancy.json":                        item(&w.cancelled),
		"queue-item_LeftItem_started-executable_prettyprint_cdancy.json":               item(&w.started),
		"queue-item_left-executable_legacy-no-_class_node-jenkins.json":                item(&w.started),
		"queue_28-buildable-items_label-offline-whys_compact_2017_camunda.json":        get("queue/api/json"),
		"queue_blocked-build-in-progress_freestyle_jenkins-2.89.4_jam.json":            get("queue/api/json"),
		"queue_blocked-plus-1-pipeline-placeholder-buildable_jenkins-2.89.4_jam.json":  get("queue/api/json"),
		"queue_blocked-plus-3-pipeline-placeholders-buildable_jenkins-2.89.4_jam.json": get("queue/api/json"),
		"queue_buildable-pending-true_legacy-no-_class_node-jenkins.json":              get("queue/api/json"),
		"queue_buildable_legacy-no-_class_cdancy.json":                                 get("queue/api/json"),
	}
	// Not response payloads: the request fixture is replayed by TestRecordedCreateRequest, and the
	// config.xml is the body of POST /computer/createItem (Jenkins 2.539+), which the emulator
	// does not offer.
	notPayloads := map[string]bool{
		"SOURCES.md": true,
		"request_computer-doCreateItem_jnlp_form-query_node-jenkins.txt": true,
		"node-config_dumbslave_jnlp_minimal_jenkins-core-test.xml":       true,
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		name := e.Name()
		if notPayloads[name] {
			continue
		}
		produce, ok := producers[name]
		if !ok {
			t.Errorf("recorded payload %s has no emulator counterpart in this test", name)
			continue
		}
		t.Run(strings.TrimSuffix(name, ".json"), func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			var rec any
			if err := json.Unmarshal(data, &rec); err != nil {
				t.Fatalf("recording is not JSON: %v", err)
			}
			got := produce(t)
			for _, p := range conforms(rec, got, "$") {
				t.Error(p)
			}
		})
	}
}

// conforms lists how got fails to have the recording's shape.
func conforms(rec, got any, path string) []string {
	switch r := rec.(type) {
	case nil:
		return nil
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: recorded an object, got %s", path, jsonType(got))}
		}
		var problems []string
		keys := make([]string, 0, len(r))
		for k := range r {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			gv, ok := g[k]
			if !ok {
				problems = append(problems, fmt.Sprintf("%s: key %q missing", path, k))
				continue
			}
			if k == "_class" && gv != r[k] {
				problems = append(problems, fmt.Sprintf("%s: _class %v, recorded %v", path, gv, r[k]))
				continue
			}
			problems = append(problems, conforms(r[k], gv, path+"."+k)...)
		}
		return problems
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: recorded an array, got %s", path, jsonType(got))}
		}
		if len(r) > 0 && len(g) == 0 && !heterogeneous(path) {
			return []string{fmt.Sprintf("%s: recorded %d elements, the emulator produced none", path, len(r))}
		}
		if len(g) == 0 {
			return nil
		}
		if heterogeneous(path) {
			return conformsHeterogeneous(r, g, path)
		}
		// Each recorded element must have the shape of some emulator element.
		var problems []string
		for i, re := range r {
			if best := bestMatch(re, g, fmt.Sprintf("%s[%d]", path, i)); len(best) > 0 {
				problems = append(problems, best...)
			}
		}
		return problems
	default:
		if jsonType(rec) != jsonType(got) {
			return []string{fmt.Sprintf("%s: recorded %s, got %s", path, jsonType(rec), jsonType(got))}
		}
		return nil
	}
}

func jsonType(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	}
	return fmt.Sprintf("%T", v)
}

// TestConformsDetectsDifferences keeps the shape comparison honest: it must report what differs.
func TestConformsDetectsDifferences(t *testing.T) {
	tests := []struct {
		name      string
		rec, got  string
		wantFails int
	}{
		{"same", `{"a":1,"b":{"c":"x"}}`, `{"a":2,"b":{"c":"y","d":1}}`, 0},
		{"missing key", `{"a":1}`, `{"b":1}`, 1},
		{"wrong type", `{"a":1}`, `{"a":"1"}`, 1},
		{"null matches anything", `{"a":null}`, `{"a":{"x":1}}`, 0},
		{"class differs", `{"_class":"A"}`, `{"_class":"B"}`, 1},
		{"nested element shape", `{"l":[{"k":1}]}`, `{"l":[{"j":1}]}`, 1},
		{"empty where recorded", `{"l":[{"k":1}]}`, `{"l":[]}`, 1},
		{"some element matches", `{"l":[{"k":1}]}`, `{"l":[{"j":1},{"k":2}]}`, 0},
		{"actions: a class not produced is skipped", `{"actions":[{"_class":"P","p":1},{"_class":"C","c":1}]}`, `{"actions":[{"_class":"C","c":2}]}`, 0},
		{"actions: a produced class must conform", `{"actions":[{"_class":"C","c":1}]}`, `{"actions":[{"_class":"C","d":2}]}`, 1},
		{"actions: legacy element without class", `{"actions":[{"p":1},{"c":1}]}`, `{"actions":[{"c":2}]}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec, got any
			if err := json.Unmarshal([]byte(tt.rec), &rec); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(tt.got), &got); err != nil {
				t.Fatal(err)
			}
			if p := conforms(rec, got, "$"); len(p) != tt.wantFails {
				t.Errorf("conforms = %q, want %d problems", p, tt.wantFails)
			}
		})
	}
}

// TestRecordedCreateRequest replays the recorded doCreateItem form (a client's request) and
// expects Jenkins' answer: 302 to /computer/, then 400 for the same name.
func TestRecordedCreateRequest(t *testing.T) {
	data, err := os.ReadFile(filepath.Join(fixturesDir(t), "request_computer-doCreateItem_jnlp_form-query_node-jenkins.txt"))
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	form, err := url.ParseQuery(strings.ReplaceAll(strings.TrimSpace(string(data)), "{name}", "recorded-node"))
	if err != nil {
		t.Fatal(err)
	}
	r := c.post("computer/doCreateItem", form).mustStatus(t, http.StatusFound)
	if got, want := r.header.Get("Location"), s.URL()+"computer/"; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	nodes := s.Nodes()
	if len(nodes) != 1 || nodes[0].Name != "recorded-node" || nodes[0].NumExecutors != 2 || nodes[0].Mode != "NORMAL" || nodes[0].RemoteFS != "/var/lib/jenkins" {
		t.Errorf("nodes = %+v, want recorded-node with 2 executors, NORMAL, /var/lib/jenkins", nodes)
	}
	r = c.post("computer/doCreateItem", form).mustStatus(t, http.StatusBadRequest)
	if !strings.Contains(string(r.body), "Agent called ‘recorded-node’ already exists") {
		t.Errorf("duplicate body lacks Jenkins' message:\n%s", r.body)
	}
}

// heterogeneous lists hold objects of many classes contributed by plugins and triggers (actions,
// causes); the emulator produces some of those classes only.
func heterogeneous(path string) bool {
	return strings.HasSuffix(path, ".actions") || strings.HasSuffix(path, ".causes")
}

// conformsHeterogeneous compares a recorded element with the emulator's elements of the same
// _class; a class the emulator does not produce, or a legacy element without _class that matches
// nothing, is not the emulator's to answer for.
func conformsHeterogeneous(r, g []any, path string) []string {
	var problems []string
	for i, re := range r {
		class, hasClass := classOf(re)
		var candidates []any
		for _, ge := range g {
			if gc, _ := classOf(ge); !hasClass || gc == class {
				candidates = append(candidates, ge)
			}
		}
		if len(candidates) == 0 {
			continue
		}
		best := bestMatch(re, candidates, fmt.Sprintf("%s[%d]", path, i))
		if hasClass && len(best) > 0 {
			problems = append(problems, best...)
		}
	}
	return problems
}

func classOf(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", false
	}
	c, ok := m["_class"].(string)
	return c, ok
}

// bestMatch returns nil when rec conforms to one of the candidates, else the problems of the
// closest one.
func bestMatch(rec any, candidates []any, path string) []string {
	var best []string
	for _, ge := range candidates {
		p := conforms(rec, ge, path)
		if len(p) == 0 {
			return nil
		}
		if best == nil || len(p) < len(best) {
			best = p
		}
	}
	return best
}

// TestWorldStates pins the states the conformance test relies on, so that a comparison of
// shapes is also a comparison of like with like.
func TestWorldStates(t *testing.T) {
	w := newWorld(t)
	const tree = "?tree=offline,temporarilyOffline,idle,offlineCauseReason,offlineCause"
	cause := func(class string) map[string]any { return map[string]any{"_class": class} }
	computers := []struct {
		name string
		want map[string]any
	}{
		{"idle", map[string]any{"offline": false, "temporarilyOffline": false, "idle": true, "offlineCauseReason": "", "offlineCause": nil}},
		{"busy", map[string]any{"offline": false, "temporarilyOffline": false, "idle": false, "offlineCauseReason": "", "offlineCause": nil}},
		{"temp", map[string]any{"offline": true, "temporarilyOffline": true, "idle": true, "offlineCauseReason": "testing purposes",
			"offlineCause": cause("hudson.slaves.OfflineCause$UserCause")}},
		{"never", map[string]any{"offline": true, "temporarilyOffline": false, "idle": true, "offlineCauseReason": "", "offlineCause": nil}},
		{"crashed", map[string]any{"offline": true, "temporarilyOffline": false, "idle": true,
			"offlineCauseReason": "Connection was broken: java.nio.channels.ClosedChannelException",
			"offlineCause":       cause("hudson.slaves.OfflineCause$ChannelTermination")}},
		{"disc", map[string]any{"offline": true, "temporarilyOffline": false, "idle": true, "offlineCauseReason": "jam.stop",
			"offlineCause": cause("hudson.slaves.OfflineCause$UserCause")}},
		{"relaunch", map[string]any{"offline": true, "temporarilyOffline": false, "idle": true, "offlineCauseReason": "", "offlineCause": nil}},
	}
	for _, c := range computers {
		got := w.c.get("computer/" + c.name + "/api/json" + tree).json(t)
		delete(got, "_class")
		if oc, ok := got["offlineCause"].(map[string]any); ok {
			got["offlineCause"] = map[string]any{"_class": oc["_class"]}
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("computer %s (-want +got):\n%s", c.name, diff)
		}
	}
	items := []struct {
		id   int64
		want map[string]any
	}{
		{w.blocked, map[string]any{"_class": "hudson.model.Queue$BlockedItem", "why": "Build #1 is already in progress (ETA: N/A)"}},
		{w.buildable, map[string]any{"_class": "hudson.model.Queue$BuildableItem", "why": "There are no nodes with the label ‘nosuch’"}},
		{w.placeholder, map[string]any{"_class": "hudson.model.Queue$BuildableItem", "why": "There are no nodes with the label ‘nosuch2’"}},
		{w.cancelled, map[string]any{"_class": "hudson.model.Queue$LeftItem", "why": nil}},
		{w.started, map[string]any{"_class": "hudson.model.Queue$LeftItem", "why": nil}},
	}
	for _, it := range items {
		got := w.c.get(fmt.Sprintf("queue/item/%d/api/json?tree=why", it.id)).json(t)
		if diff := cmp.Diff(it.want, got); diff != "" {
			t.Errorf("queue item %d (-want +got):\n%s", it.id, diff)
		}
	}
}
