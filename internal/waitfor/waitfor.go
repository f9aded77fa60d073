// Package waitfor holds the two waits the tests, the demo and the test rigs share: a sleep that
// ends with its context, and a test's poll until a condition holds. One copy of each, so a fix to
// either (a timer left running, a condition never checked a last time) is made once.
//
// It imports neither testing nor any package of this module, so every package can use it,
// including the test rigs that are not test files (internal/nodesim, test/harness).
package waitfor

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// Duration waits d or until ctx ends, and says whether the whole wait passed.
func Duration(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// T is the part of testing.TB that Eventually needs.
type T interface {
	Helper()
	Fatalf(format string, args ...any)
}

// Eventually checks cond at once and then every interval until it holds; if timeout passes first,
// the test fails, naming what it waited for and what cond last saw.
func Eventually(t T, timeout, interval time.Duration, what string, cond func() (done bool, seen string)) {
	t.Helper()
	var last string
	err := wait.PollUntilContextTimeout(context.Background(), interval, timeout, true, func(context.Context) (bool, error) {
		done, seen := cond()
		last = seen
		return done, nil
	})
	if err != nil {
		t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, last)
	}
}
