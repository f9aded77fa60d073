package nodesim

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestReconnectDelay(t *testing.T) {
	var ws, tcp []time.Duration
	for attempt := range 7 {
		ws = append(ws, reconnectDelay(true, attempt))
		tcp = append(tcp, reconnectDelay(false, attempt))
	}
	s := time.Second
	if diff := cmp.Diff([]time.Duration{0, s, 3 * s, 7 * s, 10 * s, 10 * s, 10 * s}, ws); diff != "" {
		t.Errorf("WebSocket back-off (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]time.Duration{10 * s, 10 * s, 10 * s, 10 * s, 10 * s, 10 * s, 10 * s}, tcp); diff != "" {
		t.Errorf("TCP waits (-want +got):\n%s", diff)
	}
}

func TestParseRemotingDuration(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"10m", 10 * time.Minute, ""},
		{"30s", 30 * time.Second, ""},
		{"500", 500 * time.Millisecond, ""}, // no unit: DurationStyle's default, milliseconds
		{"2H", 2 * time.Hour, ""},           // suffixes are case-insensitive
		{"1d", 24 * time.Hour, ""},
		{"250us", 250 * time.Microsecond, ""},
		{"-5s", -5 * time.Second, ""},
		{"PT5M", 5 * time.Minute, ""},
		{"pt1.5s", 1500 * time.Millisecond, ""},
		{"P1DT2H", 26 * time.Hour, ""},
		{"-PT10S", -10 * time.Second, ""},
		{"5w", 0, "unknown unit 'w'"},
		{"5 m", 0, "not a valid duration"},
		{"P", 0, "not a valid ISO-8601 duration"},
		{"PT", 0, "not a valid ISO-8601 duration"},
		{"P5X", 0, "not a valid ISO-8601 duration"},
		{"99999999999999999999s", 0, "out of range"},
		{"", 0, "not a valid duration"},
	} {
		got, err := parseRemotingDuration(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseRemotingDuration(%q) = %v, %v; want an error with %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("parseRemotingDuration(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

func FuzzParseRemotingDuration(f *testing.F) {
	for _, s := range []string{"10m", "500", "PT5M", "P1DT2H", "-PT1.5S", "5w", "P", "9223372036854775807ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseRemotingDuration(s)
		if err != nil {
			if !strings.Contains(err.Error(), "'"+s+"'") {
				t.Errorf("error %q does not name the value %q", err, s)
			}
			if d != 0 {
				t.Errorf("error with a duration %v", d)
			}
			return
		}
		if len(s) > 0 && s[0] != '-' && d < 0 {
			t.Errorf("parseRemotingDuration(%q) = %v: negative without a minus", s, d)
		}
	})
}
