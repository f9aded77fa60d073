package jenkins

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fixturesDir is where the recorded Jenkins payloads live: testdata/fixtures inside this package,
// copied with their SOURCES.md so that a plain clone passes its tests. The emulator's conformance test
// reads the same folder.
func fixturesDir(t testing.TB) string {
	t.Helper()
	const fx = "testdata/fixtures"
	if st, err := os.Stat(fx); err != nil || !st.IsDir() {
		t.Fatalf("recorded Jenkins payloads missing: want them in internal/jenkins/%s: %v", fx, err)
	}
	return fx
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(fixturesDir(t), name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return data
}

func ms(v int64) time.Time { return time.UnixMilli(v).UTC() }

// camunda builds the expected record of one item of the 2017 camunda capture: freestyle jobs under
// https://ci.camunda.com/jenkins/7.6/, all stuck but one.
func camunda(id int64, name string, since int64, why string, w Why) Demand {
	return Demand{
		QueueID: id, Label: w.Label, Node: w.Node, Ambiguous: w.Ambiguous, MaybeNode: w.MaybeNode,
		TaskName: name, TaskURL: "https://ci.camunda.com/jenkins/7.6/job/" + name + "/",
		Kind: KindFreestyle, InQueueSince: ms(since), Stuck: true, Why: why,
	}
}

func offline(label string) (string, Why) {
	return "All nodes of label \u2018" + label + "\u2019 are offline", Why{Label: label}
}

func camundaQueue() []Demand {
	lbl := func(id int64, name string, since int64, label string) Demand {
		why, w := offline(label)
		return camunda(id, name, since, why, w)
	}
	item96 := camunda(96, "7.6-engine-UNIT-sqlserver-2008", 1491487086067,
		"Waiting for next available executor on ci6.camunda.loc-03ca904e87b2",
		Why{Label: "ci6.camunda.loc-03ca904e87b2", MaybeNode: true})
	item96.Stuck = false
	return []Demand{
		lbl(117, "7.6-engine-UNIT-authorizations-oracle-12", 1491489198588, "oracle_12"),
		camunda(116, "7.6-engine-UNIT-authorizations-oracle-10", 1491489198581,
			"ci4.camunda.loc-a5a8a9c7b2ea is offline", Why{Node: "ci4.camunda.loc-a5a8a9c7b2ea"}),
		lbl(97, "7.6-engine-UNIT-sqlserver-2014", 1491487086072, "sqlserver_2014"),
		item96,
		lbl(92, "7.6-webapp-UNIT-oracle-12", 1491485465526, "oracle_12"),
		lbl(90, "7.6-webapp-UNIT-authorizations-sqlserver-2014", 1491485436346, "sqlserver_2014"),
		lbl(88, "7.6-engine-UNIT-oracle-12", 1491484953584, "oracle_12"),
		lbl(86, "7.6-webapp-UNIT-authorizations-oracle-12", 1491484902380, "oracle_12"),
		lbl(79, "7.6-EE-engine-IT-jbosseap-64-postgresql-91", 1491484740969, "postgresql_91"),
		lbl(78, "7.6-EE-engine-IT-jbosseap-61-postgresql-91", 1491484740822, "postgresql_91"),
		lbl(73, "7.6-EE-engine-IT-jbosseap-70-postgresql-91", 1491484680824, "postgresql_91"),
		lbl(67, "7.6-EE-engine-IT-jbosseap-63-postgresql-91", 1491484620822, "postgresql_91"),
		lbl(61, "7.6-EE-engine-IT-jbosseap-62-postgresql-91", 1491484500822, "postgresql_91"),
		lbl(113, "7.6-EE-webapp-plugins-UNIT-sqlserver-2012", 1491488356873, "sqlserver_2012"),
		lbl(112, "7.6-EE-webapp-plugins-UNIT-postgresql-91", 1491488356869, "postgresql_91"),
		lbl(111, "7.6-EE-webapp-plugins-UNIT-oracle-11", 1491488356864, "oracle_11"),
		lbl(104, "7.6-EE-webapp-plugins-UNIT-authorizations-sqlserver-2012", 1491488116069, "sqlserver_2012"),
		lbl(103, "7.6-EE-webapp-plugins-UNIT-authorizations-postgresql-91", 1491488116064, "postgresql_91"),
		lbl(102, "7.6-EE-webapp-plugins-UNIT-authorizations-oracle-11", 1491488116058, "oracle_11"),
		lbl(81, "7.6-EE-webapp-IT-weblogic-12R2-h2", 1491484741096, "weblogic_12R2"),
		lbl(70, "7.6-EE-webapp-IT-websphere-85-postgresql-91", 1491484621384, "websphere_85_postgresql_91"),
		lbl(68, "7.6-EE-engine-IT-weblogic-12R1-postgresql-91", 1491484621069, "postgresql_91"),
		camunda(64, "7.6-EE-webapp-IT-websphere-80-postgresql-91", 1491484501009,
			"Waiting for next available executor on ci4.camunda.loc-eda7ea28792f",
			Why{Label: "ci4.camunda.loc-eda7ea28792f", MaybeNode: true}),
		lbl(63, "7.6-EE-engine-IT-XA-websphere-85-postgresql-91", 1491484500963, "websphere_85_postgresql_91"),
		lbl(52, "7.6-webapp-UNIT-sqlserver-2012", 1491482113063, "sqlserver_2012"),
		lbl(51, "7.6-webapp-UNIT-postgresql-91", 1491482113058, "postgresql_91"),
		lbl(43, "7.6-engine-UNIT-authorizations-sqlserver-2012", 1491481398297, "sqlserver_2012"),
		lbl(42, "7.6-engine-UNIT-authorizations-postgresql-91", 1491481398290, "postgresql_91"),
	}
}

// placeholder is the expected record of a pipeline node() item of the 2018 jam captures: its task
// has only a _class, and the composite why from Jenkins 2.89.4 names nodes only.
func placeholder(id int64) Demand {
	return Demand{
		QueueID: id, Ambiguous: true, Unlabelled: true, Kind: KindPipeline,
		InQueueSince: ms(1521146001741),
		Why:          "Jenkins is reserved for jobs with matching label expression; build1 is offline; build2 is offline",
	}
}

func TestParseQueueFixtures(t *testing.T) {
	base, _ := url.Parse("https://jenkins.example.com/")
	tests := []struct {
		file string
		want []Demand
	}{
		{"queue_28-buildable-items_label-offline-whys_compact_2017_camunda.json", camundaQueue()},
		// A freestyle build waiting for its previous build: blocked, not demand.
		{"queue_blocked-build-in-progress_freestyle_jenkins-2.89.4_jam.json", []Demand{}},
		{"queue_blocked-plus-1-pipeline-placeholder-buildable_jenkins-2.89.4_jam.json", []Demand{placeholder(843)}},
		{"queue_blocked-plus-3-pipeline-placeholders-buildable_jenkins-2.89.4_jam.json",
			[]Demand{placeholder(843), placeholder(844), placeholder(845)}},
		// pending: already handed to an executor.
		{"queue_buildable-pending-true_legacy-no-_class_node-jenkins.json", []Demand{}},
		{"queue_buildable_legacy-no-_class_cdancy.json", []Demand{
			{QueueID: 7, Ambiguous: true, TaskName: "chicken", TaskURL: "http://localhost:32769/job/chicken/",
				Kind: KindFreestyle, InQueueSince: ms(1460738557584), Why: "Waiting for next available executor"},
			{QueueID: 6, Ambiguous: true, TaskName: "Freestyle", TaskURL: "http://localhost:32769/job/Freestyle/",
				Kind: KindFreestyle, InQueueSince: ms(1460738551155), Why: "Waiting for next available executor"},
		}},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseQueue(readFixture(t, tt.file), base)
			if err != nil {
				t.Fatalf("parseQueue: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("demand (-want +got):\n%s", diff)
			}
		})
	}
	// Every recorded queue is covered: a new fixture must get its expected records here.
	matches, _ := filepath.Glob(filepath.Join(fixturesDir(t), "queue_*.json"))
	for _, m := range matches {
		if !seen[filepath.Base(m)] {
			t.Errorf("queue fixture %s has no expected demand in this test", filepath.Base(m))
		}
	}
}

// Single queue items (/queue/item/N/api/json) are not what Queue reads, but their shapes must not be
// taken for demand if they ever show up in a list: blocked and left items are not buildable.
func TestQueueItemFixturesAreNotDemand(t *testing.T) {
	for _, f := range []string{
		"queue-item_BlockedItem_prettyprint_cdancy.json",
		"queue-item_LeftItem_cancelled_prettyprint_cdancy.json",
		"queue-item_LeftItem_started-executable_prettyprint_cdancy.json",
		"queue-item_left-executable_legacy-no-_class_node-jenkins.json",
	} {
		t.Run(f, func(t *testing.T) {
			item := strings.TrimSpace(string(readFixture(t, f)))
			got, err := parseQueue([]byte(`{"items":[`+item+`]}`), nil)
			if err != nil {
				t.Fatalf("parseQueue: %v", err)
			}
			if len(got) != 0 {
				t.Errorf("got demand %+v, want none", got)
			}
		})
	}
}

func execs(n int) []Executor { return make([]Executor, n) }

func TestParseComputerListFixtures(t *testing.T) {
	failed := "This node is offline because Jenkins failed to launch the slave agent on it."
	offlineNode := func(name string, n int) Computer {
		return Computer{Name: name, Offline: true, Idle: true, OfflineReason: failed, NumExecutors: n, Executors: execs(n)}
	}
	online := func(name string, idle bool) Computer {
		return Computer{Name: name, Idle: idle, NumExecutors: 1, Executors: execs(1), Connected: true}
	}
	tests := []struct {
		file string
		want []Computer
	}{
		{"computer-list_depth0_prettyprint_2017_camunda.json", []Computer{
			{Name: "master", BuiltIn: true, Connected: true, Idle: true, NumExecutors: 1, Executors: execs(1)},
			online("ci4.camunda.loc-eda7ea28792f", false),
			online("dvm05.camunda.loc-230a6acb9b72", false),
			{Name: "dvm05.camunda.loc-622498b16877", Offline: true, Idle: true, OfflineReason: "Shutting down Docker",
				NumExecutors: 1, Executors: execs(1)},
			online("dvm05.camunda.loc-c3f1afa71f3a", false),
			online("kallisto.camunda.loc-0ac780245b39", false),
			online("kallisto.camunda.loc-b9604e3022a7", false),
		}},
		{"computer-list_depth0_prettyprint_cdancy.json", []Computer{
			{Name: "master", BuiltIn: true, Connected: true, NumExecutors: 2, Executors: execs(2)},
			offlineNode("alpine-i686", 1),
			offlineNode("arm-greg", 2),
			offlineNode("i686-epian533-greg", 1),
			offlineNode("macos-giles", 2),
			offlineNode("osx-ppc-greg", 2),
			offlineNode("solaris-greg", 2),
			online("thomas-armv7", true),
			online("thomas-armv8", true),
			online("thomas-mips", true),
		}},
		{"computer-list_with-jnlp-agents_node-jenkins.json", []Computer{
			{Name: "master", BuiltIn: true, Connected: true, Idle: true, NumExecutors: 3, Executors: execs(3)},
			{Name: "test", Offline: true, TemporarilyOffline: true, Idle: true, NumExecutors: 1, Executors: execs(1),
				OfflineReason: "<span class=error style='display:inline-block'>Time out for last 5 try</span>"},
			{Name: "test-node-abc00edf-4e7e-4dfe-a6d6-157d19d592bc", Offline: true, Idle: true, JNLPAgent: true,
				NumExecutors: 2, Executors: execs(2)},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseComputers(readFixture(t, tt.file))
			if err != nil {
				t.Fatalf("parseComputers: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("computers (-want +got):\n%s", diff)
			}
			for _, c := range got {
				if c.Busy() {
					t.Errorf("%s: Busy() with no current build recorded", c.Name)
				}
			}
		})
	}
}

func TestParseComputerFixtures(t *testing.T) {
	build1 := func(mod func(*Computer)) Computer {
		c := Computer{Name: "build1", Labels: []string{"agent", "build1", "windows-agent"}, NumExecutors: 1, Executors: execs(1), Connected: true}
		mod(&c)
		return c
	}
	jnlpNode := func(mod func(*Computer)) Computer {
		c := Computer{Name: "test-node-a532b0f8-6079-4efa-80ea-ad61c05bef5b", JNLPAgent: true, Idle: true, NumExecutors: 2, Executors: execs(2), Connected: true}
		mod(&c)
		return c
	}
	tests := []struct {
		file string
		want Computer
	}{
		{"computer_agent_online_busy_depth0_jenkins-2.89.4_jam.json", build1(func(c *Computer) {})},
		{"computer_agent_online_idle_depth0_jenkins-2.89.4_jam.json", build1(func(c *Computer) { c.Idle = true })},
		{"computer_agent_temporarily-offline_usercause_jenkins-2.89.4_jam.json", build1(func(c *Computer) {
			c.Idle, c.Offline, c.TemporarilyOffline, c.OfflineReason, c.Connected = true, true, true, "testing purposes", false
		})},
		{"computer_agent_offline_usercause-disconnect_jenkins-2.89.4_jam.json", build1(func(c *Computer) {
			c.Idle, c.Offline, c.OfflineReason, c.Connected = true, true, "jam.stop", false
		})},
		{"computer_agent_offline_launching_jenkins-2.89.4_jam.json", build1(func(c *Computer) {
			c.Idle, c.Offline, c.Connected = true, true, false
		})},
		{"computer_jnlp-agent_never-connected_node-jenkins.json", jnlpNode(func(c *Computer) { c.Offline, c.Connected = true, false })},
		{"computer_jnlp-agent_online_node-jenkins.json", jnlpNode(func(c *Computer) {})},
		{"computer_jnlp-agent_temporarily-offline_node-jenkins.json", jnlpNode(func(c *Computer) {
			c.Offline, c.TemporarilyOffline, c.OfflineReason, c.Connected = true, true, "away", false
		})},
	}
	seen := map[string]bool{"computer_agent_offline_channeltermination-stacktrace_jenkins-2.89.4_jam.json": true}
	for _, tt := range tests {
		seen[tt.file] = true
		t.Run(tt.file, func(t *testing.T) {
			got, err := parseComputer(readFixture(t, tt.file))
			if err != nil {
				t.Fatalf("parseComputer: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("computer (-want +got):\n%s", diff)
			}
		})
	}
	t.Run("channel termination keeps the whole stack trace", func(t *testing.T) {
		got, err := parseComputer(readFixture(t, "computer_agent_offline_channeltermination-stacktrace_jenkins-2.89.4_jam.json"))
		if err != nil {
			t.Fatalf("parseComputer: %v", err)
		}
		if !got.Offline || got.TemporarilyOffline || got.Name != "build1" {
			t.Errorf("got %+v, want build1 offline, not temporarily", got)
		}
		if !strings.HasPrefix(got.OfflineReason, "org.jinterop.dcom.common.JIException: Message not found for errorCode: 0x00000005\n") ||
			!strings.HasSuffix(got.OfflineReason, "... 10 more") {
			t.Errorf("offline reason cut or altered: %q", got.OfflineReason)
		}
	})
	matches, _ := filepath.Glob(filepath.Join(fixturesDir(t), "computer_*.json"))
	for _, m := range matches {
		if !seen[filepath.Base(m)] {
			t.Errorf("computer fixture %s has no expected record in this test", filepath.Base(m))
		}
	}
}

// The camunda queue and computer list were captured together: with the list, the item waiting "on"
// an existing computer is known to wait for that node, and the one naming an unknown name stays a
// label.
func TestResolveNodesWithCamundaCapture(t *testing.T) {
	demand, err := parseQueue(readFixture(t, "queue_28-buildable-items_label-offline-whys_compact_2017_camunda.json"), nil)
	if err != nil {
		t.Fatal(err)
	}
	computers, err := parseComputers(readFixture(t, "computer-list_depth0_prettyprint_2017_camunda.json"))
	if err != nil {
		t.Fatal(err)
	}
	got := ResolveNodes(demand, computers)
	want := camundaQueue()
	for i := range want {
		if want[i].QueueID == 64 {
			want[i].Node, want[i].Label, want[i].MaybeNode = "ci4.camunda.loc-eda7ea28792f", "", false
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("resolved demand (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(camundaQueue(), demand); diff != "" {
		t.Errorf("ResolveNodes modified its input (-want +got):\n%s", diff)
	}
}

// The recorded doCreateItem request (node-jenkins, 2014) and this client's form name the same
// Jenkins classes in the same fields; this client also sets what that one could not.
func TestCreateNodeFormMatchesRecordedRequest(t *testing.T) {
	recorded, err := url.ParseQuery(strings.TrimSpace(string(readFixture(t, "request_computer-doCreateItem_jnlp_form-query_node-jenkins.txt"))))
	if err != nil {
		t.Fatalf("parse recorded form: %v", err)
	}
	rec := decodeNodeJSON(t, recorded.Get("json"))
	spec := NodeSpec{Name: "{name}", Description: "[jenkins-agent-provisioner] x", Labels: []string{"linux", "docker"},
		RemoteFS: "/var/lib/jenkins", NumExecutors: 2, Mode: ModeNormal, WebSocket: true}
	if err := spec.normalize(); err != nil {
		t.Fatal(err)
	}
	form, err := createNodeForm(spec)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := form.Get("name"), recorded.Get("name"); got != want {
		t.Errorf("name = %q, recorded %q", got, want)
	}
	if !strings.HasPrefix(recorded.Get("type"), "hudson.slaves.DumbSlave") || form.Get("type") != "hudson.slaves.DumbSlave" {
		t.Errorf("type = %q, recorded %q", form.Get("type"), recorded.Get("type"))
	}
	ours := decodeNodeJSON(t, form.Get("json"))
	for _, k := range []string{"name", "numExecutors", "remoteFS", "mode", "retentionStrategy", "nodeProperties"} {
		if diff := cmp.Diff(rec[k], ours[k]); diff != "" {
			t.Errorf("json field %s differs from the recorded request (-recorded +ours):\n%s", k, diff)
		}
	}
	launcher, _ := ours["launcher"].(map[string]any)
	recLauncher, _ := rec["launcher"].(map[string]any)
	if launcher["stapler-class"] != recLauncher["stapler-class"] || launcher["webSocket"] != true {
		t.Errorf("launcher = %v, want the recorded JNLPLauncher with webSocket true", launcher)
	}
	if ours["labelString"] != "linux docker" || ours["nodeDescription"] != "[jenkins-agent-provisioner] x" {
		t.Errorf("labelString/nodeDescription = %v/%v", ours["labelString"], ours["nodeDescription"])
	}
}
