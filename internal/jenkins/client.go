package jenkins

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
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

// pathEscape escapes one path segment (a node or job name) for a Jenkins URL.
func pathEscape(name string) string { return url.PathEscape(name) }
