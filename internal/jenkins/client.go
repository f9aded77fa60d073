package jenkins

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"
)

// Config configures a Client. Only URL and the credentials are required.
type Config struct {
	URL   string // Jenkins root URL, e.g. https://jenkins.example.com/
	User  string
	Token string // API token: Basic auth, no crumb
	// TokenFile holds the API token instead of Token (a mounted Secret). It is re-read whenever it
	// changes and after a 401, so a rotated token takes effect without a restart.
	TokenFile    string
	Password     string // password auth: crumb + session cookie
	CAFile       string // PEM bundle to trust instead of the system roots (verification always on unless Insecure)
	Insecure     bool
	Timeout      time.Duration     // per attempt; default 10s
	RetryMax     int               // retries after the first attempt; default 4 (negative: none)
	RetryWaitMin time.Duration     // default 100ms
	RetryWaitMax time.Duration     // default 2s
	Transport    http.RoundTripper // optional, for tests
	Logger       *zap.Logger
	// Observe is called once per HTTP attempt (retries included) with the call's stable name ("queue",
	// "computers", "createNode", ...), the status (0 when no response came) and the attempt's time to
	// response headers. For metrics.
	Observe func(endpoint string, status int, d time.Duration)

	// MaxRetryAfter is the longest Retry-After the client waits out; a longer one fails the request
	// with ErrUnavailable at once instead of blocking a reconcile loop. Default 30s.
	MaxRetryAfter time.Duration
	// JobLabelTTL is how long JobLabelExpression trusts a cached job label; default 10m. Job labels
	// change only when someone edits the job, and the lookup is only needed for ambiguous items.
	JobLabelTTL time.Duration
	// JobLabelCacheSize is how many jobs' labels JobLabelExpression keeps, least recently used
	// evicted first; default 4096.
	JobLabelCacheSize int
}

// Client talks to one Jenkins. It is safe for concurrent use.
type Client struct {
	base     *url.URL // root URL, path ending in "/"
	user     string
	creds    *credentials // token or password; never logged
	password bool         // password auth: crumb + session cookie on POSTs
	jar      http.CookieJar
	log      *zap.Logger
	observe  func(string, int, time.Duration)
	rc       *retryablehttp.Client
	maxAfter time.Duration
	jobTTL   time.Duration
	now      func() time.Time

	crumbMu sync.Mutex
	crumb   *crumb // nil: not fetched yet

	jobLbls *jobLabelCache
}

type crumb struct {
	field, value string // field "" means Jenkins issues no crumbs (CSRF protection off)
}

// Defaults for Config fields left zero.
const (
	defaultTimeout       = 10 * time.Second
	defaultRetryMax      = 4
	defaultRetryWaitMin  = 100 * time.Millisecond
	defaultRetryWaitMax  = 2 * time.Second
	defaultMaxRetryAfter = 30 * time.Second
	defaultJobLabelTTL   = 10 * time.Minute
	// maxBody bounds a successful answer. Measured with the emulator (TestBodyCapFitsTenThousandItems):
	// a queue item costs some 500 bytes with 50-character job names, so a 10 000-item queue is about
	// 5 MB; 16 MiB leaves room for longer names and URLs, and for a computer list of as many agents.
	// Reading it costs at most twice that while the buffer grows, well inside the Deployment's 256 MiB.
	maxBody = 16 << 20
	// maxErrorBody bounds what is read of an answer that is not the document asked for: a non-2xx
	// status, a POST's answer page, or an HTML page where JSON or a jnlp file was expected. A title
	// and Jenkins' one-line message are in the first few KiB; a 60 MB stack trace or proxy page is
	// never read further (the connection is closed instead of drained).
	maxErrorBody = 8 << 10
	// sniffLen is how much of a successful answer is looked at to tell an HTML page from the document.
	sniffLen = 512
	// userAgent names the provisioner in Jenkins' access log.
	userAgent = "jenkins-agent-provisioner"
)

// New checks the configuration and builds a Client. It makes no request.
func New(cfg Config) (*Client, error) {
	if cfg.URL == "" {
		return nil, errors.New("jenkins: URL is required")
	}
	base, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("jenkins: parse URL %q: %w", cfg.URL, err)
	}
	if base.Scheme != "http" && base.Scheme != "https" || base.Host == "" {
		return nil, fmt.Errorf("jenkins: URL %q must be an absolute http(s) URL", cfg.URL)
	}
	if base.User != nil {
		// Credentials in the URL would end up in logs and error messages.
		return nil, errors.New("jenkins: URL must not contain credentials; set User and Token or Password")
	}
	if base.RawQuery != "" || base.Fragment != "" {
		return nil, fmt.Errorf("jenkins: URL %q must not have a query or fragment", cfg.URL)
	}
	if !strings.HasSuffix(base.Path, "/") {
		base.Path += "/"
		base.RawPath = ""
	}
	if cfg.Token != "" && cfg.TokenFile != "" {
		return nil, errTokenAndFile
	}
	if (cfg.Token != "" || cfg.TokenFile != "") && cfg.Password != "" {
		return nil, errors.New("jenkins: set either Token or Password, not both")
	}
	if (cfg.Token != "" || cfg.TokenFile != "" || cfg.Password != "") && cfg.User == "" {
		return nil, errors.New("jenkins: User is required with a Token or Password")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = defaultTimeout
	}
	if cfg.RetryMax == 0 {
		cfg.RetryMax = defaultRetryMax
	} else if cfg.RetryMax < 0 {
		cfg.RetryMax = 0
	}
	if cfg.RetryWaitMin <= 0 {
		cfg.RetryWaitMin = defaultRetryWaitMin
	}
	if cfg.RetryWaitMax <= 0 {
		cfg.RetryWaitMax = defaultRetryWaitMax
	}
	if cfg.RetryWaitMax < cfg.RetryWaitMin {
		cfg.RetryWaitMax = cfg.RetryWaitMin
	}
	if cfg.MaxRetryAfter <= 0 {
		cfg.MaxRetryAfter = defaultMaxRetryAfter
	}
	if cfg.JobLabelTTL <= 0 {
		cfg.JobLabelTTL = defaultJobLabelTTL
	}
	log := cfg.Logger
	if log == nil {
		log = zap.NewNop()
	}
	log = log.Named("jenkins")

	transport := cfg.Transport
	if transport == nil {
		t, err := newTransport(cfg)
		if err != nil {
			return nil, err
		}
		transport = t
	} else if cfg.CAFile != "" || cfg.Insecure {
		return nil, errors.New("jenkins: CAFile and Insecure apply to the built-in transport; configure TLS on the given Transport instead")
	}
	if cfg.Insecure {
		log.Warn("TLS certificate verification is off (Insecure)")
	}
	if base.Scheme == "http" && (cfg.Token != "" || cfg.TokenFile != "" || cfg.Password != "") {
		log.Warn("credentials go to Jenkins over plain http://: anyone on the network path can read the API token or password; use an https:// URL",
			zap.String("jenkinsURL", base.String()))
	}
	secret := cfg.Token
	if cfg.Password != "" {
		secret = cfg.Password
	}
	creds, err := newCredentials(cfg.User, secret, cfg.TokenFile, log)
	if err != nil {
		return nil, err
	}

	c := &Client{
		base:     base,
		user:     cfg.User,
		creds:    creds,
		log:      log,
		observe:  cfg.Observe,
		maxAfter: cfg.MaxRetryAfter,
		jobTTL:   cfg.JobLabelTTL,
		now:      time.Now,
		jobLbls:  newJobLabelCache(cfg.JobLabelCacheSize),
	}
	if cfg.Password != "" {
		c.password = true
	}

	inner := &http.Client{
		Transport: &attemptTransport{next: transport, c: c},
		Timeout:   cfg.Timeout,
		// Jenkins answers a successful POST with 302 to a page we do not want; following it would
		// cost a request and turn success into an HTML answer (gojenkins issue #342). A GET that is
		// redirected is an answer of its own (usually a login page) and is reported, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	if c.password {
		// Since 2.176 a crumb is only valid with the session it was issued in.
		jar, err := cookiejar.New(nil)
		if err != nil {
			return nil, fmt.Errorf("jenkins: cookie jar: %w", err)
		}
		inner.Jar = jar
		c.jar = jar
	}
	c.rc = &retryablehttp.Client{
		HTTPClient:   inner,
		Logger:       nil, // attempts are logged by attemptTransport with zap
		RetryWaitMin: cfg.RetryWaitMin,
		RetryWaitMax: cfg.RetryWaitMax,
		RetryMax:     cfg.RetryMax,
		CheckRetry:   c.checkRetry,
		Backoff:      c.backoff,
		// Keep the last response so the error can say what Jenkins answered.
		ErrorHandler: retryablehttp.PassthroughErrorHandler,
	}
	return c, nil
}

// newTransport builds the default transport: pooled connections, bounded dial and TLS handshake,
// certificates verified against the system roots or only against CAFile.
func newTransport(cfg Config) (*http.Transport, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: cfg.Timeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = cfg.Timeout
	t.ResponseHeaderTimeout = cfg.Timeout
	t.MaxIdleConnsPerHost = 4
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("jenkins: read CA bundle: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("jenkins: CA bundle %s holds no PEM certificate", cfg.CAFile)
		}
		tc.RootCAs = pool
	}
	if cfg.Insecure {
		tc.InsecureSkipVerify = true //nolint:gosec // explicit opt-in, warned about at start
	}
	t.TLSClientConfig = tc
	return t, nil
}

// URL is the Jenkins root URL the client talks to, with a trailing slash.
func (c *Client) URL() string { return c.base.String() }

// call describes one logical request (which may take several attempts).
type call struct {
	method   string
	endpoint string     // stable name for logs, metrics and errors
	path     string     // relative to the root: escaped path, optional "?query"
	form     url.Values // POST body, form-encoded
	// idempotent: repeating the request cannot do harm, so any failure may be retried. Otherwise it
	// is retried only when it certainly never reached Jenkins (dial error, 429).
	idempotent bool
	// maxBody, when positive, bounds a successful answer below the default maxBody.
	maxBody int64
}

type callKey struct{}

type callInfo struct {
	endpoint   string
	idempotent bool
	attempt    int
}

// result is a successful (2xx, or 3xx on POST) answer.
type result struct {
	status int
	header http.Header
	body   []byte
}

// do runs a call with retries and returns the answer, or an *HTTPError for anything else.
func (c *Client) do(ctx context.Context, cl call) (result, error) {
	sent := c.creds.current()
	res, err := c.doOnce(ctx, cl)
	if errors.Is(err, ErrUnauthorized) && c.creds.reloadAfter401(sent) {
		// The token file holds another token than the one refused (rotated since it was read):
		// a refused request changed nothing, so one more try with the new token is safe.
		c.log.Info("Jenkins refused the token; retrying with the token file's new content", zap.String("endpoint", cl.endpoint))
		res, err = c.doOnce(ctx, cl)
	}
	if err != nil && c.password && cl.method == http.MethodPost && isCrumbRejection(err) {
		// The session the crumb belongs to expired (or Jenkins restarted): a rejected crumb means
		// the request was not applied, so a fresh crumb and one more try are safe.
		c.crumbMu.Lock()
		c.crumb = nil
		c.crumbMu.Unlock()
		res, err = c.doOnce(ctx, cl)
	}
	return res, err
}

func (c *Client) doOnce(ctx context.Context, cl call) (result, error) {
	target := c.base.String() + cl.path
	var body []byte
	if cl.form != nil {
		body = []byte(cl.form.Encode())
	}
	info := &callInfo{endpoint: cl.endpoint, idempotent: cl.idempotent || cl.method == http.MethodGet}
	rctx := context.WithValue(ctx, callKey{}, info)
	var rawBody any
	if body != nil {
		rawBody = body
	}
	req, err := retryablehttp.NewRequestWithContext(rctx, cl.method, target, rawBody)
	if err != nil {
		return result{}, fmt.Errorf("jenkins: build %s request: %w", cl.endpoint, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if cl.method == http.MethodPost && c.password {
		cr, err := c.getCrumb(ctx)
		if err != nil {
			return result{}, err
		}
		if cr.field != "" {
			req.Header.Set(cr.field, cr.value)
		}
	}
	resp, err := c.rc.Do(req)
	return c.finish(ctx, cl, resp, err)
}

// finish turns the last attempt's outcome into a result or an *HTTPError.
func (c *Client) finish(ctx context.Context, cl call, resp *http.Response, err error) (result, error) {
	he := &HTTPError{Method: cl.method, Endpoint: cl.endpoint, Path: displayPath(cl.path)}
	if resp == nil {
		if err == nil {
			err = errors.New("no response")
		}
		if ctx.Err() != nil {
			// The caller gave up: say so, not "Jenkins unavailable".
			return result{}, fmt.Errorf("jenkins %s %s (%s): %w", cl.method, he.Path, cl.endpoint, ctx.Err())
		}
		he.kind = ErrUnavailable
		he.err = err
		he.Message = oneLine(err.Error())
		return result{}, he
	}
	defer func() { _ = resp.Body.Close() }()
	status := resp.StatusCode
	he.Status = status
	ct := resp.Header.Get("Content-Type")
	limit, partial := int64(maxBody), false
	if cl.maxBody > 0 {
		limit = cl.maxBody
	}
	body := bufio.NewReaderSize(resp.Body, sniffLen)
	switch {
	case status < 200 || status >= 300 || cl.method != http.MethodGet:
		// Only an error message (or nothing: a POST's answer page) is wanted from these.
		limit, partial = maxErrorBody, true
	default:
		// Every GET asks for JSON or a jnlp file: an HTML page instead (a login or proxy page with
		// status 200) is an error, and only its beginning says which.
		head, _ := body.Peek(sniffLen)
		if isHTML(ct, head) {
			limit, partial = maxErrorBody, true
		}
	}
	data, rerr := io.ReadAll(io.LimitReader(body, limit+1))
	if rerr != nil {
		// Headers came but the body was cut (reset, timeout): as good as no answer.
		he.kind = ErrUnavailable
		he.err = rerr
		he.Message = "reading the answer: " + oneLine(rerr.Error())
		return result{}, he
	}
	if int64(len(data)) > limit {
		if !partial {
			he.kind = ErrUnexpectedResponse
			he.Message = fmt.Sprintf("answer larger than %d bytes", limit)
			return result{}, he
		}
		data = data[:limit]
	}
	if partial {
		// Pages that echo the request (proxies, debugging endpoints) must not carry our
		// credentials into an error.
		data = c.redact(data)
	}
	switch {
	case status >= 200 && status < 300:
		return result{status: status, header: resp.Header, body: data}, nil
	case status >= 300 && status < 400:
		loc := resp.Header.Get("Location")
		if isLoginRedirect(loc) {
			he.kind = ErrUnauthorized
			he.Message = "redirected to the login page " + loc
			return result{}, he
		}
		if cl.method == http.MethodPost {
			// Jenkins' normal answer to a form POST that worked.
			return result{status: status, header: resp.Header, body: data}, nil
		}
		he.kind = ErrUnexpectedResponse
		he.Message = "redirected to " + loc
		return result{}, he
	}
	he.kind = kindForResponse(status, resp.Header, data)
	he.Title, he.Message = describeBody(ct, data)
	he.User = resp.Header.Get("X-You-Are-Authenticated-As")
	if status == http.StatusForbidden {
		he.Permission = permissionFrom(resp.Header, data)
	}
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		if d, ok := retryAfter(resp); ok && d > c.maxAfter {
			// Not waited out: say why the request failed without more tries.
			he.Message = strings.TrimSpace(he.Message + fmt.Sprintf(" (Jenkins asked to retry after %s, longer than the %s the client waits)", d, c.maxAfter))
		}
	}
	return result{}, he
}

// displayPath is a request path for errors: the query unescaped, so tree=items[id,why] reads as
// written rather than as %5B...%5D.
func displayPath(p string) string {
	if i := strings.IndexByte(p, '?'); i >= 0 {
		if q, err := url.QueryUnescape(p[i+1:]); err == nil {
			p = p[:i+1] + q
		}
	}
	return "/" + p
}

// isLoginRedirect recognises a redirect to Jenkins' (or an SSO proxy's) login page.
func isLoginRedirect(loc string) bool {
	l := strings.ToLower(loc)
	return strings.Contains(l, "/login") || strings.Contains(l, "securityrealm") || strings.Contains(l, "oauth")
}

func isCrumbRejection(err error) bool {
	var he *HTTPError
	return errors.As(err, &he) && he.Status == http.StatusForbidden &&
		(strings.Contains(he.Message, "No valid crumb") || strings.Contains(he.Title, "No valid crumb"))
}

// getCrumb returns the cached crumb, fetching one (and with it a session cookie) the first time.
func (c *Client) getCrumb(ctx context.Context) (crumb, error) {
	c.crumbMu.Lock()
	defer c.crumbMu.Unlock()
	if c.crumb != nil {
		return *c.crumb, nil
	}
	res, err := c.doOnce(ctx, call{method: http.MethodGet, endpoint: "crumb", path: "crumbIssuer/api/json"})
	if errors.Is(err, ErrNotFound) {
		// CSRF protection is off: POSTs need no crumb.
		c.crumb = &crumb{}
		return *c.crumb, nil
	}
	if err != nil {
		return crumb{}, fmt.Errorf("jenkins: get crumb: %w", err)
	}
	var v struct {
		Crumb             string `json:"crumb"`
		CrumbRequestField string `json:"crumbRequestField"`
	}
	if err := c.decodeJSON("crumb", displayPath("crumbIssuer/api/json"), res, &v); err != nil {
		return crumb{}, err
	}
	if v.CrumbRequestField == "" || v.Crumb == "" {
		return crumb{}, &HTTPError{Method: http.MethodGet, Endpoint: "crumb", Path: "/crumbIssuer/api/json",
			Status: res.status, Message: "crumb issuer answered without a crumb", kind: ErrUnexpectedResponse}
	}
	c.crumb = &crumb{field: v.CrumbRequestField, value: v.Crumb}
	return *c.crumb, nil
}

// getJSON reads one JSON document.
func (c *Client) getJSON(ctx context.Context, endpoint, path string, v any) error {
	res, err := c.do(ctx, call{method: http.MethodGet, endpoint: endpoint, path: path})
	if err != nil {
		return err
	}
	return c.decodeJSON(endpoint, displayPath(path), res, v)
}

// decodeJSON decodes an answer that must be JSON, and says what came instead when it is not.
func (c *Client) decodeJSON(endpoint, path string, res result, v any) error {
	he := &HTTPError{Method: http.MethodGet, Endpoint: endpoint, Path: path, Status: res.status, kind: ErrUnexpectedResponse}
	ct := res.header.Get("Content-Type")
	trimmed := bytes.TrimSpace(res.body)
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') {
		he.Title, he.Message = describeBody(ct, res.body)
		he.Message = strings.TrimSpace(fmt.Sprintf("expected JSON, got %s: %s", orUnknown(ct), he.Message))
		return he
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		he.err = err
		he.Message = "decode JSON: " + oneLine(err.Error())
		return he
	}
	return nil
}

func orUnknown(ct string) string {
	if ct == "" {
		return "no Content-Type"
	}
	return ct
}

// pathEscape escapes one path segment (a node or job name) for a Jenkins URL.
func pathEscape(name string) string { return url.PathEscape(name) }
