package labelexpr

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// chain is "a&&a&&...&&a" of about n bytes: a left-deep tree as deep as it has operators.
func chain(n int) string {
	return strings.TrimSuffix(strings.Repeat("a&&", n/3), "&&")
}

func nested(depth int) string {
	return strings.Repeat("(", depth) + "a" + strings.Repeat(")", depth)
}

// TestParseBounds: hostile sizes get an error naming the bound (before the bounds, 1 MB of "("
// ended the process with "fatal error: stack overflow"), and sizes up to the bounds parse.
func TestParseBounds(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want error // nil: parses
	}{
		{"1 MB of (", strings.Repeat("(", 1<<20), ErrTooLong},
		{"just too long", strings.Repeat("a", MaxLength+1), ErrTooLong},
		{"longest atom", strings.Repeat("a", MaxLength), nil},
		{"longest chain", chain(MaxLength), nil},
		{"deepest nesting", nested(MaxDepth), nil},
		{"one level too deep", nested(MaxDepth + 1), ErrTooDeep},
		{"too deep, unclosed", strings.Repeat("(", 5000), ErrTooDeep},
		{"too deep under !", strings.Repeat("!(", MaxDepth+1) + "a" + strings.Repeat(")", MaxDepth+1), ErrTooDeep},
		{"normal form too long", strings.Repeat(`\`, MaxLength), ErrTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := Parse(tt.in)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if _, err := Parse(e.String()); err != nil {
					t.Fatalf("String() does not parse back: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Parse error = %v, want %v", err, tt.want)
			}
			var perr *Error
			if !errors.As(err, &perr) {
				t.Fatalf("error %T is not *Error", err)
			}
			// The message quotes an excerpt, not the megabyte.
			if n := len(err.Error()); n > 400 {
				t.Errorf("error message is %d bytes: %.200s...", n, err.Error())
			}
		})
	}
}

func TestErrorExcerpt(t *testing.T) {
	long := strings.Repeat("a&&", 100) + "(b" // column 303: unclosed
	_, err := Parse(long)
	want := "label expression (302 bytes) …" + fmt.Sprintf("%q", long[302-maxQuoted/2:]) + `: column 303: unexpected end of expression, want ")" to close the "(" at column 301`
	if diff := cmp.Diff(want, err.Error()); diff != "" {
		t.Errorf("error mismatch (-want +got):\n%s", diff)
	}
}

// bytesAllocated is what f allocates, from the runtime's own count.
func bytesAllocated(f func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	f()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestLinearCost: parsing and printing the longest allowed chain allocate a small multiple of its
// length. Printing by concatenation, as before, copied every prefix: ~45 MB for these 16 KiB (and
// 157 s of CPU for a 1 MB why), where a builder needs a few times the text.
func TestLinearCost(t *testing.T) {
	in := chain(MaxLength)
	var e Expr
	parse := bytesAllocated(func() {
		var err error
		if e, err = Parse(in); err != nil {
			t.Fatal(err)
		}
	})
	print := bytesAllocated(func() { _ = e.String() })
	// Two tokens and three tree nodes per 3 bytes of input, some 100 bytes each with slice growth.
	if limit := uint64(200 * len(in)); parse > limit {
		t.Errorf("Parse of %d bytes allocated %d bytes, want at most %d", len(in), parse, limit)
	}
	if limit := uint64(8 * len(in)); print > limit {
		t.Errorf("String() of %d bytes allocated %d bytes, want at most %d", len(in), print, limit)
	}
}

func TestCache(t *testing.T) {
	c := NewCache(2)
	for _, s := range []string{"a", "b&&c", "((", "d", "a"} {
		got, gotErr := c.Parse(s)
		want, wantErr := Parse(s)
		if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
			t.Fatalf("Cache.Parse(%q) error = %v, want %v", s, gotErr, wantErr)
		}
		if want != nil && got.String() != want.String() {
			t.Fatalf("Cache.Parse(%q) = %s, want %s", s, got, want)
		}
	}
	if n := c.Len(); n > 4 {
		t.Errorf("Len() = %d, want at most twice the size 2", n)
	}
	// A text in the cache is not parsed again: a hit allocates nothing.
	c.Parse("linux && docker")
	if n := testing.AllocsPerRun(100, func() { _, _ = c.Parse("linux && docker") }); n != 0 {
		t.Errorf("cached Parse allocates %v times, want 0", n)
	}
	// Too long: refused, not kept.
	if _, err := c.Parse(strings.Repeat("(", MaxLength+1)); !errors.Is(err, ErrTooLong) {
		t.Errorf("Cache.Parse(too long) error = %v, want ErrTooLong", err)
	}
}

func BenchmarkParseString(b *testing.B) {
	for _, n := range []int{1 << 10, MaxLength} {
		in := chain(n)
		b.Run(fmt.Sprintf("%dB", len(in)), func(b *testing.B) {
			for b.Loop() {
				e, err := Parse(in)
				if err != nil {
					b.Fatal(err)
				}
				_ = e.String()
			}
		})
	}
}
