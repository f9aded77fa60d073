package jenkinstest

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestJobLabelExpression(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	s.CreateFreestyleJob("withlabel", "linux && docker", time.Second)
	s.CreateFreestyleJob("roams", "", time.Second)
	s.CreatePipelineJob("pipe", "linux", time.Second)
	for _, tt := range []struct {
		job  string
		want map[string]any
	}{
		{"withlabel", map[string]any{"_class": "hudson.model.FreeStyleProject", "labelExpression": "linux && docker"}},
		{"roams", map[string]any{"_class": "hudson.model.FreeStyleProject", "labelExpression": nil}},
		// A pipeline job has no labelExpression property: its label lives in the script.
		{"pipe", map[string]any{"_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob"}},
	} {
		got := c.get("job/"+tt.job+"/api/json?tree=labelExpression").mustStatus(t, http.StatusOK).json(t)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.job, diff)
		}
	}
	c.get("job/nosuch/api/json").mustStatus(t, http.StatusNotFound)
}

func TestCancelItem(t *testing.T) {
	s := newTestServer(t, Options{})
	s.AddUser("reader", "t", OverallRead, JobRead)
	c := newClient(t, s, "admin", "admin-token")
	s.CreateFreestyleJob("j", "nosuch", time.Second)
	id, err := s.Schedule("j")
	if err != nil {
		t.Fatal(err)
	}
	path := "queue/cancelItem?id=" + strconv.FormatInt(id, 10)
	newClient(t, s, "reader", "t").post(path, nil).mustStatus(t, http.StatusUnprocessableEntity)
	c.post(path, nil).mustStatus(t, http.StatusNoContent)
	c.post(path, nil).mustStatus(t, http.StatusNotFound)
	got := c.get("queue/item/" + strconv.FormatInt(id, 10) + "/api/json?tree=cancelled,executable,why").json(t)
	want := map[string]any{"_class": "hudson.model.Queue$LeftItem", "cancelled": true, "executable": nil, "why": nil}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("cancelled item (-want +got):\n%s", diff)
	}
	if ids, _ := queueWhys(t, c); len(ids) != 0 {
		t.Errorf("queue still holds %v", ids)
	}
}

// TestModes: an EXCLUSIVE node takes only items whose label it matches; a NORMAL node also takes
// unlabelled items.
func TestModes(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "ex", "linux", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	createNode(t, c, "norm", "windows", "NORMAL", true).mustStatus(t, http.StatusFound)
	connect(t, s, "ex")
	connect(t, s, "norm")
	s.CreateFreestyleJob("unlabelled", "", 50*time.Millisecond)
	s.CreateFreestyleJob("linux", "linux", 50*time.Millisecond)
	s.CreateFreestyleJob("windows", "windows", 50*time.Millisecond)
	for _, j := range []string{"unlabelled", "linux", "windows"} {
		if _, err := s.Schedule(j); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "three builds done", func() bool {
		b := s.Builds()
		return len(b) == 3 && b[0].Done && b[1].Done && b[2].Done
	})
	got := map[string]string{}
	for _, b := range s.Builds() {
		got[b.Job] = b.Node
	}
	if diff := cmp.Diff(map[string]string{"unlabelled": "norm", "linux": "ex", "windows": "norm"}, got); diff != "" {
		t.Errorf("where builds ran (-want +got):\n%s", diff)
	}
}

func TestLabelEndpoint(t *testing.T) {
	s := newTestServer(t, Options{})
	c := newClient(t, s, "admin", "admin-token")
	createNode(t, c, "a1", "linux docker", "EXCLUSIVE", true).mustStatus(t, http.StatusFound)
	connect(t, s, "a1")
	for _, tt := range []struct {
		label string
		want  map[string]any
	}{
		{"linux", map[string]any{"_class": "hudson.model.labels.LabelAtom", "name": "linux", "offline": false, "idleExecutors": 1.0,
			"nodes": []any{map[string]any{"_class": "hudson.slaves.DumbSlave", "nodeName": "a1"}}}},
		{"linux && docker", map[string]any{"_class": "hudson.model.labels.LabelExpression$And", "name": "linux&&docker", "offline": false, "idleExecutors": 1.0,
			"nodes": []any{map[string]any{"_class": "hudson.slaves.DumbSlave", "nodeName": "a1"}}}},
		{"mac", map[string]any{"_class": "hudson.model.labels.LabelAtom", "name": "mac", "offline": true, "idleExecutors": 0.0, "nodes": []any{}}},
	} {
		got := c.get("label/"+url.PathEscape(tt.label)+"/api/json?tree=name,offline,idleExecutors,nodes[nodeName]").mustStatus(t, http.StatusOK).json(t)
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.label, diff)
		}
	}
	if r := c.get("label/" + url.PathEscape("a &&") + "/api/json"); r.status != http.StatusNotFound || !strings.Contains(string(r.body), "Not Found") {
		t.Errorf("bad expression: %d", r.status)
	}
}
