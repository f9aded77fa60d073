package statuspage

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/statuspage/statuspagetest"
)

// TestBrowserRendersStatus loads the page in headless Chromium in a phone-sized window and checks
// what the browser built: the waiting labels, the agents and their states, the failure reasons. It
// fails (never skips) without chromium, except in -short mode, because CI installs it.
func TestBrowserRendersStatus(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	// The handler runs on the real clock, as in the provisioner, so the status is made relative to it.
	st := realisticAt(time.Now())
	h := Handler(func() lifecycle.Status { return st }, func() string { return "leader" })
	url := statuspagetest.ServeLoopback(t, h)

	shot, err := statuspagetest.ScreenshotPath("statuspage-leader.png")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dom, err := statuspagetest.Capture(ctx, url, shot)
	if err != nil {
		t.Fatalf("load the status page in chromium: %v", err)
	}
	t.Logf("screenshot: %s", shot)
	// The phone's first screen shows the top of the page; a tall window shows every section, for a
	// person reviewing the layout.
	full, err := statuspagetest.ScreenshotPath("statuspage-leader-full.png")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := statuspagetest.CaptureWindow(ctx, url, full, statuspagetest.CaptureWidth, 2400); err != nil {
		t.Fatalf("load the status page in a tall window: %v", err)
	}
	t.Logf("screenshot of the whole page: %s", full)

	doc := parseDoc(t, dom)
	type waiting struct{ Label, Template, Builds string }
	var gotWaiting []waiting
	for _, tr := range findAll(doc, byClass("waiting")) {
		c := cells(tr)
		gotWaiting = append(gotWaiting, waiting{text(c["Label"]), text(c["Template"]), text(c["Builds"])})
	}
	wantWaiting := []waiting{{"maven&&jdk21", "maven", "3"}, {"node", "node", "1"}, {"no label", "default", "2"}}
	if diff := cmp.Diff(wantWaiting, gotWaiting); diff != "" {
		t.Errorf("waiting rows in the browser (-want +got):\n%s", diff)
	}

	type agent struct{ Name, State, StateText, Build string }
	var gotAgents []agent
	for _, tr := range findAll(doc, hasAttr("data-agent")) {
		c := cells(tr)
		gotAgents = append(gotAgents, agent{text(c["Name"]), attrOf(tr, "data-state"), textOf(c["State"], "state"), text(c["Build"])})
	}
	wantAgents := []agent{
		{"default-hj45m", "idle", "idle", "–"},
		{"maven-b4d9q", "starting", "starting", "–"},
		{"maven-c6f8r", "busy", "busy", "nightly #4711"},
		{"maven-x7k2p", "busy", "busy", "platform/api/main #128"},
		{"node-zz25w", "failed", "failed", "–"},
	}
	if diff := cmp.Diff(wantAgents, gotAgents); diff != "" {
		t.Errorf("agents in the browser (-want +got):\n%s", diff)
	}

	var gotReasons []string
	for _, tr := range findAll(doc, byClass("failure")) {
		gotReasons = append(gotReasons, text(cells(tr)["Reason"]))
	}
	wantReasons := []string{st.Failures[0].Reason, st.Failures[1].Reason}
	if diff := cmp.Diff(wantReasons, gotReasons); diff != "" {
		t.Errorf("failure reasons in the browser (-want +got):\n%s", diff)
	}
}

// TestBrowserFollower checks a follower's page in the browser says it is not leading and lists
// nothing.
func TestBrowserFollower(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: no browser")
	}
	h := Handler(func() lifecycle.Status {
		t.Error("a follower's page read the controller's status")
		return realistic()
	}, func() string { return "follower" })
	url := statuspagetest.ServeLoopback(t, h)
	shot, err := statuspagetest.ScreenshotPath("statuspage-follower.png")
	if err != nil {
		t.Fatal(err)
	}
	dom, err := statuspagetest.Capture(context.Background(), url, shot)
	if err != nil {
		t.Fatalf("load the status page in chromium: %v", err)
	}
	t.Logf("screenshot: %s", shot)
	doc := parseDoc(t, dom)
	if findID(doc, "not-leading") == nil {
		t.Errorf("the follower page in the browser has no #not-leading notice:\n%s", dom)
	}
	if n := len(findAll(doc, byTag("tr"))); n != 0 {
		t.Errorf("the follower page shows %d table rows, want none", n)
	}
}
