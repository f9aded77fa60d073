package lifecycle

import (
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
		want       map[string]int
	}{
		{
			name:  "one agent per waiting build",
			loads: []templateLoad{{Name: "maven", Waiting: 3, MaxAgents: 10}},
			want:  map[string]int{"maven": 3},
		},
		{
			name:  "agents on their way count",
			loads: []templateLoad{{Name: "maven", Waiting: 3, Ready: 2, Live: 2, MaxAgents: 10}},
			want:  map[string]int{"maven": 1},
		},
		{
			name:  "busy agents do not serve new builds but count against the cap",
			loads: []templateLoad{{Name: "maven", Waiting: 5, Ready: 0, Live: 8, MaxAgents: 10}},
			want:  map[string]int{"maven": 2},
		},
		{
			name:  "template cap reached",
			loads: []templateLoad{{Name: "maven", Waiting: 5, Live: 10, MaxAgents: 10}},
			want:  map[string]int{},
		},
		{
			name: "global cap goes to the longest wait first",
			loads: []templateLoad{
				{Name: "node", Waiting: 4, MaxAgents: 10, OldestWaiting: t0},
				{Name: "maven", Waiting: 4, MaxAgents: 10, OldestWaiting: t0.Add(-time.Minute)},
			},
			globalLive: 2, maxAgents: 7,
			want: map[string]int{"maven": 4, "node": 1},
		},
		{
			name:       "global cap reached",
			loads:      []templateLoad{{Name: "maven", Waiting: 4, MaxAgents: 10}},
			globalLive: 7, maxAgents: 7,
			want: map[string]int{},
		},
		{
			name:       "global cap exceeded by others' pods never goes negative",
			loads:      []templateLoad{{Name: "maven", Waiting: 4, MaxAgents: 10}, {Name: "node", Waiting: 1, MaxAgents: 10}},
			globalLive: 9, maxAgents: 7,
			want: map[string]int{},
		},
		{
			name:  "backed off template waits",
			loads: []templateLoad{{Name: "broken", Waiting: 4, MaxAgents: 10, BackedOff: true}, {Name: "maven", Waiting: 1, MaxAgents: 10}},
			want:  map[string]int{"maven": 1},
		},
		{
			name:  "after a failure one agent probes",
			loads: []templateLoad{{Name: "maven", Waiting: 8, MaxAgents: 10, Probing: true}},
			want:  map[string]int{"maven": 1},
		},
		{
			name:  "a probe already on its way is enough",
			loads: []templateLoad{{Name: "maven", Waiting: 8, Ready: 1, Live: 1, MaxAgents: 10, Probing: true}},
			want:  map[string]int{},
		},
		{
			name:  "surplus creates nothing",
			loads: []templateLoad{{Name: "maven", Waiting: 1, Ready: 3, Live: 3, MaxAgents: 10}},
			want:  map[string]int{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := planCreates(tt.loads, tt.globalLive, tt.maxAgents)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("planCreates (-want +got):\n%s", diff)
			}
		})
	}
}

func TestBackoffGrowsAndCaps(t *testing.T) {
	b := newBackoff(time.Second, 10*time.Second)
	var got []time.Duration
	for range 6 {
		got = append(got, b.fail("maven", t0))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 10 * time.Second, 10 * time.Second}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("backoff waits (-want +got):\n%s", diff)
	}
	if active, _ := b.active("maven", t0.Add(9*time.Second)); !active {
		t.Error("backoff not active within its wait")
	}
	if active, _ := b.active("maven", t0.Add(11*time.Second)); active {
		t.Error("backoff still active after its wait")
	}
	if active, _ := b.active("other", t0); active {
		t.Error("another template is backed off")
	}
	b.succeed("maven")
	if d := b.fail("maven", t0); d != time.Second {
		t.Errorf("after success the first wait is %s, want 1s", d)
	}
}
