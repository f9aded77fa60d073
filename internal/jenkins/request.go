package jenkins

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/hashicorp/go-retryablehttp"
	"go.uber.org/zap"
)

// One request to Jenkins and what its answer means: the call and its attempt, and the answer
// classified (a login redirect, a crumb refused, an HTML page where a document was expected, a
// status), within its size bounds.

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
