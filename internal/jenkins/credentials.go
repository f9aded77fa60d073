package jenkins

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"
)

// maxTokenFile bounds the token file: an API token is 34 characters, a password rarely 100.
const maxTokenFile = 4 << 10

// credentials is the secret the client authenticates with. From a file (a mounted Secret) it is
// re-read whenever the file changes, so a rotated token takes effect without a restart. The kubelet
// updates a Secret volume by writing a new directory and swapping the ..data symlink, so "changed"
// is decided on the file the path resolves to (another inode, size or modification time), not on
// the path. After a 401 the file is read again whatever its stamp, in case the change was missed.
type credentials struct {
	user string
	file string // "" for a secret given in the Config
	log  *zap.Logger

	mu     sync.Mutex
	secret string
	stamp  os.FileInfo // of the file as last read; nil before the first read

	unauthorized atomic.Int64 // consecutive 401 answers
}

func newCredentials(user, secret, file string, log *zap.Logger) (*credentials, error) {
	cr := &credentials{user: user, secret: secret, file: file, log: log}
	if file != "" {
		if err := cr.load(true); err != nil {
			return nil, err
		}
	}
	return cr, nil
}

// current is the secret to send now, re-read first if the file changed. A file that cannot be read
// (mid-swap, say) keeps the last good secret: the next request looks again.
func (cr *credentials) current() string {
	if cr.file != "" {
		if err := cr.load(false); err != nil {
			cr.log.Warn("re-read token file; keeping the last token", zap.String("file", cr.file), zap.Error(err))
		}
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.secret
}

// load reads the file when force is set or its stamp differs from the last read's.
func (cr *credentials) load(force bool) error {
	fi, err := os.Stat(cr.file)
	if err != nil {
		return fmt.Errorf("jenkins: token file: %w", err)
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if !force && cr.stamp != nil && os.SameFile(cr.stamp, fi) && cr.stamp.ModTime().Equal(fi.ModTime()) && cr.stamp.Size() == fi.Size() {
		return nil
	}
	if fi.Size() > maxTokenFile {
		return fmt.Errorf("jenkins: token file %s: %d bytes, more than a token can be", cr.file, fi.Size())
	}
	b, err := os.ReadFile(cr.file)
	if err != nil {
		return fmt.Errorf("jenkins: token file: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return fmt.Errorf("jenkins: token file %s is empty", cr.file)
	}
	if cr.stamp != nil && secret != cr.secret {
		cr.log.Info("token file changed; using the new token", zap.String("file", cr.file))
	}
	cr.secret, cr.stamp = secret, fi
	return nil
}

// reloadAfter401 re-reads the file after Jenkins refused the secret and reports whether the secret
// is now another one (worth one more try).
func (cr *credentials) reloadAfter401(sent string) bool {
	if cr.file == "" {
		return false
	}
	if err := cr.load(true); err != nil {
		cr.log.Warn("re-read token file after 401", zap.String("file", cr.file), zap.Error(err))
		return false
	}
	cr.mu.Lock()
	defer cr.mu.Unlock()
	return cr.secret != sent
}

// observe counts consecutive 401s: any other answer ends a run of them.
func (cr *credentials) observe(status int) {
	switch {
	case status == http.StatusUnauthorized:
		cr.unauthorized.Add(1)
	case status != 0:
		cr.unauthorized.Store(0)
	}
}

// redactions are the byte strings an echoed request would show of our credentials.
func (cr *credentials) redactions() [][]byte {
	cr.mu.Lock()
	defer cr.mu.Unlock()
	if cr.secret == "" {
		return nil
	}
	return [][]byte{
		[]byte(base64.StdEncoding.EncodeToString([]byte(cr.user + ":" + cr.secret))),
		[]byte(cr.secret),
	}
}

// ConsecutiveUnauthorized is the number of 401 answers in a row (0 after any other answer). A
// leader seeing it grow past a few should give up its Lease: a standby may hold a good token.
func (c *Client) ConsecutiveUnauthorized() int { return int(c.creds.unauthorized.Load()) }

// redact replaces our credentials in a (bounded) answer body: the secret, the Basic header value,
// the crumb and session cookies.
func (c *Client) redact(data []byte) []byte {
	secrets := c.creds.redactions()
	c.crumbMu.Lock()
	if c.crumb != nil && c.crumb.value != "" {
		secrets = append(secrets, []byte(c.crumb.value))
	}
	c.crumbMu.Unlock()
	if c.jar != nil {
		for _, ck := range c.jar.Cookies(c.base) {
			if len(ck.Value) >= 8 {
				secrets = append(secrets, []byte(ck.Value))
			}
		}
	}
	for _, s := range secrets {
		// A secret of a few characters would blank out ordinary words; its Basic value (always
		// long) is still redacted.
		if len(s) >= minRedacted && bytes.Contains(data, s) {
			data = bytes.ReplaceAll(data, s, []byte("[redacted]"))
		}
	}
	return data
}

const minRedacted = 4

var errTokenAndFile = errors.New("jenkins: set Token or TokenFile, not both")
