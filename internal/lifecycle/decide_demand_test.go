package lifecycle

import (
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPlanCreates(t *testing.T) {
	tests := []struct {
		name       string
		loads      []templateLoad
		globalLive int
		maxAgents  int
		want       map[string]string // template → "creates why"
	}{
		{
			name:  "one agent per waiting build",
			loads: []templateLoad{{Name: "maven", Waiting: 3, MaxAgents: 10}},
			want:  map[string]string{"maven": "3 AgentStarting"},
		},
		{
			name:  "agents on their way count",
			loads: []templateLoad{{Name: "maven", Waiting: 3, Ready: 2, Live: 2, MaxAgents: 10}},
			want:  map[string]string{"maven": "1 AgentStarting"},
		},
		{
			name:  "busy agents do not serve new builds but count against the cap",
			loads: []templateLoad{{Name: "maven", Waiting: 5, Ready: 0, Live: 8, MaxAgents: 10}},
			want:  map[string]string{"maven": "2 TemplateCap"},
		},
		{
			name:  "template cap reached",
			loads: []templateLoad{{Name: "maven", Waiting: 5, Live: 10, MaxAgents: 10}},
			want:  map[string]string{"maven": "0 TemplateCap"},
		},
		{
			name: "global cap goes to the longest wait first",
			loads: []templateLoad{
				{Name: "node", Waiting: 4, MaxAgents: 10, OldestWaiting: t0},
				{Name: "maven", Waiting: 4, MaxAgents: 10, OldestWaiting: t0.Add(-time.Minute)},
			},
			globalLive: 2, maxAgents: 7,
			want: map[string]string{"maven": "4 AgentStarting", "node": "1 GlobalCap"},
		},
		{
			name:       "global cap reached",
			loads:      []templateLoad{{Name: "maven", Waiting: 4, MaxAgents: 10}},
			globalLive: 7, maxAgents: 7,
			want: map[string]string{"maven": "0 GlobalCap"},
		},
		{
			name:       "global cap exceeded by others' pods never goes negative",
			loads:      []templateLoad{{Name: "maven", Waiting: 4, MaxAgents: 10}, {Name: "node", Waiting: 1, MaxAgents: 10}},
			globalLive: 9, maxAgents: 7,
			want: map[string]string{"maven": "0 GlobalCap", "node": "0 GlobalCap"},
		},
		{
			name:  "backed off template waits",
			loads: []templateLoad{{Name: "broken", Waiting: 4, MaxAgents: 10, BackedOff: true, Backoff: Backoff{Failures: 1, Until: t0, Last: Reason{KindImagePull, "ErrImagePull"}}}, {Name: "maven", Waiting: 1, MaxAgents: 10}},
			want:  map[string]string{"broken": "0 Backoff", "maven": "1 AgentStarting"},
		},
		{
			name:  "after a failure one agent probes",
			loads: []templateLoad{{Name: "maven", Waiting: 8, MaxAgents: 10, Probing: true}},
			want:  map[string]string{"maven": "1 Probing"},
		},
		{
			name:  "a probe already on its way is enough",
			loads: []templateLoad{{Name: "maven", Waiting: 8, Ready: 1, Live: 1, MaxAgents: 10, Probing: true}},
			want:  map[string]string{"maven": "0 Probing"},
		},
		{
			name:  "surplus creates nothing",
			loads: []templateLoad{{Name: "maven", Waiting: 1, Ready: 3, Live: 3, MaxAgents: 10}},
			want:  map[string]string{"maven": "0 AgentStarting"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]string{}
			for name, p := range planCreates(tt.loads, tt.globalLive, tt.maxAgents) {
				got[name] = fmt.Sprintf("%d %s", p.Create, p.Why.Kind)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("planCreates (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	cfg := DecideConfig{BackoffBase: time.Second, BackoffMax: 10 * time.Second}
	m := NewMemory()
	var got []time.Duration
	for range 6 {
		got = append(got, m.fail("maven", Reason{KindCrash, "crash"}, t0, time.Time{}, cfg))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoff waits (-want +got):\n%s", diff)
	}
	if b := m.Backoff["maven"]; !b.Until.Equal(t0.Add(10*time.Second)) || b.Last.Kind != KindCrash {
		t.Errorf("backoff = %+v, want until t0+10s after a crash", b)
	}
}
