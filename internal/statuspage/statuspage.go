// Package statuspage renders the provisioner's status page: what an operator opens on a phone when
// builds seem stuck. It shows the builds waiting per label, the agents with their state, age and
// build, and the recent failures with their reasons.
//
// The page is plain server-rendered HTML that reloads itself (a meta refresh, no JavaScript), so it
// works on any browser and under a Content-Security-Policy that forbids scripts. Everything shown
// (agent names, label expressions, failure reasons) comes from Jenkins, Kubernetes or users, so it
// all goes through html/template's contextual escaping. Rows carry stable id and data- attributes so
// tests, in this package and end to end, can find what the page says without scraping text.
package statuspage

import (
	"bytes"
	_ "embed"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
)

// RefreshSeconds is how often the page reloads itself. The controller polls Jenkins every second by
// default, so 2 s shows changes promptly while costing nothing noticeable (one render of an
// in-memory copy per open page).
const RefreshSeconds = 2

// staleAfter is how old the last successful poll may be before the page warns that what it shows
// is out of date. A failed poll leaves the previous view in place, so without the warning a Jenkins
// outage would look like a quiet, healthy system. Many poll intervals (1 s by default) and several
// client retries fit in it, so a single slow request does not raise a false alarm.
const staleAfter = 30 * time.Second

// RoleLeader is the role string of the replica that provisions; any other role is not leading.
const RoleLeader = "leader"

//go:embed page.gohtml
var pageSource string

var page = template.Must(template.New("page").Parse(pageSource))

// Handler serves the status page. status gives a copy of the controller's latest view, role the
// replica's role ("leader" or "follower"). A replica that is not leading never calls status: its
// controller is not polling, so whatever it holds is stale and must not be shown as the truth.
func Handler(status func() lifecycle.Status, role func() string) http.Handler {
	return &handler{status: status, role: role, now: time.Now}
}

type handler struct {
	status func() lifecycle.Status
	role   func() string
	// now is the clock ages are measured against; tests fix it so ages are exact.
	now func() time.Time
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	role := h.role()
	var v view
	if role == RoleLeader {
		v = buildView(h.status(), role, h.now())
	} else {
		v = view{Role: role, Leading: false, Refresh: RefreshSeconds}
	}
	// Render to a buffer first: a template error then becomes a clean 500 instead of half a page.
	var buf bytes.Buffer
	if err := page.Execute(&buf, v); err != nil {
		http.Error(w, fmt.Sprintf("render status page: %v", err), http.StatusInternalServerError)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", "text/html; charset=utf-8")
	// Every view is a snapshot; a cached one would be a lie a second later.
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	// The page needs no script, no external resource and no framing: forbidding them all means an
	// escaping mistake could still not run injected code.
	hdr.Set("Content-Security-Policy",
		"default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
	hdr.Set("Content-Length", strconv.Itoa(buf.Len()))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(buf.Bytes())
}

// view is everything the template shows, already formatted, so the template holds no logic beyond
// loops and conditions.
type view struct {
	Role    string
	Leading bool
	Refresh int

	JenkinsURL string
	// Polled is false until the controller has read Jenkins once.
	Polled   bool
	PolledAt string // RFC 3339, UTC
	PollAge  string
	Stale    bool

	Waiting       []waitingRow
	WaitingBuilds int
	Agents        []agentRow
	StateCounts   []stateCount
	Failures      []failureRow
}

type waitingRow struct {
	Label     string // as Jenkins names it; "" for builds that name no label
	Template  string // "" when no template serves the label
	Builds    int
	OldestAt  string
	OldestAge string
	Why       string // the wait reason's kind (data-why)
	WhyText   string // why, for people
}

type agentRow struct {
	Name      string
	NodeURL   string // the Jenkins computer page; "" without a Jenkins URL
	Template  string
	State     string
	Reason    string
	CreatedAt string // "" when unknown
	Age       string
	Build     string // absolute URL of the running build, "" when none
	BuildName string // "job/sub #12", derived from Build
}

type stateCount struct {
	State string
	Count int
}

type failureRow struct {
	At       string
	Age      string
	Agent    string
	Template string
	Reason   string
}

func buildView(s lifecycle.Status, role string, now time.Time) view {
	v := view{
		Role:       role,
		Leading:    true,
		Refresh:    RefreshSeconds,
		JenkinsURL: s.JenkinsURL,
		Polled:     !s.PolledAt.IsZero(),
	}
	if v.Polled {
		v.PolledAt = stamp(s.PolledAt)
		v.PollAge = age(now.Sub(s.PolledAt))
		v.Stale = now.Sub(s.PolledAt) > staleAfter
	}

	for _, w := range s.Waiting {
		v.Waiting = append(v.Waiting, waitingRow{
			Label:     w.Label,
			Template:  w.Template,
			Builds:    w.Builds,
			OldestAt:  stamp(w.Oldest),
			OldestAge: age(now.Sub(w.Oldest)),
			Why:       string(w.Why.Kind),
			WhyText:   whyText(w.Why, now),
		})
		v.WaitingBuilds += w.Builds
	}

	// The controller lists agents in whatever order its snapshot had; a page whose rows jump around
	// on every refresh is unreadable, so sort by template, then name.
	agents := append([]lifecycle.AgentStatus(nil), s.Agents...)
	sort.SliceStable(agents, func(i, j int) bool {
		if agents[i].Template != agents[j].Template {
			return agents[i].Template < agents[j].Template
		}
		return agents[i].Name < agents[j].Name
	})
	counts := map[string]int{}
	for _, a := range agents {
		row := agentRow{
			Name:      a.Name,
			NodeURL:   nodeURL(s.JenkinsURL, a.Name),
			Template:  a.Template,
			State:     string(a.State),
			Reason:    a.Reason,
			Build:     a.Build,
			BuildName: buildName(s.JenkinsURL, a.Build),
		}
		if !a.Created.IsZero() {
			row.CreatedAt = stamp(a.Created)
			row.Age = age(now.Sub(a.Created))
		}
		v.Agents = append(v.Agents, row)
		counts[string(a.State)]++
	}
	v.StateCounts = orderCounts(counts)

	for _, f := range s.Failures {
		v.Failures = append(v.Failures, failureRow{
			At:       stamp(f.At),
			Age:      age(now.Sub(f.At)),
			Agent:    f.Agent,
			Template: f.Template,
			Reason:   f.Reason,
		})
	}
	return v
}

// stateOrder is the order of an agent's life, so the counts read as a pipeline: starting, then
// working, then leaving, then trouble.
var stateOrder = []lifecycle.State{
	lifecycle.Queued, lifecycle.Starting, lifecycle.Ready, lifecycle.Idle, lifecycle.Busy, lifecycle.Done, lifecycle.Released,
	lifecycle.Terminating, lifecycle.Retained, lifecycle.Failed, lifecycle.Orphan,
}

// orderCounts lists the states present in lifecycle order; a state this package does not know (one
// added to lifecycle later) still shows, after the known ones, rather than vanishing.
func orderCounts(counts map[string]int) []stateCount {
	var out []stateCount
	known := map[string]bool{}
	for _, st := range stateOrder {
		known[string(st)] = true
		if n := counts[string(st)]; n > 0 {
			out = append(out, stateCount{State: string(st), Count: n})
		}
	}
	var extra []string
	for st := range counts {
		if !known[st] {
			extra = append(extra, st)
		}
	}
	sort.Strings(extra)
	for _, st := range extra {
		out = append(out, stateCount{State: st, Count: counts[st]})
	}
	return out
}

// stamp is the machine-readable time put in datetime and data- attributes.
func stamp(t time.Time) string {
	return t.UTC().Format(time.RFC3339)
}

// age formats a duration the way a person scans it on a small screen: the two largest units, no
// fractions ("45s", "3m12s", "2h05m", "3d04h"). A negative duration (a clock skewed between Jenkins
// and us) shows as "0s" rather than a confusing minus sign.
func age(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	d = d.Truncate(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 24*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	default:
		return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
	}
}

// nodeURL is the Jenkins page of the node name, or "" without a Jenkins URL. The name is
// path-escaped: node names are ours today, but the page also lists orphans found in Jenkins.
func nodeURL(jenkinsURL, name string) string {
	if jenkinsURL == "" || name == "" {
		return ""
	}
	if !strings.HasSuffix(jenkinsURL, "/") {
		jenkinsURL += "/"
	}
	return jenkinsURL + "computer/" + url.PathEscape(name) + "/"
}

// buildName turns a build URL (".../job/folder/job/app/42/") into the short name a person knows it
// by ("folder/app #42"). Anything that is not shaped like a Jenkins build URL is returned as given,
// so the page always shows something that leads to the build.
func buildName(jenkinsURL, buildURL string) string {
	if buildURL == "" {
		return ""
	}
	path := buildURL
	if jenkinsURL != "" && strings.HasPrefix(buildURL, jenkinsURL) {
		path = buildURL[len(jenkinsURL):]
	} else if u, err := url.Parse(buildURL); err == nil && u.Host != "" {
		path = u.EscapedPath()
	}
	segs := strings.Split(strings.Trim(path, "/"), "/")
	var jobs []string
	number := ""
	for i := 0; i < len(segs); i++ {
		switch {
		case segs[i] == "job" && i+1 < len(segs):
			name, err := url.PathUnescape(segs[i+1])
			if err != nil {
				name = segs[i+1]
			}
			jobs = append(jobs, name)
			i++
		case len(jobs) > 0 && number == "" && isNumber(segs[i]):
			number = segs[i]
		}
	}
	if len(jobs) == 0 || number == "" {
		return buildURL
	}
	return strings.Join(jobs, "/") + " #" + number
}

func isNumber(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// whyText says why builds wait, in the words an operator looking at a stuck build needs.
func whyText(w lifecycle.WaitReason, now time.Time) string {
	detail := func(prefix string) string {
		if w.Detail == "" {
			return ""
		}
		return prefix + w.Detail
	}
	until := ""
	if !w.Until.IsZero() {
		until = " until " + w.Until.UTC().Format("15:04:05")
		if d := w.Until.Sub(now); d > 0 {
			until += " (" + age(d) + ")"
		}
	}
	switch w.Kind {
	case lifecycle.WaitStarting:
		return "agent starting"
	case lifecycle.WaitQueued:
		if w.Detail == "" {
			return "agent waiting for Kueue to admit it"
		}
		return "agent " + w.Detail
	case lifecycle.WaitTemplateCap:
		return "template at its maxAgents"
	case lifecycle.WaitGlobalCap:
		return "provisioner at its maxAgents"
	case lifecycle.WaitBackoff:
		return "backing off" + until + detail(" after: ")
	case lifecycle.WaitRefused:
		return "API server refused the pod" + detail(": ") + "; retry" + until
	case lifecycle.WaitProbing:
		return "one agent at a time finds out whether the failure is gone" + detail(": ")
	case lifecycle.WaitNoTemplate:
		return "no template serves this label"
	case lifecycle.WaitLabelUnknown:
		return "the job's label could not be read" + detail(": ")
	case lifecycle.WaitResuming:
		return "resumes on its own agent" + detail(": ")
	}
	return string(w.Kind)
}
