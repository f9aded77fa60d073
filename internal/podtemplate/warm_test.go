package podtemplate

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/jenkins-agent-provisioner/provisioner/internal/warm"
)

func mustWarmSchedule(t *testing.T, cron, tz string, d time.Duration, idle int) warm.Schedule {
	t.Helper()
	s, err := warm.ParseSchedule(cron, tz, d, idle)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestParseWarm(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want map[string]*warm.Spec // by template name
	}{
		{
			name: "the issue's example",
			yaml: `templates:
  - name: maven
    labels: [maven]
    warm:
      idle: 2              # ready agents kept at all times
      maxIdle: 10          # upper bound on ready agents from every source below
      maxIdleTime: 30m     # a ready agent idle this long is replaced by a fresh one (default 30m)
      schedules:           # like a CronJob: from each start, for duration, keep idle ready
        - cron: "0 8 * * 1-5"     # five-field cron, as Kubernetes CronJob reads it
          timezone: Europe/Berlin # IANA name; default UTC
          duration: 10h
          idle: 6
      adaptive: true       # also keep (arrival rate × measured start-up time) ready, Little's law
`,
			want: map[string]*warm.Spec{"maven": {Idle: 2, MaxIdle: 10, MaxIdleTime: 30 * time.Minute, Adaptive: true,
				Schedules: []warm.Schedule{mustWarmSchedule(t, "0 8 * * 1-5", "Europe/Berlin", 10*time.Hour, 6)}}},
		},
		{
			name: "defaults: maxIdle is maxAgents, maxIdleTime 30m, timezone UTC",
			yaml: minimal + "    maxAgents: 4\n    warm:\n      schedules: [{cron: '@daily', duration: 2h, idle: 3}]\n",
			want: map[string]*warm.Spec{"maven": {MaxIdle: 4, MaxIdleTime: 30 * time.Minute,
				Schedules: []warm.Schedule{mustWarmSchedule(t, "@daily", "UTC", 2*time.Hour, 3)}}},
		},
		{
			name: "no warm block: none",
			yaml: minimal,
			want: map[string]*warm.Spec{"maven": nil},
		},
		{
			name: "a block that wants nothing: none",
			yaml: minimal + "    warm: {maxIdle: 3, maxIdleTime: 5m, adaptive: false}\n",
			want: map[string]*warm.Spec{"maven": nil},
		},
		{
			name: "adaptive alone",
			yaml: minimal + "    warm: {adaptive: true, maxIdle: 5}\n",
			want: map[string]*warm.Spec{"maven": {MaxIdle: 5, MaxIdleTime: 30 * time.Minute, Adaptive: true}},
		},
		{
			name: "inherited unless set; a parent-only template keeps none itself; warm: {} switches it off",
			yaml: `templates:
  - name: base
    warm: {idle: 2, maxIdleTime: 10m}
  - name: inherits
    labels: [a]
    inheritFrom: [base]
  - name: overrides
    labels: [b]
    inheritFrom: [base]
    warm: {idle: 1}
  - name: off
    labels: [c]
    inheritFrom: [base]
    warm: {}
  - name: grandchild
    labels: [d]
    inheritFrom: [inherits]
    maxAgents: 3
`,
			want: map[string]*warm.Spec{
				"base":       nil,
				"inherits":   {Idle: 2, MaxIdle: 10, MaxIdleTime: 10 * time.Minute},
				"overrides":  {Idle: 1, MaxIdle: 10, MaxIdleTime: 30 * time.Minute},
				"off":        nil,
				"grandchild": {Idle: 2, MaxIdle: 3, MaxIdleTime: 10 * time.Minute},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := Parse("t.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]*warm.Spec{}
			for _, tmpl := range set.Templates {
				got[tmpl.Name] = tmpl.Warm
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("warm (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseWarmErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{"unknown field", minimal + "    warm:\n      idel: 2\n",
			`t.yaml:5: templates[0].warm.idel: unknown field "idel"`},
		{"unknown schedule field", minimal + "    warm:\n      schedules:\n        - {cron: '@daily', duration: 1h, idle: 1, tz: UTC}\n",
			`t.yaml:6: templates[0].warm.schedules[0].tz: unknown field "tz"`},
		{"wrong type", minimal + "    warm:\n      idle: two\n",
			`t.yaml:5: templates[0].warm.idle: expected an integer, got string "two"`},
		{"adaptive not a bool", minimal + "    warm:\n      adaptive: yes please\n",
			`t.yaml:5: templates[0].warm.adaptive: expected true or false, got string "yes please"`},
		{"duration without unit", minimal + "    warm:\n      maxIdleTime: 30\n",
			`t.yaml:5: templates[0].warm.maxIdleTime: invalid value 30: want a duration such as "5m" or "1h30m"`},
		{"negative idle", minimal + "    warm:\n      idle: -1\n",
			"t.yaml:5: templates[0].warm.idle: must be at least 0, got -1"},
		{"maxIdle zero", minimal + "    warm:\n      maxIdle: 0\n",
			"t.yaml:5: templates[0].warm.maxIdle: must be at least 1, got 0 (leave warm out to keep no ready agents)"},
		{"maxIdleTime zero", minimal + "    warm:\n      idle: 1\n      maxIdleTime: 0s\n",
			"t.yaml:6: templates[0].warm.maxIdleTime: must be positive, got 0s"},
		{"bad cron", minimal + "    warm:\n      schedules:\n        - cron: \"61 8 * * *\"\n          duration: 1h\n          idle: 1\n",
			`t.yaml:6: templates[0].warm.schedules[0].cron: invalid schedule "61 8 * * *": end of range (61) above maximum (59): 61`},
		{"TZ in cron", minimal + "    warm:\n      schedules:\n        - {cron: 'TZ=Europe/Berlin 0 8 * * *', duration: 1h, idle: 1}\n",
			"t.yaml:6: templates[0].warm.schedules[0].cron: cannot use TZ or CRON_TZ in the schedule, use the timezone field instead"},
		{"cron never fires", minimal + "    warm:\n      schedules:\n        - {cron: '0 0 31 4 *', duration: 1h, idle: 1}\n",
			`t.yaml:6: templates[0].warm.schedules[0].cron: schedule "0 0 31 4 *" never fires (no such date)`},
		{"unknown timezone", minimal + "    warm:\n      schedules:\n        - cron: '0 8 * * *'\n          timezone: Mars/Olympus\n          duration: 1h\n          idle: 1\n",
			`t.yaml:7: templates[0].warm.schedules[0].timezone: unknown time zone "Mars/Olympus"`},
		{"empty timezone", minimal + "    warm:\n      schedules:\n        - {cron: '0 8 * * *', timezone: '', duration: 1h, idle: 1}\n",
			"t.yaml:6: templates[0].warm.schedules[0].timezone: must not be empty (leave it out for UTC)"},
		{"duration zero", minimal + "    warm:\n      schedules:\n        - cron: '0 8 * * *'\n          duration: 0s\n          idle: 1\n",
			"t.yaml:7: templates[0].warm.schedules[0].duration: must be positive, got 0s"},
		{"schedule fields required", minimal + "    warm:\n      schedules:\n        - timezone: UTC\n",
			"t.yaml:6: templates[0].warm.schedules[0].cron: required: a five-field cron schedule such as \"0 8 * * 1-5\"\n" +
				"t.yaml:6: templates[0].warm.schedules[0].duration: required: how long each start lasts, such as \"10h\"\n" +
				"t.yaml:6: templates[0].warm.schedules[0].idle: required: the ready agents kept while it lasts"},
		{"an invalid parent block fails its children too", "templates:\n  - name: base\n    warm: {idle: -1}\n  - name: child\n    labels: [c]\n    inheritFrom: [base]\n",
			"t.yaml:3: templates[0].warm.idle: must be at least 0, got -1\n" +
				"t.yaml:6: templates[1].inheritFrom: warm.idle: must be at least 0, got -1 (warm inherited)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse: no error, want %q", tt.want)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseWarm feeds the loader warm blocks: it never panics, errors name the file, and what it
// accepts keeps the promises the controller relies on (idle and every schedule's idle within
// maxIdle, maxIdle within maxAgents, a positive maxIdleTime, and Desired within maxIdle).
func FuzzParseWarm(f *testing.F) {
	f.Add("idle: 2\nmaxIdle: 10\nmaxIdleTime: 30m\nschedules:\n  - {cron: '0 8 * * 1-5', timezone: Europe/Berlin, duration: 10h, idle: 6}\nadaptive: true\n")
	f.Add("schedules: [{cron: '@hourly', duration: 90m, idle: 1}, {cron: '*/5 * * * *', duration: 1m, idle: 3}]\n")
	f.Add("{idle: 1, maxIdle: 1, maxIdleTime: 1ns}\n")
	f.Add("schedules: [{cron: 'TZ=UTC', duration: 1h, idle: 1}]\n")
	f.Fuzz(func(t *testing.T, block string) {
		doc := minimal + "    warm:\n"
		for _, line := range strings.Split(block, "\n") {
			doc += "      " + line + "\n"
		}
		set, err := Parse("fuzz.yaml", []byte(doc))
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.HasPrefix(line, "fuzz.yaml") {
					t.Fatalf("error line does not name the file: %q", line)
				}
			}
			return
		}
		tmpl := set.Templates[0]
		w := tmpl.Warm
		if w == nil {
			return
		}
		if w.Idle < 0 || w.Idle > w.MaxIdle || w.MaxIdle > tmpl.MaxAgents || w.MaxIdleTime <= 0 {
			t.Fatalf("accepted warm %+v with maxAgents %d", w, tmpl.MaxAgents)
		}
		for _, s := range w.Schedules {
			if s.Idle < 1 || s.Idle > w.MaxIdle || s.Duration <= 0 {
				t.Fatalf("accepted schedule %+v in %+v", s, w)
			}
		}
		now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
		if n, _ := warm.Desired(w, now, warm.Estimate{Count: 1000}); n > w.MaxIdle {
			t.Fatalf("Desired = %d above maxIdle %d", n, w.MaxIdle)
		}
	})
}

// Counts above their bounds are used as written and cut (Desired takes the minimum, Fit the
// template cap): a block copied into a smaller template works, and `templates check` says so.
func TestWarmCountsAboveTheirBoundsAreWarnings(t *testing.T) {
	// At 08:30 UTC the schedules below (08:00 for an hour) are active.
	at := time.Date(2026, 12, 1, 8, 30, 0, 0, time.UTC)
	tests := []struct {
		name    string
		yaml    string
		want    []string
		desired int // ready agents wanted at at: the count cut to its bound
	}{
		{"idle above maxIdle", minimal + "    warm:\n      idle: 4\n      maxIdle: 3\n",
			[]string{"warm.idle: 4 is above maxIdle 3: 3 are kept"}, 3},
		{"idle above maxAgents by default", minimal + "    maxAgents: 2\n    warm:\n      idle: 4\n",
			[]string{"warm.idle: 4 is above maxIdle 2: 2 are kept"}, 2},
		{"maxIdle above maxAgents", minimal + "    warm:\n      maxIdle: 11\n      idle: 1\n",
			[]string{"warm.maxIdle: 11 is above maxAgents 10: ready agents count against maxAgents, so at most 10 are kept, fewer while builds run"}, 1},
		{"schedule idle above maxIdle", minimal + "    warm:\n      maxIdle: 5\n      schedules:\n        - cron: '0 8 * * *'\n          duration: 1h\n          idle: 6\n",
			[]string{"warm.schedules[0].idle: 6 is above maxIdle 5: 5 are kept while it is active"}, 5},
		{"inherited block in a smaller child", "templates:\n  - name: base\n    warm: {idle: 5}\n  - name: small\n    labels: [s]\n    inheritFrom: [base]\n    maxAgents: 3\n",
			[]string{"warm.idle: 5 is above maxIdle 3: 3 are kept"}, 3},
		{"within the bounds", minimal + "    warm:\n      idle: 2\n      maxIdle: 10\n", nil, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			set, err := Parse("t.yaml", []byte(tt.yaml))
			if err != nil {
				t.Fatalf("Parse: %v, want the block accepted", err)
			}
			tmpl := set.Templates[len(set.Templates)-1]
			var got []string
			for _, w := range WarmWarnings(tmpl) {
				got = append(got, w.String())
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("warnings (-want +got):\n%s", diff)
			}
			// Used as written: what is wanted is cut to the bound, not refused.
			if n, _ := warm.Desired(tmpl.Warm, at, warm.Estimate{}); n != tt.desired {
				t.Errorf("Desired = %d, want %d", n, tt.desired)
			}
		})
	}
}
