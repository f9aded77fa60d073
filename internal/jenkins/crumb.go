package jenkins

import (
	"context"
	"errors"
	"fmt"
	"net/http"
)

// The CSRF crumb (hudson.security.csrf.CrumbIssuer, /crumbIssuer/api/json): fetched once, sent with
// every POST, fetched again when Jenkins refuses it.

// crumb is a CrumbIssuer answer.
type crumb struct {
	field, value string // field "" means Jenkins issues no crumbs (CSRF protection off)
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
