package jenkins

// retry.go: what happens under the retrying client: every attempt's headers and logs, which
// failures are tried again, and how long to wait before the next try.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"
)

// attemptTransport sits under the retrying client: it sees every attempt, adds the headers every
// request needs, logs and reports each attempt.
type attemptTransport struct {
	next http.RoundTripper
	c    *Client
}

func (t *attemptTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// RoundTrippers must not modify the caller's request.
	r := req.Clone(req.Context())
	// Texts such as `why` are localised by the request's locale; the parser reads English.
	r.Header.Set("Accept-Language", "en")
	r.Header.Set("User-Agent", userAgent)
	if t.c.user != "" {
		r.SetBasicAuth(t.c.user, t.c.creds.current())
	}
	endpoint, attempt := "other", 0
	if info, ok := req.Context().Value(callKey{}).(*callInfo); ok {
		info.attempt++
		endpoint, attempt = info.endpoint, info.attempt
	}
	start := time.Now()
	resp, err := t.next.RoundTrip(r)
	d := time.Since(start)
	status := 0
	if resp != nil {
		status = resp.StatusCode
	}
	t.c.creds.observe(status)
	if t.c.observe != nil {
		t.c.observe(endpoint, status, d)
	}
	if err != nil {
		t.c.log.Debug("request failed", zap.String("endpoint", endpoint), zap.String("method", r.Method),
			zap.Int("attempt", attempt), zap.Duration("duration", d), zap.Error(err))
	} else {
		t.c.log.Debug("request", zap.String("endpoint", endpoint), zap.String("method", r.Method),
			zap.Int("attempt", attempt), zap.Int("status", status), zap.Duration("duration", d))
	}
	return resp, err
}

// checkRetry decides whether an attempt is repeated. Reads and idempotent writes are repeated on
// connection errors, 429 and 5xx (not 501). A non-idempotent write is repeated only when Jenkins
// certainly did not act on it: the connection was never made, or Jenkins said 429. A reset or a 5xx
// after the request was sent may follow a change Jenkins already made.
func (c *Client) checkRetry(ctx context.Context, resp *http.Response, err error) (bool, error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	idempotent := true
	if info, ok := ctx.Value(callKey{}).(*callInfo); ok {
		idempotent = info.idempotent
	}
	if err != nil {
		if permanentTransportError(err) {
			return false, nil
		}
		return idempotent || neverSent(err), nil
	}
	switch s := resp.StatusCode; {
	case s == http.StatusTooManyRequests:
		return c.withinRetryAfter(resp), nil
	case s == http.StatusServiceUnavailable:
		return idempotent && c.withinRetryAfter(resp), nil
	case s >= 500 && s != http.StatusNotImplemented:
		return idempotent, nil
	}
	return false, nil
}

// withinRetryAfter reports whether a Retry-After (if any) is short enough to wait out.
func (c *Client) withinRetryAfter(resp *http.Response) bool {
	d, ok := retryAfter(resp)
	return !ok || d <= c.maxAfter
}

// permanentTransportError recognises failures a retry cannot fix: a certificate Jenkins' name or our
// CA bundle does not match, a malformed URL.
func permanentTransportError(err error) bool {
	var ue *url.Error
	if errors.As(err, &ue) && strings.Contains(ue.Error(), "unsupported protocol scheme") {
		return true
	}
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	return errors.As(err, &certErr) || errors.As(err, &unknownAuth) || errors.As(err, &hostErr) || errors.As(err, &invalid)
}

// neverSent recognises an error raised before any byte of the request left: the dial failed.
func neverSent(err error) bool {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true
	}
	var dns *net.DNSError
	return errors.As(err, &dns)
}

// backoff waits exponentially longer with full jitter (so many provisioners do not retry in step),
// or as long as Jenkins asked with Retry-After on 429/503.
func (c *Client) backoff(minWait, maxWait time.Duration, attempt int, resp *http.Response) time.Duration {
	if resp != nil && (resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable) {
		if d, ok := retryAfter(resp); ok {
			return d
		}
	}
	ceiling := maxWait
	if attempt < 30 {
		if e := minWait << uint(attempt); e > 0 && e < maxWait {
			ceiling = e
		}
	}
	if ceiling <= minWait {
		return minWait
	}
	return minWait + rand.N(ceiling-minWait+1)
}

// retryAfter reads a Retry-After header in seconds or as an HTTP date.
func retryAfter(resp *http.Response) (time.Duration, bool) {
	if resp == nil {
		return 0, false
	}
	v := strings.TrimSpace(resp.Header.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := time.Until(t)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}
