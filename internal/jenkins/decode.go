package jenkins

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Reading a JSON answer: a GET of an API path, decoded within maxBody, with an answer that is not
// JSON named for what it is.

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
