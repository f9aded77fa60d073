package waitfor

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDuration(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		d    time.Duration
		want bool
	}{
		{"the wait passes", context.Background(), time.Millisecond, true},
		{"the context ended first", cancelled, time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Duration(tt.ctx, tt.d); got != tt.want {
				t.Errorf("Duration(%s) = %v, want %v", tt.d, got, tt.want)
			}
		})
	}
}

// recorder is a T that records instead of failing the test that uses it.
type recorder struct{ fatal []string }

func (r *recorder) Helper() {}
func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = append(r.fatal, fmt.Sprintf(format, args...))
}

func TestEventually(t *testing.T) {
	tests := []struct {
		name      string
		holdsFrom int // the check from which cond holds; 0: never
		wantFatal bool
	}{
		{"holds at once", 1, false},
		{"holds on the third check", 3, false},
		{"never holds", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &recorder{}
			calls := 0
			Eventually(r, 50*time.Millisecond, 10*time.Millisecond, "the thing", func() (bool, string) {
				calls++
				if tt.holdsFrom > 0 && calls >= tt.holdsFrom {
					return true, ""
				}
				return false, fmt.Sprintf("check %d", calls)
			})
			// The failure names cond's last word: from the last check, however many a loaded
			// machine fitted into the timeout.
			var wantFatal []string
			if tt.wantFatal {
				wantFatal = []string{fmt.Sprintf("timed out after 50ms waiting for the thing; last seen: check %d", calls)}
			}
			if diff := cmp.Diff(wantFatal, r.fatal); diff != "" {
				t.Errorf("failures (-want +got):\n%s", diff)
			}
			if tt.holdsFrom > 0 && calls != tt.holdsFrom {
				t.Errorf("cond checked %d times, want %d: Eventually must stop once it holds", calls, tt.holdsFrom)
			}
		})
	}
}
