package warm

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestDesired(t *testing.T) {
	// 2026-11-30 is a Monday.
	mondayMorning := mustTime(t, "2026-11-30T09:00:00Z")
	sunday := mustTime(t, "2026-11-29T09:00:00Z")
	workdays := mustSchedule(t, "0 8 * * 1-5", "", 10*time.Hour, 6)
	mondays := mustSchedule(t, "0 9 * * 1", "", time.Hour, 4)
	type result struct {
		Count  int
		Source Source
	}
	tests := []struct {
		name string
		spec *Spec
		now  time.Time
		est  Estimate
		want result
	}{
		{"no warm block", nil, mondayMorning, Estimate{Count: 5}, result{0, SourceNone}},
		{"empty warm block", &Spec{MaxIdle: 10}, mondayMorning, Estimate{}, result{0, SourceNone}},
		{"idle", &Spec{Idle: 2, MaxIdle: 10}, sunday, Estimate{}, result{2, SourceIdle}},
		{"schedule active now", &Spec{Idle: 2, MaxIdle: 10, Schedules: []Schedule{workdays}}, mondayMorning, Estimate{}, result{6, SourceSchedule}},
		{"schedule not active now", &Spec{Idle: 2, MaxIdle: 10, Schedules: []Schedule{workdays}}, sunday, Estimate{}, result{2, SourceIdle}},
		{"the largest active schedule", &Spec{MaxIdle: 10, Schedules: []Schedule{mondays, workdays}}, mondayMorning, Estimate{}, result{6, SourceSchedule}},
		{"adaptive above the rest", &Spec{Idle: 2, MaxIdle: 10, Schedules: []Schedule{workdays}, Adaptive: true}, mondayMorning, Estimate{Count: 8}, result{8, SourceAdaptive}},
		{"adaptive below the schedule", &Spec{Idle: 2, MaxIdle: 10, Schedules: []Schedule{workdays}, Adaptive: true}, mondayMorning, Estimate{Count: 3}, result{6, SourceSchedule}},
		{"estimate ignored unless adaptive", &Spec{Idle: 2, MaxIdle: 10}, mondayMorning, Estimate{Count: 8}, result{2, SourceIdle}},
		{"maxIdle caps adaptive", &Spec{Idle: 2, MaxIdle: 5, Adaptive: true}, mondayMorning, Estimate{Count: 8}, result{5, SourceAdaptive}},
		{"maxIdle caps a schedule", &Spec{MaxIdle: 4, Schedules: []Schedule{workdays}}, mondayMorning, Estimate{}, result{4, SourceSchedule}},
		{"tie: idle is named", &Spec{Idle: 6, MaxIdle: 10, Schedules: []Schedule{workdays}, Adaptive: true}, mondayMorning, Estimate{Count: 6}, result{6, SourceIdle}},
		{"adaptive decayed to zero", &Spec{MaxIdle: 10, Adaptive: true}, mondayMorning, Estimate{}, result{0, SourceNone}},
		{"adaptive with a build within maxIdleTime", &Spec{MaxIdle: 10, MaxIdleTime: 5 * time.Minute, Adaptive: true}, mondayMorning,
			Estimate{Count: 2, Last: mondayMorning.Add(-5*time.Minute + time.Second)}, result{2, SourceAdaptive}},
		{"adaptive keeps none after maxIdleTime without a build", &Spec{Idle: 1, MaxIdle: 10, MaxIdleTime: 5 * time.Minute, Adaptive: true}, mondayMorning,
			Estimate{Count: 2, Last: mondayMorning.Add(-5 * time.Minute)}, result{1, SourceIdle}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n, src := Desired(tt.spec, tt.now, tt.est)
			if diff := cmp.Diff(tt.want, result{n, src}); diff != "" {
				t.Errorf("Desired (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSpecString(t *testing.T) {
	s := &Spec{Idle: 2, MaxIdle: 10, MaxIdleTime: 30 * time.Minute, Adaptive: true,
		Schedules: []Schedule{mustSchedule(t, "0 8 * * 1-5", "Europe/Berlin", 10*time.Hour, 6)}}
	want := "idle 2, maxIdle 10, maxIdleTime 30m0s, schedule 0 8 * * 1-5 Europe/Berlin for 10h0m0s: 6, adaptive"
	if got := s.String(); got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := (*Spec)(nil).String(), "none"; got != want {
		t.Errorf("nil String() = %q, want %q", got, want)
	}
}

func TestSpecExpired(t *testing.T) {
	online := mustTime(t, "2026-12-01T10:00:00Z")
	s := &Spec{Idle: 1, MaxIdle: 1, MaxIdleTime: 30 * time.Minute}
	tests := []struct {
		name string
		spec *Spec
		now  time.Time
		want bool
	}{
		{"fresh", s, online.Add(time.Minute), false},
		{"a moment before", s, online.Add(30*time.Minute - time.Nanosecond), false},
		{"at maxIdleTime", s, online.Add(30 * time.Minute), true},
		{"long after", s, online.Add(2 * time.Hour), true},
		{"no warm", nil, online.Add(2 * time.Hour), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.spec.Expired(online, tt.now); got != tt.want {
				t.Errorf("Expired = %v, want %v", got, tt.want)
			}
		})
	}
}
