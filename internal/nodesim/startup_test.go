package nodesim

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseBehaviourDelays(t *testing.T) {
	tests := []struct {
		in   string
		want Behaviour
	}{
		{"slow-schedule=1s", Behaviour{ScheduleDelay: time.Second}},
		{"slow-connect=4s", Behaviour{ConnectDelay: 4 * time.Second}},
		{"slow-schedule=1s, slow-start=3s, slow-connect=4s", Behaviour{ScheduleDelay: time.Second, StartDelay: 3 * time.Second, ConnectDelay: 4 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBehaviour(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseBehaviour (-want +got):\n%s", diff)
			}
			if again, err := ParseBehaviour(got.String()); err != nil || again != got {
				t.Errorf("String %q parses to %+v, %v", got.String(), again, err)
			}
		})
	}
	for in, want := range map[string]string{
		"slow-connect":       "slow-connect needs a duration, e.g. slow-connect=3s",
		"slow-schedule=soon": `slow-schedule duration: time: invalid duration "soon"`,
		"slow-connect=-1s":   "slow-connect duration -1s is negative",
	} {
		if _, err := ParseBehaviour(in); err == nil || err.Error() != want {
			t.Errorf("ParseBehaviour(%q) error = %v, want %q", in, err, want)
		}
	}
}

func TestBehaviourWithStartUp(t *testing.T) {
	u := StartUp{Schedule: time.Second, Start: 3 * time.Second, Connect: 4 * time.Second}
	tests := []struct {
		name string
		b    Behaviour
		want Behaviour
	}{
		{"healthy pod takes the cluster's start-up", Behaviour{}, Behaviour{ScheduleDelay: time.Second, StartDelay: 3 * time.Second, ConnectDelay: 4 * time.Second}},
		{"a pod's own slow-start wins", Behaviour{StartDelay: 10 * time.Second}, Behaviour{ScheduleDelay: time.Second, StartDelay: 10 * time.Second, ConnectDelay: 4 * time.Second}},
		{"failures are kept", Behaviour{Crash: true}, Behaviour{Crash: true, ScheduleDelay: time.Second, StartDelay: 3 * time.Second, ConnectDelay: 4 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.b.withStartUp(u)); diff != "" {
				t.Errorf("withStartUp (-want +got):\n%s", diff)
			}
		})
	}
	if got, want := u.Total(), 8*time.Second; got != want {
		t.Errorf("Total = %s, want %s", got, want)
	}
	if got := (Behaviour{}).withStartUp(StartUp{}); got != (Behaviour{}) {
		t.Errorf("no start-up configured changed the behaviour: %+v", got)
	}
}

// TestRealisticStartUp runs a pod on a simulator configured with a cluster's start-up time and
// checks that each phase takes at least its share: bound no sooner than the scheduling delay after
// its creation, containers started no sooner than the start delay after that, and the agent online
// no sooner than the connect delay after the containers started.
func TestRealisticStartUp(t *testing.T) {
	ns := newNamespace(t)
	j := newJenkins(t)
	u := StartUp{Schedule: 400 * time.Millisecond, Start: 600 * time.Millisecond, Connect: 800 * time.Millisecond}
	sim := startSim(t, Config{Namespace: ns, NodeName: "nodesim-startup", StartUp: u})

	const name = "realistic"
	j.createInboundNode(name, "startup")
	createSecret(t, ns, name, j.nodeSecret(name))
	created := time.Now()
	createPod(t, agentPod(ns, name, j.URL(), name, "-noReconnect"))
	eventually(t, "connected", func() (bool, string) { n, _ := j.node(name); return n.Connected, "" })

	at := map[string]time.Time{}
	for _, e := range sim.Events() {
		if e.Pod == name {
			if _, ok := at[e.Reason]; !ok {
				at[e.Reason] = e.Time
			}
		}
	}
	for _, r := range []string{"Scheduled", "Started", "AgentConnected"} {
		if at[r].IsZero() {
			t.Fatalf("no %s event; events %v", r, eventsFor(sim, name))
		}
	}
	for _, p := range []struct {
		phase    string
		from, to time.Time
		least    time.Duration
	}{
		{"scheduling (created → Scheduled)", created, at["Scheduled"], u.Schedule},
		// The Scheduled event is recorded just after the binding, possibly after the kubelet side
		// began, so starting is measured from the creation.
		{"scheduling and starting (created → Started)", created, at["Started"], u.Schedule + u.Start},
		{"connecting (Started → AgentConnected)", at["Started"], at["AgentConnected"], u.Connect},
		{"the whole start-up", created, at["AgentConnected"], u.Total()},
	} {
		if d := p.to.Sub(p.from); d < p.least {
			t.Errorf("%s took %s, want at least %s", p.phase, d, p.least)
		}
	}
}
