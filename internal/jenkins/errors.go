package jenkins

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"net/http"
	"regexp"
	"strings"
)

// Sentinel errors a caller can act on with errors.Is. Every error the client returns for a failed
// request is an *HTTPError that unwraps to one of these (and to the transport error, if any).
var (
	// ErrUnauthorized: Jenkins rejected the credentials (401). Check the user and API token.
	ErrUnauthorized = errors.New("jenkins: unauthorized")
	// ErrForbidden: the user lacks a permission (403); HTTPError.Permission names it when Jenkins does.
	ErrForbidden = errors.New("jenkins: forbidden")
	// ErrNotFound: no such job, node or page (404).
	ErrNotFound = errors.New("jenkins: not found")
	// ErrUnavailable: Jenkins did not answer usefully (connection refused or reset, timeout, 429, 5xx),
	// even after the retries the request allowed. Try again later.
	ErrUnavailable = errors.New("jenkins: unavailable")
	// ErrStarting: Jenkins is restarting or starting up: it answered 503 with its "Jenkins is getting
	// ready to work" (hudson.util.HudsonIsLoading) or "Jenkins is restarting" (HudsonIsRestarting)
	// page, whatever the credentials. errors.Is(err, ErrUnavailable) holds too. Its queue and nodes
	// are not readable yet: nothing it said before the restart is known to hold.
	ErrStarting = fmt.Errorf("jenkins: starting up: %w", ErrUnavailable)
	// ErrNodeExists: a node of that name exists and is not ours (its description differs).
	ErrNodeExists = errors.New("jenkins: node name taken by a node we did not create")
	// ErrUnexpectedResponse: Jenkins answered, but not with what was asked for (an HTML page where JSON
	// was expected, an unparseable body, a redirect on a read). Usually a proxy or login page in between.
	ErrUnexpectedResponse = errors.New("jenkins: unexpected response")
)

// HTTPError describes one failed request: which call, what came back, and what it means.
type HTTPError struct {
	Method   string
	Endpoint string // stable name of the call, e.g. "queue", "createNode"
	Path     string // path and query relative to the Jenkins root (no credentials ever appear here)
	Status   int    // HTTP status, 0 when no response arrived
	Title    string // the <title> of an HTML answer, if any
	Message  string // what Jenkins (or the transport) said, shortened to one line

	// Permission is the permission Jenkins said was missing on a 403 (X-Required-Permission, or the
	// "is missing the X permission" sentence of the error page).
	Permission string
	// User is who Jenkins thinks we are (X-You-Are-Authenticated-As), to tell "anonymous" (credentials
	// not sent or not accepted) from "the right user without a permission".
	User string

	kind error // one of the sentinels
	err  error // the transport error, if any
}

// Error says what happened and what to do about it in one line.
func (e *HTTPError) Error() string {
	var b strings.Builder
	// The query (a long tree=) stays in Path; the message names the page.
	path, _, _ := strings.Cut(e.Path, "?")
	fmt.Fprintf(&b, "jenkins %s %s (%s): ", e.Method, path, e.Endpoint)
	switch {
	case e.Status == 0:
		b.WriteString("no response")
	default:
		fmt.Fprintf(&b, "%d %s", e.Status, http.StatusText(e.Status))
	}
	if e.Title != "" && !strings.Contains(e.Message, e.Title) {
		fmt.Fprintf(&b, ", page %q", e.Title)
	}
	if e.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Message)
	}
	switch e.kind {
	case ErrUnauthorized:
		b.WriteString(" (check the user name and API token or password)")
	case ErrForbidden:
		switch {
		case e.User == "anonymous":
			b.WriteString(" (Jenkins treated the request as anonymous: credentials missing or not accepted)")
		case e.Permission != "" && e.User != "":
			fmt.Fprintf(&b, " (user %q lacks permission %s)", e.User, e.Permission)
		case e.Permission != "":
			fmt.Fprintf(&b, " (missing permission %s)", e.Permission)
		}
	case ErrUnavailable:
		b.WriteString(" (Jenkins unavailable)")
	case ErrStarting:
		b.WriteString(" (Jenkins is starting up)")
	}
	return b.String()
}

// Unwrap exposes the sentinel and the transport error to errors.Is and errors.As.
func (e *HTTPError) Unwrap() []error {
	errs := make([]error, 0, 2)
	if e.kind != nil {
		errs = append(errs, e.kind)
	}
	if e.err != nil {
		errs = append(errs, e.err)
	}
	return errs
}

// kindForStatus maps a status to the sentinel a caller acts on.
func kindForStatus(status int) error {
	switch {
	case status == http.StatusUnauthorized:
		return ErrUnauthorized
	case status == http.StatusForbidden:
		return ErrForbidden
	case status == http.StatusNotFound || status == http.StatusGone:
		return ErrNotFound
	case status == http.StatusTooManyRequests || status >= 500:
		return ErrUnavailable
	default:
		return ErrUnexpectedResponse
	}
}

// kindForResponse is kindForStatus, with Jenkins' start-up and restart pages told apart from other
// 503s: both are served by HudsonIsLoading/HudsonIsRestarting's index.jelly, whose body carries the
// app-jenkins-booting block and whose title is "Starting Jenkins" or "Restarting Jenkins" (English:
// the client sends no Accept-Language). While loading, Jenkins.getInstanceOrNull is null, so
// Functions.advertiseHeaders writes no X-Jenkins; a proxy's own 503 has neither mark.
func kindForResponse(status int, h http.Header, body []byte) error {
	kind := kindForStatus(status)
	if status != http.StatusServiceUnavailable || !isHTML(h.Get("Content-Type"), body) {
		return kind
	}
	if bytes.Contains(body, []byte("app-jenkins-booting")) {
		return ErrStarting
	}
	if m := titleRe.FindSubmatch(body); m != nil && h.Get("X-Jenkins") == "" {
		switch strings.TrimSpace(string(m[1])) {
		case "Starting Jenkins", "Restarting Jenkins":
			return ErrStarting
		}
	}
	return kind
}

var (
	titleRe      = regexp.MustCompile(`(?is)<title[^>]*>(.*?)</title>`)
	jettyTitleRe = regexp.MustCompile(`^Error \d{3} (.*)$`)
	// Jenkins' access denied page, 2.2xx and later: "bob is missing the Agent/Create permission".
	missingPermRe = regexp.MustCompile(`is missing the ([A-Za-z][A-Za-z ]*/[A-Za-z][A-Za-z ]*) permission`)
	// Older pages: "Permission you need to have (but didn't): hudson.model.Hudson.Read".
	needPermRe = regexp.MustCompile(`Permission you need to have \(but didn't\): (\S+)`)
	scriptRe   = regexp.MustCompile(`(?is)<(script|style)[^>]*>.*?</(script|style)>`)
	commentRe  = regexp.MustCompile(`(?s)<!--.*?-->`)
	tagRe      = regexp.MustCompile(`(?s)<[^>]*>`)
	spaceRe    = regexp.MustCompile(`\s+`)
)

// maxMessage bounds the text copied from a response into an error: enough for Jenkins' one-line
// messages, short enough that a stack trace page does not flood the log.
const maxMessage = 300

// isHTML reports whether a body is an HTML page, by header or by its first byte, because Jenkins and
// proxies in front of it do not always label error pages.
func isHTML(contentType string, body []byte) bool {
	if strings.Contains(strings.ToLower(contentType), "html") {
		return true
	}
	t := bytes.TrimSpace(body)
	return len(t) > 0 && t[0] == '<' && !bytes.HasPrefix(t, []byte("<?xml")) && !bytes.HasPrefix(t, []byte("<jnlp"))
}

// describeBody extracts the page title and a one-line message from an answer, so errors say what
// came back instead of "invalid character '<'".
func describeBody(contentType string, body []byte) (title, message string) {
	if isHTML(contentType, body) {
		if m := titleRe.FindSubmatch(body); m != nil {
			title = oneLine(html.UnescapeString(string(m[1])))
		}
		// Jetty's page for sendError (Jenkins' 401, crumb 403, 404) has the message in its title;
		// the body only repeats it among the URI and the servlet name.
		if m := jettyTitleRe.FindStringSubmatch(title); m != nil && m[1] != "" {
			return title, m[1]
		}
		text := scriptRe.ReplaceAll(body, nil)
		text = commentRe.ReplaceAll(text, nil)
		// Drop the title from the text: it is reported on its own.
		text = titleRe.ReplaceAll(text, nil)
		text = tagRe.ReplaceAll(text, []byte(" "))
		return title, oneLine(html.UnescapeString(string(text)))
	}
	return "", oneLine(string(body))
}

// oneLine collapses whitespace and cuts to maxMessage runes.
func oneLine(s string) string {
	s = strings.TrimSpace(spaceRe.ReplaceAllString(s, " "))
	if r := []rune(s); len(r) > maxMessage {
		s = string(r[:maxMessage]) + "…"
	}
	return s
}

// permissionFrom finds the permission a 403 names: the sentence of Jenkins' access denied page, else
// the header its AccessDeniedException sets (old versions also put it in an HTML comment).
func permissionFrom(h http.Header, body []byte) string {
	// The page's "Agent/Create" is what an administrator finds in the security matrix; the header's
	// "hudson.model.Computer.Create" is the fallback.
	if m := missingPermRe.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	if p := h.Get("X-Required-Permission"); p != "" {
		return p
	}
	if m := needPermRe.FindSubmatch(body); m != nil {
		return string(m[1])
	}
	return ""
}
