package warm

import (
	"errors"
	"testing"
	"time"
)

// FuzzParseSchedule feeds arbitrary cron text and zone names: ParseSchedule never panics, refuses
// with a FieldError naming a field, and a schedule it accepts gives Active results that keep their
// promise (start <= now < start+duration).
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []struct{ cron, tz string }{
		{"0 8 * * 1-5", "Europe/Berlin"}, {"*/5 * * * *", ""}, {"@daily", "Asia/Tokyo"}, {"0 0 29 2 *", "UTC"},
		{"TZ=UTC", ""}, {"CRON_TZ=Europe/Berlin 0 8 * * *", ""}, {"@every 1h", ""}, {"0 0 30 2 *", ""},
		{"61 * * * *", ""}, {"0-", ""}, {"*/0 * * * *", ""}, {"1-0 * * * *", ""}, {"0 8 * * mon-fri", "America/New_York"},
		{"0 8 * * *", "../x"}, {"0 8 * * *", "Local"}, {"? ? ? ? ?", ""}, {"0 0 L * *", ""},
	} {
		f.Add(s.cron, s.tz, int64(time.Hour), 2, int64(1764583200))
	}
	f.Fuzz(func(t *testing.T, cronText, tz string, dur int64, idle int, nowSec int64) {
		s, err := ParseSchedule(cronText, tz, time.Duration(dur), idle)
		if err != nil {
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a *FieldError", err)
			}
			switch fe.Field {
			case "cron", "timezone", "duration", "idle":
			default:
				t.Fatalf("error names field %q", fe.Field)
			}
			return
		}
		// Keep now within years the cron library searches sensibly.
		now := time.Unix(1_700_000_000+nowSec%(50*365*24*3600), 0)
		start, ok := s.Active(now)
		if ok && (start.After(now) || !now.Before(start.Add(s.Duration))) {
			t.Fatalf("Active(%s) = %s: not a start whose window holds now (duration %s)", now, start, s.Duration)
		}
	})
}
