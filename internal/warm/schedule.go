package warm

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	_ "time/tzdata" // every IANA zone even in an image without /usr/share/zoneinfo

	"github.com/robfig/cron/v3"
)

// MaxScheduleDuration bounds a schedule's duration: a window longer than a year is a mistake, and the
// bound keeps Active's search short.
const MaxScheduleDuration = 366 * 24 * time.Hour

// maxCronLength bounds the cron text; real ones are a few dozen characters.
const maxCronLength = 256

// Schedule keeps Idle ready agents from each start of Cron (in Timezone) for Duration. Make one with
// ParseSchedule; the zero Schedule is never active.
type Schedule struct {
	Cron     string        // as written: five fields or a descriptor such as @daily
	Timezone string        // IANA name; "UTC" when the template leaves it out
	Duration time.Duration // how long each start lasts
	Idle     int           // ready agents kept while active

	parsed cron.Schedule
}

// Equal compares what was written; the parsed form follows from it. go-cmp uses this method.
func (s Schedule) Equal(o Schedule) bool {
	return s.Cron == o.Cron && s.Timezone == o.Timezone && s.Duration == o.Duration && s.Idle == o.Idle
}

// String is "0 8 * * 1-5 Europe/Berlin for 10h0m0s: 6".
func (s Schedule) String() string {
	return fmt.Sprintf("%s %s for %s: %d", s.Cron, s.Timezone, s.Duration, s.Idle)
}

// FieldError is a problem with one field of a schedule: "cron", "timezone", "duration" or "idle".
type FieldError struct {
	Field string
	Err   error
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *FieldError) Unwrap() error { return e.Err }

// ParseSchedule checks and parses one schedule. The cron text is read exactly as the Kubernetes
// CronJob controller reads spec.schedule: cron.ParseStandard (robfig/cron v3, five fields, or a
// descriptor) of "TZ=<timezone> <cron>", which is what formatSchedule in
// pkg/controller/cronjob/cronjob_controllerv2.go builds when spec.timeZone is set. As the CronJob
// API validation does for new objects (validateScheduleFormat in pkg/apis/batch/validation), TZ= or
// CRON_TZ= inside the cron text is refused in favour of the timezone field. Unlike CronJob, "@every"
// is refused: its starts depend on when the controller happened to start, not on the clock, so a
// restart would move them. timezone "" means UTC.
func ParseSchedule(cronText, timezone string, duration time.Duration, idle int) (Schedule, error) {
	if timezone == "" {
		timezone = "UTC"
	}
	s := Schedule{Cron: cronText, Timezone: timezone, Duration: duration, Idle: idle}
	if err := checkTimezone(timezone); err != nil {
		return s, &FieldError{Field: "timezone", Err: err}
	}
	parsed, err := parseCron(cronText, timezone)
	if err != nil {
		return s, &FieldError{Field: "cron", Err: err}
	}
	switch {
	case duration <= 0:
		return s, &FieldError{Field: "duration", Err: fmt.Errorf("must be positive, got %s", duration)}
	case duration > MaxScheduleDuration:
		return s, &FieldError{Field: "duration", Err: fmt.Errorf("at most %s, got %s", MaxScheduleDuration, duration)}
	case idle < 1:
		return s, &FieldError{Field: "idle", Err: fmt.Errorf("must be at least 1 (a schedule keeping 0 ready agents does nothing), got %d", idle)}
	}
	s.parsed = parsed
	return s, nil
}

// validTimeZoneCharacters is the CronJob API validation's rule for one part of a zone name
// (validateTimeZone, after https://data.iana.org/time-zones/theory.html#naming).
var validTimeZoneCharacters = regexp.MustCompile(`^[A-Za-z\.\-_0-9+]{1,14}$`)

// checkTimezone follows the CronJob API's validateTimeZone: an explicit IANA name, never "Local"
// (the provisioner's own zone would make the schedule depend on where it runs).
func checkTimezone(name string) error {
	if strings.EqualFold(name, "Local") {
		return errors.New(`"Local" is not allowed: name an IANA time zone such as Europe/Berlin`)
	}
	for _, part := range strings.Split(name, "/") {
		if part == "." || part == ".." || strings.HasPrefix(part, "-") || !validTimeZoneCharacters.MatchString(part) {
			return fmt.Errorf("unknown time zone %q", name)
		}
	}
	if _, err := time.LoadLocation(name); err != nil {
		return fmt.Errorf("unknown time zone %q", name)
	}
	return nil
}

func parseCron(text, timezone string) (sched cron.Schedule, err error) {
	trimmed := strings.TrimSpace(text)
	switch {
	case trimmed == "":
		return nil, errors.New("required: five fields (minute hour day-of-month month day-of-week) or a descriptor such as @daily")
	case len(text) > maxCronLength:
		return nil, fmt.Errorf("%d characters, at most %d", len(text), maxCronLength)
	case strings.Contains(text, "TZ"):
		return nil, errors.New("cannot use TZ or CRON_TZ in the schedule, use the timezone field instead")
	case strings.HasPrefix(trimmed, "@every"):
		return nil, errors.New("@every is not supported: its starts would depend on when the provisioner started; write five fields")
	}
	defer func() {
		// robfig/cron v3.0.1 indexes without checking on some malformed input; a template must
		// never take the provisioner down.
		if r := recover(); r != nil {
			sched, err = nil, fmt.Errorf("invalid schedule %q", text)
		}
	}()
	sched, err = cron.ParseStandard("TZ=" + timezone + " " + trimmed)
	if err != nil {
		return nil, fmt.Errorf("invalid schedule %q: %v", text, err)
	}
	// A schedule such as "0 0 30 2 *" parses but never fires; cron.Next looks five years ahead,
	// and every valid five-field schedule fires within four (29 February).
	if sched.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("schedule %q never fires (no such date)", text)
	}
	return sched, nil
}

// Active reports whether a start s of the schedule has s <= now < s+Duration, and the latest such
// start. Starts are found with the cron library's own Next, so daylight saving time behaves as in a
// CronJob: on the day clocks go forward a start inside the skipped hour does not happen, on the day
// they go back a start inside the repeated hour happens twice (both times a window opens).
//
// The search is bounded: the latest start in (now-Duration, now] is found by bisecting the seconds
// of that interval on "Next(t) <= now", about log2(Duration in seconds) calls of Next (at most 25
// for a year). The Kubernetes CronJob controller's mostRecentScheduleTime instead estimates the
// count of missed starts from the gap between the first two; that is exact only for evenly spaced
// schedules, and "0 8 * * 1-5" is not one.
func (s Schedule) Active(now time.Time) (start time.Time, ok bool) {
	if s.parsed == nil || s.Duration <= 0 {
		return time.Time{}, false
	}
	startsBy := func(t time.Time) (time.Time, bool) {
		n := s.parsed.Next(t)
		return n, !n.IsZero() && !n.After(now)
	}
	lo := now.Add(-s.Duration) // Next(lo) is the first start after lo: in the window if <= now
	first, ok := startsBy(lo)
	if !ok {
		return time.Time{}, false
	}
	// Invariant: Next(lo) <= now. Find the last whole second t in [lo, now) with Next(t) <= now;
	// Next(t) is then the latest start <= now, because Next is monotonic in t.
	best := first
	// Next(t) is a whole second after t, so Next(floor(now)) > now: the upper end never qualifies.
	loSec, hiSec := lo.Unix(), now.Unix()
	for loSec+1 < hiSec {
		mid := loSec + (hiSec-loSec)/2
		if n, ok := startsBy(time.Unix(mid, 0)); ok {
			loSec, best = mid, n
		} else {
			hiSec = mid
		}
	}
	return best.In(now.Location()), true
}
