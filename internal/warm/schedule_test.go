package warm

import (
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func mustSchedule(t *testing.T, cron, tz string, d time.Duration, idle int) Schedule {
	t.Helper()
	s, err := ParseSchedule(cron, tz, d, idle)
	if err != nil {
		t.Fatalf("ParseSchedule(%q, %q): %v", cron, tz, err)
	}
	return s
}

func TestParseScheduleRefuses(t *testing.T) {
	tests := []struct {
		name, cron, tz string
		d              time.Duration
		idle           int
		field, msg     string // msg: a part of the message that names the cause
	}{
		{"empty cron", "", "", time.Hour, 1, "cron", "required"},
		{"blank cron", "   ", "", time.Hour, 1, "cron", "required"},
		{"minute out of range", "61 * * * *", "", time.Hour, 1, "cron", "above maximum"},
		{"four fields", "0 8 * *", "", time.Hour, 1, "cron", "expected exactly 5 fields"},
		{"six fields (seconds)", "0 0 8 * * 1", "", time.Hour, 1, "cron", "expected exactly 5 fields"},
		{"bad name", "0 8 * * mon-fry", "", time.Hour, 1, "cron", "invalid schedule"},
		{"TZ in cron", "TZ=UTC 0 8 * * *", "", time.Hour, 1, "cron", "use the timezone field"},
		{"CRON_TZ in cron", "CRON_TZ=Europe/Berlin 0 8 * * *", "", time.Hour, 1, "cron", "use the timezone field"},
		{"TZ without space (panics robfig)", "TZ=UTC", "", time.Hour, 1, "cron", "use the timezone field"},
		{"@every", "@every 5m", "", time.Hour, 1, "cron", "@every is not supported"},
		{"unknown descriptor", "@fortnightly", "", time.Hour, 1, "cron", "unrecognized descriptor"},
		{"never fires", "0 0 30 2 *", "", time.Hour, 1, "cron", "never fires"},
		{"too long", "0 8 * * " + strings.Repeat("1,", 200) + "1", "", time.Hour, 1, "cron", "at most 256"},
		{"unknown zone", "0 8 * * *", "Europe/Berlinn", time.Hour, 1, "timezone", `unknown time zone "Europe/Berlinn"`},
		{"Local", "0 8 * * *", "Local", time.Hour, 1, "timezone", `"Local" is not allowed`},
		{"path escape", "0 8 * * *", "../../etc/passwd", time.Hour, 1, "timezone", "unknown time zone"},
		{"leading dash", "0 8 * * *", "-Europe", time.Hour, 1, "timezone", "unknown time zone"},
		{"zero duration", "0 8 * * *", "", 0, 1, "duration", "must be positive"},
		{"negative duration", "0 8 * * *", "", -time.Minute, 1, "duration", "must be positive"},
		{"duration over a year", "0 8 * * *", "", 367 * 24 * time.Hour, 1, "duration", "at most"},
		{"idle zero", "0 8 * * *", "", time.Hour, 0, "idle", "at least 1"},
		{"idle negative", "0 8 * * *", "", time.Hour, -2, "idle", "at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSchedule(tt.cron, tt.tz, tt.d, tt.idle)
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("ParseSchedule = %v, want a *FieldError", err)
			}
			if got, want := fe.Field, tt.field; got != want {
				t.Errorf("field = %q, want %q (error %v)", got, want, err)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q does not say %q", err, tt.msg)
			}
		})
	}
}

func TestParseScheduleAccepts(t *testing.T) {
	tests := []struct {
		name, cron, tz string
		want           Schedule
	}{
		{"five fields, default UTC", "0 8 * * 1-5", "", Schedule{Cron: "0 8 * * 1-5", Timezone: "UTC", Duration: time.Hour, Idle: 3}},
		{"zone", "0 8 * * 1-5", "Europe/Berlin", Schedule{Cron: "0 8 * * 1-5", Timezone: "Europe/Berlin", Duration: time.Hour, Idle: 3}},
		{"names", "30 7 * jan-mar mon,wed", "America/New_York", Schedule{Cron: "30 7 * jan-mar mon,wed", Timezone: "America/New_York", Duration: time.Hour, Idle: 3}},
		{"descriptor", "@daily", "Asia/Tokyo", Schedule{Cron: "@daily", Timezone: "Asia/Tokyo", Duration: time.Hour, Idle: 3}},
		{"29 February", "0 0 29 2 *", "", Schedule{Cron: "0 0 29 2 *", Timezone: "UTC", Duration: time.Hour, Idle: 3}},
		{"legacy zone name with digits", "0 8 * * *", "Etc/GMT+5", Schedule{Cron: "0 8 * * *", Timezone: "Etc/GMT+5", Duration: time.Hour, Idle: 3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSchedule(tt.cron, tt.tz, time.Hour, 3)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseSchedule (-want +got):\n%s", diff)
			}
		})
	}
}

func TestScheduleActive(t *testing.T) {
	// 2026-11-30 is a Monday; Berlin is UTC+1 in winter, UTC+2 in summer. Berlin's clocks go forward
	// on 2026-03-29 at 02:00 (to 03:00) and back on 2026-10-25 at 03:00 (to 02:00).
	tests := []struct {
		name      string
		cron, tz  string
		d         time.Duration
		now       string
		wantStart string // "" = not active
	}{
		{"weekday morning: at the start", "0 8 * * 1-5", "", 10 * time.Hour, "2026-11-30T08:00:00Z", "2026-11-30T08:00:00Z"},
		{"weekday morning: a second before", "0 8 * * 1-5", "", 10 * time.Hour, "2026-11-30T07:59:59Z", ""},
		{"weekday morning: last second", "0 8 * * 1-5", "", 10 * time.Hour, "2026-11-30T17:59:59.999Z", "2026-11-30T08:00:00Z"},
		{"weekday morning: end is exclusive", "0 8 * * 1-5", "", 10 * time.Hour, "2026-11-30T18:00:00Z", ""},
		{"weekday morning: Saturday", "0 8 * * 1-5", "", 10 * time.Hour, "2026-12-05T09:00:00Z", ""},
		{"weekday morning: Friday's window into Saturday", "0 20 * * 5", "", 10 * time.Hour, "2026-12-05T05:00:00Z", "2026-12-04T20:00:00Z"},
		{"Berlin winter: 08:30 CET is 07:30 UTC", "0 8 * * 1-5", "Europe/Berlin", 10 * time.Hour, "2026-12-01T07:30:00Z", "2026-12-01T07:00:00Z"},
		{"Berlin winter: 07:30 UTC is 08:30 only in Berlin", "0 8 * * 1-5", "", 10 * time.Hour, "2026-12-01T07:30:00Z", ""},
		{"Berlin summer: 08:30 CEST is 06:30 UTC", "0 8 * * 1-5", "Europe/Berlin", 10 * time.Hour, "2026-07-01T06:30:00Z", "2026-07-01T06:00:00Z"},
		{"Berlin summer: ends 18:00 CEST", "0 8 * * 1-5", "Europe/Berlin", 10 * time.Hour, "2026-07-01T16:00:00Z", ""},
		{"overlapping starts: the latest one", "0 * * * *", "", 90 * time.Minute, "2026-11-30T10:30:00Z", "2026-11-30T10:00:00Z"},
		{"window longer than the period", "*/5 * * * *", "", time.Hour, "2026-11-30T10:07:30Z", "2026-11-30T10:05:00Z"},
		{"Kolkata half-hour offset", "0 9 * * *", "Asia/Kolkata", time.Hour, "2026-11-30T03:45:00Z", "2026-11-30T03:30:00Z"},
		{"descriptor in Tokyo, all day", "@daily", "Asia/Tokyo", 24 * time.Hour, "2026-11-30T14:59:00Z", "2026-11-29T15:00:00Z"},
		{"yearly, long window", "@yearly", "", 200 * 24 * time.Hour, "2026-06-15T12:00:00Z", "2026-01-01T00:00:00Z"},
		{"yearly, outside the window", "@yearly", "", 100 * 24 * time.Hour, "2026-06-15T12:00:00Z", ""},
		{"29 February", "0 0 29 2 *", "", 24 * time.Hour, "2028-02-29T12:00:00Z", "2028-02-29T00:00:00Z"},
		{"DST forward: 02:30 does not exist, no start that day", "30 2 * * *", "Europe/Berlin", time.Hour, "2026-03-29T01:45:00Z", ""},
		{"DST forward: the day after, as usual", "30 2 * * *", "Europe/Berlin", time.Hour, "2026-03-30T00:40:00Z", "2026-03-30T00:30:00Z"},
		{"DST forward: duration is elapsed time, 01:00 CET + 3h ends 05:00 CEST", "0 1 * * *", "Europe/Berlin", 3 * time.Hour, "2026-03-29T02:59:59Z", "2026-03-29T00:00:00Z"},
		{"DST forward: and not later", "0 1 * * *", "Europe/Berlin", 3 * time.Hour, "2026-03-29T03:00:00Z", ""},
		{"DST back: first 02:30 (CEST)", "30 2 * * *", "Europe/Berlin", 30 * time.Minute, "2026-10-25T00:40:00Z", "2026-10-25T00:30:00Z"},
		{"DST back: between the two 02:30s", "30 2 * * *", "Europe/Berlin", 30 * time.Minute, "2026-10-25T01:10:00Z", ""},
		{"DST back: second 02:30 (CET)", "30 2 * * *", "Europe/Berlin", 30 * time.Minute, "2026-10-25T01:40:00Z", "2026-10-25T01:30:00Z"},
		{"DST back: New York", "0 1 * * *", "America/New_York", 90 * time.Minute, "2026-11-01T06:15:00Z", "2026-11-01T06:00:00Z"},
		{"Lord Howe: half-hour DST", "0 8 * * *", "Australia/Lord_Howe", time.Hour, "2026-12-01T21:15:00Z", "2026-12-01T21:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := mustSchedule(t, tt.cron, tt.tz, tt.d, 1)
			gotStart, gotOK := s.Active(mustTime(t, tt.now))
			var want struct {
				Start time.Time
				OK    bool
			}
			if tt.wantStart != "" {
				want.Start, want.OK = mustTime(t, tt.wantStart), true
			}
			got := struct {
				Start time.Time
				OK    bool
			}{gotStart.UTC(), gotOK}
			if !gotOK {
				got.Start = time.Time{}
			}
			if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b time.Time) bool { return a.Equal(b) })); diff != "" {
				t.Errorf("Active(%s) (-want +got):\n%s", tt.now, diff)
			}
		})
	}
}

func TestScheduleZeroNeverActive(t *testing.T) {
	if _, ok := (Schedule{Cron: "* * * * *", Duration: time.Hour, Idle: 1}).Active(time.Now()); ok {
		t.Error("a Schedule not made by ParseSchedule is active")
	}
}

// TestScheduleActiveMatchesStepping checks the bisection against the obvious search, stepping
// through every start with the cron library's Next, at random instants around DST changes in zones
// with unusual rules.
func TestScheduleActiveMatchesStepping(t *testing.T) {
	crons := []string{"0 8 * * 1-5", "30 2 * * *", "*/7 1-3 * * *", "15 0,1,2,3 * * 0", "0 0 1 * *", "45 23 * * *", "@hourly"}
	zones := []string{"UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/Santiago", "Asia/Tehran", "Pacific/Chatham"}
	durations := []time.Duration{time.Minute, 29 * time.Minute, 90 * time.Minute, 10 * time.Hour, 50 * time.Hour}
	// Instants near DST changes of 2026 in the zones above, and a quiet one.
	centres := []string{"2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z", "2026-03-08T07:00:00Z", "2026-11-01T06:00:00Z",
		"2026-04-04T15:00:00Z", "2026-10-03T16:00:00Z", "2026-04-05T03:00:00Z", "2026-09-06T04:00:00Z", "2026-06-15T12:00:00Z"}
	rng := rand.New(rand.NewPCG(13, 13))
	for _, c := range crons {
		for _, z := range zones {
			for _, d := range durations {
				s := mustSchedule(t, c, z, d, 1)
				for _, centre := range centres {
					base := mustTime(t, centre)
					for range 8 {
						now := base.Add(time.Duration(rng.Int64N(int64(72*time.Hour))) - 36*time.Hour).Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
						var want time.Time
						for n := s.parsed.Next(now.Add(-d)); !n.IsZero() && !n.After(now); n = s.parsed.Next(n) {
							want = n
						}
						got, ok := s.Active(now)
						if ok != !want.IsZero() || (ok && !got.Equal(want)) {
							t.Errorf("%q in %s for %s at %s: Active = %s %v, stepping found %s", c, z, d, now.UTC(), got.UTC(), ok, want.UTC())
						}
					}
				}
			}
		}
	}
}
