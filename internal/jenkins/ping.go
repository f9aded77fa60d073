package jenkins

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/bndr/gojenkins"
	"github.com/hashicorp/go-retryablehttp"
)

// Ping checks, once at start, that Jenkins answers and accepts the credentials, and returns its
// version (X-Jenkins). It goes through gojenkins' Jenkins.Init, with this client's retrying
// transport under it. It reads the root /api/json, whose size grows with the number of top-level
// jobs: call it at start, not per poll.
func (c *Client) Ping(ctx context.Context) (string, error) {
	hc := &http.Client{
		Transport: &gojenkinsTransport{c: c},
		// gojenkins would follow a redirect to a login page and try to decode it as JSON.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	// No credentials are handed to gojenkins: the transport under it adds them, as for every request.
	j, err := gojenkins.CreateJenkins(hc, c.base.String()).Init(ctx)
	if err != nil {
		// The transport's typed error arrives wrapped in a *url.Error; unwrap it to its text.
		var he *HTTPError
		if errors.As(err, &he) {
			return "", fmt.Errorf("jenkins: ping: %w", he)
		}
		return "", fmt.Errorf("jenkins: ping: %w", err)
	}
	return j.Version, nil
}

// gojenkinsTransport adapts the client's request path for gojenkins: retries, headers and metrics as
// for every request, and any answer gojenkins would mis-read (an error status, an HTML page, a
// redirect) becomes a typed error before it reaches gojenkins' JSON decoder, which decodes every
// body whatever its status and reports an HTML page as "invalid character '<'".
type gojenkinsTransport struct{ c *Client }

func (t *gojenkinsTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	cl := call{method: req.Method, endpoint: "ping", path: strings.TrimPrefix(req.URL.RequestURI(), "/")}
	if base := t.c.base.EscapedPath(); strings.HasPrefix(req.URL.EscapedPath(), base) {
		cl.path = strings.TrimPrefix(req.URL.RequestURI(), base)
	}
	info := &callInfo{endpoint: cl.endpoint, idempotent: req.Method == http.MethodGet}
	rreq, err := retryablehttp.FromRequest(req.WithContext(contextWith(req.Context(), info)))
	if err != nil {
		return nil, err
	}
	resp, err := t.c.rc.Do(rreq)
	res, ferr := t.c.finish(req.Context(), cl, resp, err)
	if ferr != nil {
		return nil, ferr
	}
	if req.Method == http.MethodGet && isHTML(res.header.Get("Content-Type"), res.body) {
		title, msg := describeBody(res.header.Get("Content-Type"), res.body)
		return nil, &HTTPError{Method: req.Method, Endpoint: cl.endpoint, Path: displayPath(cl.path), Status: res.status,
			Title: title, Message: "expected JSON, got an HTML page: " + msg, kind: ErrUnexpectedResponse}
	}
	return &http.Response{
		Status:        resp.Status,
		StatusCode:    res.status,
		Header:        res.header,
		Body:          readCloser(res.body),
		ContentLength: int64(len(res.body)),
		Request:       req,
		Proto:         resp.Proto,
		ProtoMajor:    resp.ProtoMajor,
		ProtoMinor:    resp.ProtoMinor,
	}, nil
}

func readCloser(b []byte) io.ReadCloser { return io.NopCloser(bytes.NewReader(b)) }

func contextWith(ctx context.Context, info *callInfo) context.Context {
	return context.WithValue(ctx, callKey{}, info)
}
