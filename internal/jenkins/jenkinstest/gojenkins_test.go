package jenkinstest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/bndr/gojenkins"
	"github.com/google/go-cmp/cmp"
)

// TestGojenkins drives the emulator with a third-party client that was written against real
// Jenkins (github.com/bndr/gojenkins v1.2.0): whatever it decodes must decode here too.
func TestGojenkins(t *testing.T) {
	s := newTestServer(t, Options{Version: "2.492.3"})
	s.AddPasswordUser("alice", "secret", OverallAdminister)
	s.CreateFreestyleJob("fs", "linux", time.Hour)
	ctx := context.Background()

	for _, auth := range []struct{ user, secret string }{{"admin", "admin-token"}, {"alice", "secret"}} {
		t.Run(auth.user, func(t *testing.T) {
			hc := &http.Client{Timeout: 10 * time.Second}
			jk, err := gojenkins.CreateJenkins(hc, s.URL(), auth.user, auth.secret).Init(ctx)
			if err != nil {
				t.Fatalf("Init: %v", err)
			}
			if jk.Version != "2.492.3" {
				t.Errorf("Version = %q, want the X-Jenkins header", jk.Version)
			}
			if diff := cmp.Diff([]map[string]string{{"name": "built-in"}}, jk.Raw.AssignedLabels); diff != "" {
				t.Errorf("assignedLabels (-want +got):\n%s", diff)
			}
			if !jk.Raw.UseSecurity || !jk.Raw.UseCrumbs || len(jk.Raw.Jobs) != 1 || jk.Raw.Jobs[0].Name != "fs" {
				t.Errorf("root = %+v", jk.Raw)
			}

			name := "gj-" + auth.user
			// CreateNode posts with a crumb fetched the way gojenkins does (and the session cookie it
			// copies from Set-Cookie), so this also covers the password user's crumb flow. Jenkins
			// answers 302 to /computer/, an HTML page, which gojenkins then tries to decode as JSON:
			// against a real Jenkins too, CreateNode and DeleteNode report a syntax error after
			// doing their work.
			_, err = jk.CreateNode(ctx, name, 1, "made by gojenkins", "/home/jenkins/agent", "linux")
			var syntax *json.SyntaxError
			if !errors.As(err, &syntax) {
				t.Fatalf("CreateNode error = %v, want the JSON syntax error of decoding the HTML node list", err)
			}
			if ns := s.Nodes(); len(ns) != 1 || ns[0].Name != name || ns[0].Description != "made by gojenkins" ||
				ns[0].LabelString != "linux" || ns[0].Mode != "NORMAL" {
				t.Fatalf("nodes after CreateNode = %+v", ns)
			}
			got, err := jk.GetNode(ctx, name)
			if err != nil {
				t.Fatalf("GetNode: %v", err)
			}
			if online, err := got.IsOnline(ctx); err != nil || online {
				t.Errorf("IsOnline = %v, %v; want false (never connected)", online, err)
			}

			nodes, err := jk.GetAllNodes(ctx)
			if err != nil {
				t.Fatalf("GetAllNodes: %v", err)
			}
			var names []string
			for _, n := range nodes {
				names = append(names, n.GetName())
			}
			if len(names) < 2 || names[0] != "Built-In Node" {
				t.Errorf("GetAllNodes names = %v, want the built-in node first", names)
			}

			id, err := s.Schedule("fs")
			if err != nil {
				t.Fatal(err)
			}
			q, err := jk.GetQueue(ctx)
			if err != nil {
				t.Fatalf("GetQueue: %v", err)
			}
			var whys []string
			for _, task := range q.Tasks() {
				if task.Raw.ID == id {
					whys = append(whys, task.GetWhy())
				}
			}
			// The one node carrying "linux" never connected, so Jenkins names it.
			if diff := cmp.Diff([]string{"‘" + name + "’ is offline"}, whys); diff != "" {
				t.Errorf("queue whys (-want +got):\n%s", diff)
			}

			job, err := jk.GetJob(ctx, "fs")
			if err != nil {
				t.Fatalf("GetJob: %v", err)
			}
			if d := job.GetDetails(); d.Name != "fs" || d.Class != "hudson.model.FreeStyleProject" || !d.InQueue {
				t.Errorf("job = %+v", d)
			}

			if got.Raw.DisplayName != name || !got.Raw.Offline || !got.Raw.JnlpAgent {
				t.Errorf("node = %+v", got.Raw)
			}
			if _, err := jk.DeleteNode(ctx, name); !errors.As(err, &syntax) {
				t.Fatalf("DeleteNode error = %v, want the JSON syntax error of decoding the HTML node list", err)
			}
			if ns := s.Nodes(); len(ns) != 0 {
				t.Fatalf("nodes after DeleteNode = %+v", ns)
			}
			if _, err := jk.GetNode(ctx, name); err == nil {
				// gojenkins decodes the HTML 404 page and fails; a node that is still there decodes.
				t.Errorf("GetNode after DeleteNode succeeded")
			}
			if err := s.Cancel(id); err != nil {
				t.Fatal(err)
			}
		})
	}
}
