package lifecycle

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// decideCase is one row of a Decide table: a world, the memory and settings it is decided in, and
// what the decision must hold. An expectation left nil is not checked, except the actions.
type decideCase struct {
	name    string
	world   *testWorld
	mem     func(*Memory)       // nil: a fresh Memory
	cfg     func(*DecideConfig) // nil: the table's base settings
	want    []string            // the actions, as actions() writes them
	waits   []string            // the builds waiting, as waits() writes them
	notices []string            // the notices, as notices() writes them
	agents  map[AgentKey]int    // the agents counted by template and state
	exposed *int                // agents the busy watch must watch
	check   func(*testing.T, Decision)
}

// runDecideCases decides every row at t0 with base (changed by the row's cfg) and compares.
func runDecideCases(t *testing.T, base DecideConfig, cases []decideCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			mem := NewMemory()
			if tt.mem != nil {
				tt.mem(&mem)
			}
			cfg := base
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			d := Decide(tt.world.snap, mem, cfg, t0)
			if diff := cmp.Diff(tt.want, actions(d)); diff != "" {
				t.Errorf("actions (-want +got):\n%s", diff)
			}
			if tt.waits != nil {
				if diff := cmp.Diff(tt.waits, waits(d)); diff != "" {
					t.Errorf("builds waiting (-want +got):\n%s", diff)
				}
			}
			if tt.notices != nil {
				if diff := cmp.Diff(tt.notices, notices(d)); diff != "" {
					t.Errorf("notices (-want +got):\n%s", diff)
				}
			}
			if tt.agents != nil {
				if diff := cmp.Diff(tt.agents, d.Agents); diff != "" {
					t.Errorf("agents (-want +got):\n%s", diff)
				}
			}
			if tt.exposed != nil && d.Exposed != *tt.exposed {
				t.Errorf("exposed = %d, want %d", d.Exposed, *tt.exposed)
			}
			if tt.check != nil {
				tt.check(t, d)
			}
		})
	}
}

// exposing is a row's expected count of exposed agents.
func exposing(n int) *int { return &n }
