package warm

import (
	"sort"
	"time"
)

// Load is what Fit needs to know about one template in one decision.
type Load struct {
	Name string
	// Waiting is the number of builds waiting for the template.
	Waiting int
	// Free counts the template's agents with no build yet, each of which will take one: starting,
	// ready (idle, connected, unmarked) and creations not yet visible. Waiting builds are matched to
	// them first; what is left over is headroom.
	Free int
	// Live counts every live pod of the template (busy, terminating and retained included): what
	// Cap limits.
	Live int
	// Cap is the template's maxAgents; <= 0 means none.
	Cap int
	// Ready is the headroom wanted: Desired for the template.
	Ready int
	// OldestWaiting orders templates for global capacity: the longest-waiting build goes first.
	OldestWaiting time.Time
	// BackedOff is true while the template waits after a failure: no agent is created, neither for
	// demand nor for headroom.
	BackedOff bool
	// Probing is true after a failure until an agent of the template comes online: at most one agent
	// with no build at a time, so one agent finds out whether the cause is gone.
	Probing bool
}

// Capacity is the global cap and what uses it.
type Capacity struct {
	Cap     int // live agent pods across all templates; <= 0 means none
	Live    int // every live agent pod of ours, of every template (also ones no longer in the file)
	Leaving int // live pods already being deleted: capacity on its way back
}

// Plan is Fit's answer for one template.
type Plan struct {
	Name     string
	Demand   int // agents to create for waiting builds
	Headroom int // agents to create as ready headroom
	// Keep is how many of the template's free agents with no waiting build to keep as headroom;
	// the others are surplus, released as agents of vanished demand are.
	Keep int
	// Short is the waiting builds that get no agent in this decision (template cap, global cap,
	// backoff or probing).
	Short int
}

// Fit decides, for every template, how many agents to create for demand and for headroom and how
// many free agents to keep, within the template caps and the global cap. Demand always comes first:
//
//  1. Waiting builds beyond the free agents get new agents, within the template's cap, templates
//     with the longest-waiting build first for the global capacity (as without warm).
//  2. If a waiting build that its template's cap would allow still gets no agent because the
//     global cap is reached, no headroom is created anywhere, and headroom agents are given up
//     (Keep lowered, largest first) to free the capacity it needs, counting the pods already
//     leaving.
//  3. Otherwise the global capacity left is shared out as headroom one agent at a time across the
//     templates in order, so one template's large headroom does not starve another's.
//
// Plans come back in the order of loads. Fit with every Ready at 0 creates exactly what the
// controller creates without warm.
func Fit(loads []Load, c Capacity) []Plan {
	plans := make([]Plan, len(loads))
	capRoom := make([]int, len(loads)) // room under each template's cap; -1 unlimited
	for i, l := range loads {
		plans[i].Name = l.Name
		capRoom[i] = -1
		if l.Cap > 0 {
			capRoom[i] = max(l.Cap-l.Live, 0)
		}
	}
	globalRoom := -1
	if c.Cap > 0 {
		globalRoom = max(c.Cap-c.Live, 0)
	}
	within := func(n, room int) int {
		if room < 0 {
			return n
		}
		return min(n, room)
	}

	// 1. Demand, oldest waiting build first.
	order := make([]int, len(loads))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool {
		return loads[order[a]].OldestWaiting.Before(loads[order[b]].OldestWaiting)
	})
	globalShort := 0
	for _, i := range order {
		l := loads[i]
		uncovered := max(l.Waiting-l.Free, 0)
		plans[i].Short = uncovered
		if l.BackedOff || uncovered == 0 {
			continue
		}
		n := uncovered
		if l.Probing {
			n = min(n, max(1-l.Free, 0))
		}
		n = within(n, capRoom[i])
		granted := within(n, globalRoom)
		if globalRoom >= 0 {
			globalRoom -= granted
		}
		globalShort += n - granted
		plans[i].Demand = granted
		plans[i].Short = uncovered - granted
	}

	// Headroom already there: free agents beyond the waiting builds, up to what is wanted.
	keepTotal := 0
	for i, l := range loads {
		spare := max(l.Free-l.Waiting, 0)
		plans[i].Keep = min(spare, max(l.Ready, 0))
		keepTotal += plans[i].Keep
	}

	// 2. Waiting builds need the global capacity that headroom holds.
	if need := globalShort - c.Leaving; globalShort > 0 {
		for need > 0 && keepTotal > 0 {
			largest := 0
			for i := range plans {
				if plans[i].Keep > plans[largest].Keep {
					largest = i
				}
			}
			plans[largest].Keep--
			keepTotal--
			need--
		}
		return plans
	}

	// 3. Headroom from what is left, one agent per template per round.
	want := make([]int, len(loads))
	for i, l := range loads {
		if l.BackedOff {
			continue
		}
		w := max(l.Ready-plans[i].Keep, 0)
		if l.Probing {
			w = min(w, max(1-l.Free-plans[i].Demand, 0))
		}
		if capRoom[i] >= 0 {
			w = min(w, max(capRoom[i]-plans[i].Demand, 0))
		}
		want[i] = w
	}
	for more := true; more && globalRoom != 0; {
		more = false
		for i := range plans {
			if want[i] == 0 || globalRoom == 0 {
				continue
			}
			want[i]--
			plans[i].Headroom++
			if globalRoom > 0 {
				globalRoom--
			}
			more = true
		}
	}
	return plans
}
