package statuspage

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/net/html"

	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
)

var now = time.Date(2026, 11, 25, 20, 0, 0, 0, time.UTC)

const jenkinsURL = "https://jenkins.example.com/"

// realistic is a status as a busy controller reports it at the fixed time now.
func realistic() lifecycle.Status { return realisticAt(now) }

// realisticAt is a status as a busy controller reports it at the time given: several labels
// waiting, agents in most states, failures with Kubernetes' own reasons.
func realisticAt(now time.Time) lifecycle.Status {
	return lifecycle.Status{
		PolledAt:   now.Add(-1 * time.Second),
		JenkinsURL: jenkinsURL,
		Waiting: []lifecycle.WaitingLabel{
			{Label: "maven&&jdk21", Template: "maven", Builds: 3, Oldest: now.Add(-4*time.Minute - 7*time.Second),
				Why: lifecycle.WaitReason{Kind: lifecycle.WaitTemplateCap}},
			{Label: "node", Template: "node", Builds: 1, Oldest: now.Add(-12 * time.Second),
				Why: lifecycle.WaitReason{Kind: lifecycle.WaitBackoff, Detail: "ErrImagePull (container jnlp)", Until: now.Add(20 * time.Second)}},
			{Label: "", Template: "default", Builds: 2, Oldest: now.Add(-3 * time.Second), Why: lifecycle.WaitReason{Kind: lifecycle.WaitStarting}},
		},
		Agents: []lifecycle.AgentStatus{
			{Name: "maven-x7k2p", Template: "maven", State: lifecycle.Busy, Created: now.Add(-95 * time.Second),
				Build: jenkinsURL + "job/platform/job/api/job/main/128/"},
			{Name: "maven-b4d9q", Template: "maven", State: lifecycle.Starting, Created: now.Add(-8 * time.Second)},
			{Name: "node-zz25w", Template: "node", State: lifecycle.Failed, Created: now.Add(-3 * time.Minute),
				Reason: "image pull: ErrImagePull: registry.example.com/node:99 not found"},
			{Name: "maven-c6f8r", Template: "maven", State: lifecycle.Busy, Created: now.Add(-2*time.Hour - 5*time.Minute),
				Build: jenkinsURL + "job/nightly/4711/"},
			{Name: "default-hj45m", Template: "default", State: lifecycle.Idle},
		},
		Failures: []lifecycle.FailureRecord{
			{At: now.Add(-2 * time.Minute), Agent: "node-zz25w", Template: "node", Reason: "image pull: ErrImagePull: registry.example.com/node:99 not found"},
			{At: now.Add(-26 * time.Hour), Agent: "maven-q2w5v", Template: "maven", Reason: "connect timeout: agent did not connect within 5m0s"},
		},
	}
}

// serve renders the page as the provisioner's mux would, with the clock fixed at now.
func serve(t *testing.T, st func() lifecycle.Status, role string) (*http.Response, string) {
	t.Helper()
	h := &handler{status: st, role: func() string { return role }, now: func() time.Time { return now }}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	res := rec.Result()
	return res, rec.Body.String()
}

func leaderPage(t *testing.T, s lifecycle.Status) *html.Node {
	t.Helper()
	res, body := serve(t, func() lifecycle.Status { return s }, "leader")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status code = %d, want 200; body:\n%s", res.StatusCode, body)
	}
	return parseDoc(t, body)
}

func TestWaitingRows(t *testing.T) {
	type row struct{ Label, Template, Builds, LabelText, TemplateText, Oldest, OldestAt, Why, WhyText string }
	tests := []struct {
		name    string
		waiting []lifecycle.WaitingLabel
		want    []row
		total   string
	}{
		{
			name:    "realistic",
			waiting: realistic().Waiting,
			want: []row{
				{"maven&&jdk21", "maven", "3", "maven&&jdk21", "maven", "4m07s", "2026-11-25T19:55:53Z", "TemplateCap", "template at its maxAgents"},
				{"node", "node", "1", "node", "node", "12s", "2026-11-25T19:59:48Z", "Backoff", "backing off until 20:00:20 (20s) after: ErrImagePull (container jnlp)"},
				{"", "default", "2", "no label", "default", "3s", "2026-11-25T19:59:57Z", "AgentStarting", "agent starting"},
			},
			total: "6",
		},
		{
			name:    "no template serves the label",
			waiting: []lifecycle.WaitingLabel{{Label: "windows", Builds: 1, Oldest: now.Add(-90 * time.Minute), Why: lifecycle.WaitReason{Kind: lifecycle.WaitNoTemplate}}},
			want:    []row{{"windows", "", "1", "windows", "none matches", "1h30m", "2026-11-25T18:30:00Z", "NoTemplate", "no template serves this label"}},
			total:   "1",
		},
		{name: "none", total: "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := realistic()
			s.Waiting = tt.waiting
			doc := leaderPage(t, s)
			var got []row
			for _, tr := range findAll(doc, byClass("waiting")) {
				c := cells(tr)
				got = append(got, row{
					Label: attrOf(tr, "data-label"), Template: attrOf(tr, "data-template"), Builds: attrOf(tr, "data-builds"),
					LabelText: text(c["Label"]), TemplateText: text(c["Template"]), Oldest: text(c["Oldest"]),
					OldestAt: attrOf(findAll(c["Oldest"], byTag("time"))[0], "datetime"),
					Why:      attrOf(tr, "data-why"), WhyText: text(c["Why"]),
				})
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("waiting rows (-want +got):\n%s", diff)
			}
			if got, want := attrOf(findID(doc, "waiting-count"), "data-count"), tt.total; got != want {
				t.Errorf("waiting count = %q, want %q", got, want)
			}
			if got, want := findID(doc, "waiting-empty") != nil, len(tt.want) == 0; got != want {
				t.Errorf("empty message shown = %v, want %v", got, want)
			}
		})
	}
}

func TestAgentRows(t *testing.T) {
	type row struct{ Name, Template, State, NameText, NodeURL, StateText, Reason, Age, Build, BuildText string }
	doc := leaderPage(t, realistic())
	var got []row
	for _, tr := range findAll(doc, hasAttr("data-agent")) {
		c := cells(tr)
		got = append(got, row{
			Name: attrOf(tr, "data-agent"), Template: attrOf(tr, "data-template"), State: attrOf(tr, "data-state"),
			NameText: text(c["Name"]), NodeURL: hrefIn(c["Name"], "node"),
			StateText: textOf(c["State"], "state"), Reason: textOf(c["State"], "reason"),
			Age: text(c["Age"]), Build: hrefIn(c["Build"], "build"), BuildText: text(c["Build"]),
		})
	}
	// Sorted by template, then name, whatever order the controller listed them in.
	want := []row{
		{"default-hj45m", "default", "idle", "default-hj45m", jenkinsURL + "computer/default-hj45m/", "idle", "", "–", "", "–"},
		{"maven-b4d9q", "maven", "starting", "maven-b4d9q", jenkinsURL + "computer/maven-b4d9q/", "starting", "", "8s", "", "–"},
		{"maven-c6f8r", "maven", "busy", "maven-c6f8r", jenkinsURL + "computer/maven-c6f8r/", "busy", "", "2h05m",
			jenkinsURL + "job/nightly/4711/", "nightly #4711"},
		{"maven-x7k2p", "maven", "busy", "maven-x7k2p", jenkinsURL + "computer/maven-x7k2p/", "busy", "", "1m35s",
			jenkinsURL + "job/platform/job/api/job/main/128/", "platform/api/main #128"},
		{"node-zz25w", "node", "failed", "node-zz25w", jenkinsURL + "computer/node-zz25w/", "failed",
			"image pull: ErrImagePull: registry.example.com/node:99 not found", "3m00s", "", "–"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("agent rows (-want +got):\n%s", diff)
	}

	type count struct{ State, Count, Text string }
	var counts []count
	for _, li := range findAll(doc, hasAttr("data-state-count")) {
		counts = append(counts, count{attrOf(li, "data-state-count"), attrOf(li, "data-count"), text(li)})
	}
	// Lifecycle order: starting before idle before busy; failures last.
	wantCounts := []count{{"starting", "1", "1 starting"}, {"idle", "1", "1 idle"}, {"busy", "2", "2 busy"}, {"failed", "1", "1 failed"}}
	if diff := cmp.Diff(wantCounts, counts); diff != "" {
		t.Errorf("state counts (-want +got):\n%s", diff)
	}
	if got, want := attrOf(findID(doc, "agents-count"), "data-count"), "5"; got != want {
		t.Errorf("agents count = %q, want %q", got, want)
	}
}

func TestFailureRows(t *testing.T) {
	type row struct{ Agent, Template, At, When, AgentText, Reason string }
	doc := leaderPage(t, realistic())
	var got []row
	for _, tr := range findAll(doc, byClass("failure")) {
		c := cells(tr)
		got = append(got, row{attrOf(tr, "data-failure-agent"), attrOf(tr, "data-template"), attrOf(tr, "data-at"),
			text(c["When"]), text(c["Agent"]), text(c["Reason"])})
	}
	want := []row{
		{"node-zz25w", "node", "2026-11-25T19:58:00Z", "2m00s ago", "node-zz25w", "image pull: ErrImagePull: registry.example.com/node:99 not found"},
		{"maven-q2w5v", "maven", "2026-11-24T18:00:00Z", "1d02h ago", "maven-q2w5v", "connect timeout: agent did not connect within 5m0s"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("failure rows (-want +got):\n%s", diff)
	}
}

func TestHeaderAndNotices(t *testing.T) {
	type header struct {
		Role, Polled, PolledAt, Jenkins string
		NotPolled, Stale                bool
	}
	tests := []struct {
		name   string
		status lifecycle.Status
		want   header
	}{
		{
			name:   "fresh poll",
			status: lifecycle.Status{PolledAt: now.Add(-1 * time.Second), JenkinsURL: jenkinsURL},
			want:   header{Role: "leader", Polled: "polled 1s ago", PolledAt: "2026-11-25T19:59:59Z", Jenkins: jenkinsURL},
		},
		{
			name:   "poll just inside the stale limit",
			status: lifecycle.Status{PolledAt: now.Add(-staleAfter), JenkinsURL: jenkinsURL},
			want:   header{Role: "leader", Polled: "polled 30s ago", PolledAt: "2026-11-25T19:59:30Z", Jenkins: jenkinsURL},
		},
		{
			name:   "Jenkins unreachable for minutes",
			status: lifecycle.Status{PolledAt: now.Add(-3 * time.Minute), JenkinsURL: jenkinsURL},
			want:   header{Role: "leader", Polled: "polled 3m00s ago", PolledAt: "2026-11-25T19:57:00Z", Jenkins: jenkinsURL, Stale: true},
		},
		{
			name:   "never polled",
			status: lifecycle.Status{JenkinsURL: jenkinsURL},
			want:   header{Role: "leader", Polled: "not polled yet", Jenkins: jenkinsURL, NotPolled: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := leaderPage(t, tt.status)
			got := header{
				Role:      attrOf(findID(doc, "role"), "data-role"),
				Polled:    strings.TrimPrefix(text(findID(doc, "summary")), "leader · "),
				PolledAt:  attrOf(findID(doc, "polled"), "data-polled-at"),
				Jenkins:   attrOf(findID(doc, "jenkins"), "href"),
				NotPolled: findID(doc, "not-polled") != nil,
				Stale:     findID(doc, "stale") != nil,
			}
			got.Polled = strings.TrimSuffix(got.Polled, " · "+jenkinsURL)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEmptyStatus(t *testing.T) {
	doc := leaderPage(t, lifecycle.Status{PolledAt: now, JenkinsURL: jenkinsURL})
	type section struct {
		Empty string
		Count string
		Rows  int
	}
	got := map[string]section{}
	for _, s := range []struct{ id, rowAttr string }{{"waiting", "data-label"}, {"agents", "data-agent"}, {"failures", "data-failure-agent"}} {
		got[s.id] = section{
			Empty: text(findID(doc, s.id+"-empty")),
			Count: attrOf(findID(doc, s.id+"-count"), "data-count"),
			Rows:  len(findAll(doc, hasAttr(s.rowAttr))),
		}
	}
	want := map[string]section{
		"waiting":  {Empty: "No builds are waiting for an agent.", Count: "0"},
		"agents":   {Empty: "No agents: none is running or starting.", Count: "0"},
		"failures": {Empty: "No failures.", Count: "0"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("empty sections (-want +got):\n%s", diff)
	}
	if n := len(findAll(doc, byTag("table"))); n != 0 {
		t.Errorf("%d tables on an empty page, want none", n)
	}
}

// A follower's controller does not poll: anything it holds is stale, so the page must not ask.
func TestFollowerShowsNothingStale(t *testing.T) {
	for _, role := range []string{"follower", ""} {
		t.Run("role "+role, func(t *testing.T) {
			res, body := serve(t, func() lifecycle.Status {
				t.Error("a follower's page read the controller's status")
				return realistic()
			}, role)
			if res.StatusCode != http.StatusOK {
				t.Fatalf("status code = %d, want 200", res.StatusCode)
			}
			doc := parseDoc(t, body)
			if findID(doc, "not-leading") == nil {
				t.Errorf("no #not-leading notice on a %q page:\n%s", role, body)
			}
			if got, want := attrOf(findID(doc, "status"), "data-leading"), "false"; got != want {
				t.Errorf("data-leading = %q, want %q", got, want)
			}
			for _, id := range []string{"waiting", "agents", "failures", "polled", "jenkins"} {
				if findID(doc, id) != nil {
					t.Errorf("a %q page shows #%s", role, id)
				}
			}
			if got, want := attrOf(findID(doc, "role"), "data-role"), role; got != want {
				t.Errorf("role = %q, want %q", got, want)
			}
		})
	}
}

// Agent names, reasons and labels come from Jenkins, Kubernetes and users: none may become markup.
func TestHostileDataIsEscaped(t *testing.T) {
	const (
		name   = `<script>alert("name")</script>`
		reason = `"><img src=x onerror=alert(1)><script>alert('reason')</script>`
		label  = `linux&&"<b>bold</b>"`
		tmpl   = `t"onmouseover="alert(1)`
	)
	s := lifecycle.Status{
		PolledAt:   now,
		JenkinsURL: jenkinsURL,
		Waiting:    []lifecycle.WaitingLabel{{Label: label, Template: tmpl, Builds: 1, Oldest: now}},
		Agents: []lifecycle.AgentStatus{
			{Name: name, Template: tmpl, State: lifecycle.Failed, Reason: reason, Build: "javascript:alert(1)"},
			{Name: "a/b?c#d", Template: "t", State: lifecycle.Busy, Build: "https://jenkins.example.com/job/x/1/?a=<b>"},
		},
		Failures: []lifecycle.FailureRecord{{At: now, Agent: name, Template: tmpl, Reason: reason}},
	}
	res, body := serve(t, func() lifecycle.Status { return s }, "leader")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status code = %d, want 200", res.StatusCode)
	}
	for _, raw := range []string{"<script>", "<img", "<b>bold", `onmouseover="`, `href="javascript:`} {
		if strings.Contains(body, raw) {
			t.Errorf("page contains %q unescaped", raw)
		}
	}
	doc := parseDoc(t, body)
	for _, tag := range []string{"script", "img", "b"} {
		if n := len(findAll(doc, byTag(tag))); n != 0 {
			t.Errorf("page has %d <%s> elements, want none", n, tag)
		}
	}
	if n := len(findAll(doc, hasAttr("onmouseover"))); n != 0 {
		t.Errorf("page has %d elements with onmouseover", n)
	}

	// Escaped is not mangled: what the reader sees is exactly the data.
	type agent struct{ Name, Template, NameText, NodeURL, Reason, Build string }
	var got []agent
	for _, tr := range findAll(doc, hasAttr("data-agent")) {
		c := cells(tr)
		got = append(got, agent{attrOf(tr, "data-agent"), attrOf(tr, "data-template"), text(c["Name"]), hrefIn(c["Name"], "node"),
			textOf(c["State"], "reason"), hrefIn(c["Build"], "build")})
	}
	want := []agent{
		{Name: "a/b?c#d", Template: "t", NameText: "a/b?c#d", NodeURL: jenkinsURL + "computer/a%2Fb%3Fc%23d/",
			Build: "https://jenkins.example.com/job/x/1/?a=%3cb%3e"},
		// html/template replaces a javascript: URL with its inert marker.
		{Name: name, Template: tmpl, NameText: name, NodeURL: jenkinsURL + "computer/%3Cscript%3Ealert%28%22name%22%29%3C%2Fscript%3E/",
			Reason: reason, Build: "#ZgotmplZ"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("hostile agents (-want +got):\n%s", diff)
	}
	failures := findAll(doc, byClass("failure"))
	if len(failures) != 1 {
		t.Fatalf("%d failure rows, want 1", len(failures))
	}
	if got, want := text(cells(failures[0])["Reason"]), reason; got != want {
		t.Errorf("failure reason = %q, want %q", got, want)
	}
	waiting := findAll(doc, byClass("waiting"))
	if len(waiting) != 1 {
		t.Fatalf("%d waiting rows, want 1", len(waiting))
	}
	if got, want := []string{attrOf(waiting[0], "data-label"), text(cells(waiting[0])["Label"])}, []string{label, label}; !cmp.Equal(got, want) {
		t.Errorf("waiting label = %q, want %q", got, want)
	}
}

func TestResponseHeaders(t *testing.T) {
	res, body := serve(t, func() lifecycle.Status { return realistic() }, "leader")
	got := map[string]string{}
	for _, k := range []string{"Content-Type", "Cache-Control", "X-Content-Type-Options", "Content-Security-Policy"} {
		got[k] = res.Header.Get(k)
	}
	want := map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"X-Content-Type-Options":  "nosniff",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("headers (-want +got):\n%s", diff)
	}
	doc := parseDoc(t, body)
	metas := map[string]string{}
	for _, m := range findAll(doc, byTag("meta")) {
		if k := attrOf(m, "name") + attrOf(m, "http-equiv"); k != "" {
			metas[k] = attrOf(m, "content")
		}
	}
	wantMetas := map[string]string{"viewport": "width=device-width, initial-scale=1", "refresh": "2", "color-scheme": "light dark"}
	if diff := cmp.Diff(wantMetas, metas); diff != "" {
		t.Errorf("meta tags (-want +got):\n%s", diff)
	}
}

// The handler as run.go mounts it: through a real mux and server, GET and HEAD.
func TestHandlerOverHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", Handler(realistic, func() string { return "leader" }))
	srv := httptest.NewServer(mux)
	defer srv.Close()

	res, err := http.Get(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(res.Body)
	_ = res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(findAll(doc, hasAttr("data-agent"))), len(realistic().Agents); got != want {
		t.Errorf("GET: %d agent rows, want %d", got, want)
	}

	res, err = http.Head(srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if got, want := res.StatusCode, http.StatusOK; got != want {
		t.Errorf("HEAD: status %d, want %d", got, want)
	}
	if res.ContentLength <= 0 {
		t.Errorf("HEAD: Content-Length %d, want the page's length", res.ContentLength)
	}
}

func TestAge(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{-5 * time.Second, "0s"},
		{0, "0s"},
		{999 * time.Millisecond, "0s"},
		{59 * time.Second, "59s"},
		{time.Minute, "1m00s"},
		{4*time.Minute + 7*time.Second, "4m07s"},
		{time.Hour - time.Second, "59m59s"},
		{time.Hour, "1h00m"},
		{2*time.Hour + 5*time.Minute + 59*time.Second, "2h05m"},
		{24 * time.Hour, "1d00h"},
		{26 * time.Hour, "1d02h"},
		{400 * 24 * time.Hour, "400d00h"},
	}
	for _, tt := range tests {
		if got := age(tt.d); got != tt.want {
			t.Errorf("age(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestNodeURL(t *testing.T) {
	tests := []struct{ jenkins, name, want string }{
		{jenkinsURL, "maven-x7k2p", jenkinsURL + "computer/maven-x7k2p/"},
		{"https://ci.example.com/jenkins", "maven-x7k2p", "https://ci.example.com/jenkins/computer/maven-x7k2p/"},
		{jenkinsURL, "a b/c", jenkinsURL + "computer/a%20b%2Fc/"},
		{"", "maven-x7k2p", ""},
		{jenkinsURL, "", ""},
	}
	for _, tt := range tests {
		if got := nodeURL(tt.jenkins, tt.name); got != tt.want {
			t.Errorf("nodeURL(%q, %q) = %q, want %q", tt.jenkins, tt.name, got, tt.want)
		}
	}
}

func TestBuildName(t *testing.T) {
	tests := []struct{ jenkins, build, want string }{
		{jenkinsURL, jenkinsURL + "job/app/42/", "app #42"},
		{jenkinsURL, jenkinsURL + "job/platform/job/api/job/main/128/", "platform/api/main #128"},
		{jenkinsURL, jenkinsURL + "job/my%20app/job/feature%2Fx/7/", "my app/feature/x #7"},
		// Jenkins behind a path, and a build URL on another host than the configured one.
		{"https://ci.example.com/jenkins/", "https://ci.example.com/jenkins/job/app/3/", "app #3"},
		{jenkinsURL, "http://10.0.0.5:8080/job/app/9/", "app #9"},
		{"", "https://jenkins.example.com/job/app/9/", "app #9"},
		// Not a build URL: shown as given.
		{jenkinsURL, jenkinsURL + "job/app/", jenkinsURL + "job/app/"},
		{jenkinsURL, "https://elsewhere.example.com/x/1/", "https://elsewhere.example.com/x/1/"},
		{jenkinsURL, "not a url", "not a url"},
		{jenkinsURL, "", ""},
	}
	for _, tt := range tests {
		if got := buildName(tt.jenkins, tt.build); got != tt.want {
			t.Errorf("buildName(%q, %q) = %q, want %q", tt.jenkins, tt.build, got, tt.want)
		}
	}
}

// FuzzBuildName: any build URL yields a name (never empty for a non-empty URL, never a panic), and
// a name that is not the URL itself always ends in " #<number>".
func FuzzBuildName(f *testing.F) {
	f.Add(jenkinsURL, jenkinsURL+"job/platform/job/api/job/main/128/")
	f.Add(jenkinsURL, "http://10.0.0.5:8080/job/app/9/")
	f.Add("", "job/job/job/1")
	f.Add(jenkinsURL, "%zz/job/%zz/1")
	f.Fuzz(func(t *testing.T, jenkins, build string) {
		got := buildName(jenkins, build)
		if build == "" {
			if got != "" {
				t.Fatalf("buildName(%q, \"\") = %q, want \"\"", jenkins, got)
			}
			return
		}
		if got == "" {
			t.Fatalf("buildName(%q, %q) is empty", jenkins, build)
		}
		if got != build {
			i := strings.LastIndex(got, " #")
			if i < 0 || !isNumber(got[i+2:]) {
				t.Fatalf("buildName(%q, %q) = %q: neither the URL nor \"name #number\"", jenkins, build, got)
			}
		}
	})
}

func TestWhyText(t *testing.T) {
	tests := map[string]lifecycle.WaitReason{
		"provisioner at its maxAgents": {Kind: lifecycle.WaitGlobalCap},
		"API server refused the pod: quota exceeded: pods; retry until 20:00:05 (5s)":       {Kind: lifecycle.WaitRefused, Detail: "quota exceeded: pods", Until: now.Add(5 * time.Second)},
		"one agent at a time finds out whether the failure is gone: Error (container jnlp)": {Kind: lifecycle.WaitProbing, Detail: "Error (container jnlp)"},
		"the job's label could not be read: jenkins: unavailable":                           {Kind: lifecycle.WaitLabelUnknown, Detail: "jenkins: unavailable"},
		"backing off until 19:59:55": {Kind: lifecycle.WaitBackoff, Until: now.Add(-5 * time.Second)},
		"SomethingNew":               {Kind: "SomethingNew"},
	}
	for want, w := range tests {
		if got := whyText(w, now); got != want {
			t.Errorf("whyText(%+v) = %q, want %q", w, got, want)
		}
	}
}
