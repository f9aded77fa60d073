package warm

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestFit(t *testing.T) {
	t0 := mustTime(t, "2026-12-01T10:00:00Z")
	older, newer := t0, t0.Add(time.Minute)
	tests := []struct {
		name  string
		loads []Load
		c     Capacity
		want  []Plan
	}{
		// Without warm (every Ready 0): what the controller creates today.
		{"cold: builds minus free agents", []Load{{Name: "a", Waiting: 3, Free: 1, Live: 1, Cap: 10}}, Capacity{},
			[]Plan{{Name: "a", Demand: 2}}},
		{"cold: template cap", []Load{{Name: "a", Waiting: 5, Live: 8, Cap: 10}}, Capacity{},
			[]Plan{{Name: "a", Demand: 2, Short: 3}}},
		{"cold: global cap, the longest wait first", []Load{
			{Name: "a", Waiting: 3, Cap: 10, OldestWaiting: newer},
			{Name: "b", Waiting: 3, Cap: 10, OldestWaiting: older},
		}, Capacity{Cap: 4},
			[]Plan{{Name: "a", Demand: 1, Short: 2}, {Name: "b", Demand: 3}}},
		{"cold: backed off", []Load{{Name: "a", Waiting: 3, Cap: 10, BackedOff: true}}, Capacity{},
			[]Plan{{Name: "a", Short: 3}}},
		{"cold: probing, one at a time", []Load{{Name: "a", Waiting: 3, Cap: 10, Probing: true}}, Capacity{},
			[]Plan{{Name: "a", Demand: 1, Short: 2}}},
		{"cold: probing, one already on its way", []Load{{Name: "a", Waiting: 3, Free: 1, Live: 1, Cap: 10, Probing: true}}, Capacity{},
			[]Plan{{Name: "a", Short: 2}}},
		{"cold: more free agents than builds, no warm: nothing kept", []Load{{Name: "a", Waiting: 1, Free: 3, Live: 3, Cap: 10}}, Capacity{},
			[]Plan{{Name: "a"}}},

		// Headroom.
		{"idle 2 from nothing", []Load{{Name: "a", Cap: 10, Ready: 2}}, Capacity{},
			[]Plan{{Name: "a", Headroom: 2}}},
		{"idle 2 held", []Load{{Name: "a", Free: 2, Live: 2, Cap: 10, Ready: 2}}, Capacity{Live: 2},
			[]Plan{{Name: "a", Keep: 2}}},
		{"a ready agent took a build: replaced", []Load{{Name: "a", Free: 1, Live: 2, Cap: 10, Ready: 2}}, Capacity{Live: 2},
			[]Plan{{Name: "a", Headroom: 1, Keep: 1}}},
		{"ready agents serve waiting builds first, then are replaced", []Load{{Name: "a", Waiting: 2, Free: 2, Live: 2, Cap: 10, Ready: 2}}, Capacity{Live: 2},
			[]Plan{{Name: "a", Headroom: 2}}},
		{"surplus beyond the wanted headroom is not kept", []Load{{Name: "a", Free: 5, Live: 5, Cap: 10, Ready: 2}}, Capacity{Live: 5},
			[]Plan{{Name: "a", Keep: 2}}},
		{"template cap: demand before headroom", []Load{{Name: "a", Waiting: 2, Cap: 3, Ready: 2}}, Capacity{},
			[]Plan{{Name: "a", Demand: 2, Headroom: 1}}},
		{"template cap full of busy agents: no headroom", []Load{{Name: "a", Live: 3, Cap: 3, Ready: 2}}, Capacity{Live: 3},
			[]Plan{{Name: "a"}}},
		{"no template cap", []Load{{Name: "a", Waiting: 20, Ready: 5}}, Capacity{},
			[]Plan{{Name: "a", Demand: 20, Headroom: 5}}},
		{"global cap: another template's demand first", []Load{
			{Name: "a", Cap: 10, Ready: 4},
			{Name: "b", Waiting: 3, Cap: 10, OldestWaiting: older},
		}, Capacity{Cap: 5},
			[]Plan{{Name: "a", Headroom: 2}, {Name: "b", Demand: 3}}},
		{"global cap full: another template's waiting build takes the headroom's place", []Load{
			{Name: "a", Free: 2, Live: 2, Cap: 10, Ready: 2},
			{Name: "b", Waiting: 1, Cap: 10, OldestWaiting: older},
		}, Capacity{Cap: 2, Live: 2},
			[]Plan{{Name: "a", Keep: 1}, {Name: "b", Short: 1}}},
		{"global cap full: a pod already leaving makes the room", []Load{
			{Name: "a", Free: 2, Live: 2, Cap: 10, Ready: 2},
			{Name: "b", Waiting: 1, Live: 1, Cap: 10, OldestWaiting: older},
		}, Capacity{Cap: 3, Live: 3, Leaving: 1},
			[]Plan{{Name: "a", Keep: 2}, {Name: "b", Short: 1}}},
		{"global cap full: headroom given up from the largest first", []Load{
			{Name: "a", Free: 1, Live: 1, Cap: 10, Ready: 1},
			{Name: "b", Free: 3, Live: 3, Cap: 10, Ready: 3},
			{Name: "c", Waiting: 2, Cap: 10, OldestWaiting: older},
		}, Capacity{Cap: 4, Live: 4},
			[]Plan{{Name: "a", Keep: 1}, {Name: "b", Keep: 1}, {Name: "c", Short: 2}}},
		{"global cap full: no new headroom anywhere while a build waits for room", []Load{
			{Name: "a", Cap: 10, Ready: 2},
			{Name: "b", Waiting: 1, Live: 2, Cap: 10, OldestWaiting: older},
		}, Capacity{Cap: 2, Live: 2},
			[]Plan{{Name: "a"}, {Name: "b", Short: 1}}},
		{"a build held by its own template's cap does not stop others' headroom", []Load{
			{Name: "a", Cap: 10, Ready: 2},
			{Name: "b", Waiting: 4, Live: 2, Cap: 2, OldestWaiting: older},
		}, Capacity{Cap: 10, Live: 2},
			[]Plan{{Name: "a", Headroom: 2}, {Name: "b", Short: 4}}},
		{"a backed-off template's builds do not stop others' headroom", []Load{
			{Name: "a", Cap: 10, Ready: 2},
			{Name: "b", Waiting: 4, Cap: 10, BackedOff: true, OldestWaiting: older},
		}, Capacity{Cap: 2},
			[]Plan{{Name: "a", Headroom: 2}, {Name: "b", Short: 4}}},
		{"global room shared one at a time", []Load{
			{Name: "a", Cap: 10, Ready: 5},
			{Name: "b", Cap: 10, Ready: 5},
		}, Capacity{Cap: 3},
			[]Plan{{Name: "a", Headroom: 2}, {Name: "b", Headroom: 1}}},
		{"backed off: no headroom", []Load{{Name: "a", Cap: 10, Ready: 2, BackedOff: true}}, Capacity{},
			[]Plan{{Name: "a"}}},
		{"backed off: existing headroom kept", []Load{{Name: "a", Free: 1, Live: 1, Cap: 10, Ready: 2, BackedOff: true}}, Capacity{Live: 1},
			[]Plan{{Name: "a", Keep: 1}}},
		{"probing: one headroom agent finds out", []Load{{Name: "a", Cap: 10, Ready: 2, Probing: true}}, Capacity{},
			[]Plan{{Name: "a", Headroom: 1}}},
		{"probing: and no more while it starts", []Load{{Name: "a", Free: 1, Live: 1, Cap: 10, Ready: 2, Probing: true}}, Capacity{Live: 1},
			[]Plan{{Name: "a", Keep: 1}}},
		{"probing: the demand agent is the probe", []Load{{Name: "a", Waiting: 1, Cap: 10, Ready: 2, Probing: true}}, Capacity{},
			[]Plan{{Name: "a", Demand: 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Fit(tt.loads, tt.c)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Fit (-want +got):\n%s", diff)
			}
		})
	}
}

// TestFitHoldsCaps runs Fit over many random loads and checks the invariants: no cap is exceeded
// by what is created, and headroom is created only when no build short of global room waits.
func TestFitHoldsCaps(t *testing.T) {
	for seed := range 2000 {
		rng := rand.New(rand.NewPCG(uint64(seed), 13))
		r := struct{ n func(int) int }{rng.IntN}
		var loads []Load
		liveTotal := 0
		for i := range 1 + r.n(4) {
			l := Load{Name: string(rune('a' + i)), Waiting: r.n(6), Free: r.n(4), Cap: r.n(8), Ready: r.n(6),
				BackedOff: r.n(5) == 0, Probing: r.n(5) == 0, OldestWaiting: time.Unix(int64(r.n(100)), 0)}
			l.Live = l.Free + r.n(4)
			liveTotal += l.Live
			loads = append(loads, l)
		}
		c := Capacity{Cap: r.n(20), Live: liveTotal, Leaving: r.n(2)}
		plans := Fit(loads, c)
		created, headroom, shortForRoom := 0, 0, false
		for i, p := range plans {
			l := loads[i]
			n := p.Demand + p.Headroom
			created += n
			headroom += p.Headroom
			if l.Cap > 0 && n > 0 && l.Live+n > l.Cap {
				t.Fatalf("seed %d: %s: %d live + %d new exceeds its cap %d: %+v", seed, l.Name, l.Live, n, l.Cap, plans)
			}
			if l.BackedOff && n > 0 {
				t.Fatalf("seed %d: %s backed off but gets %d: %+v", seed, l.Name, n, p)
			}
			if l.Probing && n > 0 && l.Free+n > 1 {
				t.Fatalf("seed %d: %s probing with %d free gets %d: %+v", seed, l.Name, l.Free, n, p)
			}
			if p.Keep > max(l.Free-l.Waiting, 0) || p.Keep > max(l.Ready, 0) {
				t.Fatalf("seed %d: %s keeps %d: %+v of %+v", seed, l.Name, p.Keep, p, l)
			}
			capRoom := l.Cap - l.Live - p.Demand
			if !l.BackedOff && !l.Probing && p.Short > 0 && (l.Cap <= 0 || capRoom > 0) {
				shortForRoom = true
			}
		}
		if c.Cap > 0 && created > 0 && c.Live+created > c.Cap {
			t.Fatalf("seed %d: %d live + %d new exceeds the global cap %d: %+v", seed, c.Live, created, c.Cap, plans)
		}
		if shortForRoom && headroom > 0 {
			t.Fatalf("seed %d: headroom created while a build waits for global room: %+v of %+v", seed, plans, loads)
		}
	}
}
