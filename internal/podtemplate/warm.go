package podtemplate

import (
	"errors"
	"fmt"

	"github.com/jenkins-agent-provisioner/provisioner/internal/warm"
)

// maxWarmSchedules bounds a warm block's schedule list; a real one has a handful.
const maxWarmSchedules = 50

// warmSpecIn is a template's warm block as written. A child template that sets warm replaces its
// parents' block as a whole (each field's default depends on the others, so a merged block would
// be hard to read); one that leaves it out inherits it. `warm: {}` switches it off in a child.
type warmSpecIn struct {
	Idle        *int             `json:"idle"`
	MaxIdle     *int             `json:"maxIdle"`
	MaxIdleTime *Duration        `json:"maxIdleTime"`
	Schedules   []warmScheduleIn `json:"schedules"`
	Adaptive    *bool            `json:"adaptive"`
}

type warmScheduleIn struct {
	Cron     *string   `json:"cron"`
	Timezone *string   `json:"timezone"`
	Duration *Duration `json:"duration"`
	Idle     *int      `json:"idle"`
}

// finishWarm applies the warm block's defaults and validates it. Counts above the bounds are not
// errors: maxIdle is the bound "from every source" (warm.Desired takes the minimum) and maxAgents
// bounds every live agent (warm.Fit), so such a block works as written and WarmWarnings says what
// the bounds cut.
// The result is nil when the block wants no ready agent at all (no block, or nothing in it), so
// that nil means exactly the behaviour without warm.
func finishWarm(r *rawTemplate, in *warmSpecIn, maxAgents int) (*warm.Spec, []*fieldError) {
	if in == nil {
		return nil, nil
	}
	var errs []*fieldError
	errorf := func(sub, format string, args ...any) {
		errs = append(errs, warmErrorf(r, sub, format, args...))
	}
	s := &warm.Spec{MaxIdle: maxAgents, MaxIdleTime: warm.DefaultMaxIdleTime}
	if in.MaxIdle != nil {
		s.MaxIdle = *in.MaxIdle
		if s.MaxIdle < 1 {
			errorf("maxIdle", "must be at least 1, got %d (leave warm out to keep no ready agents)", s.MaxIdle)
		}
	}
	if in.Idle != nil {
		s.Idle = *in.Idle
		if s.Idle < 0 {
			errorf("idle", "must be at least 0, got %d", s.Idle)
		}
	}
	if in.MaxIdleTime != nil {
		s.MaxIdleTime = in.MaxIdleTime.Duration
		if s.MaxIdleTime <= 0 {
			errorf("maxIdleTime", "must be positive, got %s", s.MaxIdleTime)
		}
	}
	if in.Adaptive != nil {
		s.Adaptive = *in.Adaptive
	}
	if len(in.Schedules) > maxWarmSchedules {
		errorf("schedules", "%d schedules, at most %d", len(in.Schedules), maxWarmSchedules)
		return nil, errs
	}
	for i, sc := range in.Schedules {
		sub := fmt.Sprintf("schedules[%d]", i)
		var missing bool
		for _, f := range []struct {
			name string
			set  bool
			what string
		}{
			{"cron", sc.Cron != nil, `a five-field cron schedule such as "0 8 * * 1-5"`},
			{"duration", sc.Duration != nil, `how long each start lasts, such as "10h"`},
			{"idle", sc.Idle != nil, "the ready agents kept while it lasts"},
		} {
			if !f.set {
				errorf(sub+"."+f.name, "required: %s", f.what)
				missing = true
			}
		}
		if sc.Timezone != nil && *sc.Timezone == "" {
			errorf(sub+".timezone", "must not be empty (leave it out for UTC)")
			missing = true
		}
		if missing {
			continue
		}
		tz := ""
		if sc.Timezone != nil {
			tz = *sc.Timezone
		}
		parsed, err := warm.ParseSchedule(*sc.Cron, tz, sc.Duration.Duration, *sc.Idle)
		var fe *warm.FieldError
		if errors.As(err, &fe) {
			errorf(sub+"."+fe.Field, "%v", fe.Err)
			continue
		}
		if err != nil {
			errorf(sub, "%v", err)
			continue
		}
		s.Schedules = append(s.Schedules, parsed)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	if s.Idle == 0 && len(s.Schedules) == 0 && !s.Adaptive {
		return nil, nil
	}
	return s, nil
}

// warmErrorf reports a problem at its line in the template's own warm block, or, when the block
// was inherited, at inheritFrom: the parent's block was valid for the parent, but not for this
// template (a smaller maxAgents, say).
func warmErrorf(r *rawTemplate, sub, format string, args ...any) *fieldError {
	msg := fmt.Sprintf(format, args...)
	if mappingValue(r.node, "warm") != nil {
		return r.errorf("warm."+sub, "%s", msg)
	}
	return r.errorf("inheritFrom", "warm.%s: %s (warm inherited)", sub, msg)
}

// WarmWarnings says where t's warm block asks for more ready agents than its bounds allow: an idle
// count or a schedule's idle above maxIdle, or maxIdle above maxAgents. The block is used as
// written, each count cut to its bound, so a copied block works in a smaller template.
func WarmWarnings(t *Template) []Warning {
	s := t.Warm
	if s == nil {
		return nil
	}
	var out []Warning
	add := func(field, format string, args ...any) {
		out = append(out, Warning{Kind: WarnWarmBound, Field: "warm." + field, Msg: fmt.Sprintf(format, args...)})
	}
	if s.MaxIdle > t.MaxAgents {
		add("maxIdle", "%d is above maxAgents %d: ready agents count against maxAgents, so at most %d are kept, fewer while builds run", s.MaxIdle, t.MaxAgents, t.MaxAgents)
	}
	if s.Idle > s.MaxIdle {
		add("idle", "%d is above maxIdle %d: %d are kept", s.Idle, s.MaxIdle, s.MaxIdle)
	}
	for i, sc := range s.Schedules {
		if sc.Idle > s.MaxIdle {
			add(fmt.Sprintf("schedules[%d].idle", i), "%d is above maxIdle %d: %d are kept while it is active", sc.Idle, s.MaxIdle, s.MaxIdle)
		}
	}
	return out
}
