package lifecycle

import (
	"context"
	"sync"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// busyWatch reads the computer list alone at BusyPollInterval while any agent of ours is connected
// (or about to be) and unmarked: the window in which Jenkins may hand it a build that a 1 s poll could
// miss entirely if the build is short. Outside that window it costs nothing. It is the fast path of
// busy marking: what it finds goes to act's mark lane directly, without waiting for a poll.
type busyWatch struct {
	mu      sync.Mutex
	exposed int
	kick    chan struct{}
}

func newBusyWatch() *busyWatch { return &busyWatch{kick: make(chan struct{}, 1)} }

// set is the poll's count of exposed agents.
func (w *busyWatch) set(n int) {
	w.mu.Lock()
	w.exposed = n
	w.mu.Unlock()
	if n > 0 {
		w.wake()
	}
}

// arm counts one more exposed agent: one just created.
func (w *busyWatch) arm() {
	w.mu.Lock()
	w.exposed++
	w.mu.Unlock()
	w.wake()
}

func (w *busyWatch) wake() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

func (w *busyWatch) armed() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.exposed > 0
}

// run watches until ctx ends; mark receives the mark actions.
func (w *busyWatch) run(ctx context.Context, id Identity, every time.Duration, read func(context.Context) ([]jenkins.Computer, error), mark func(Action)) {
	for {
		if !w.armed() {
			select {
			case <-ctx.Done():
				return
			case <-w.kick:
				continue
			}
		}
		if !waitfor.Duration(ctx, every) {
			return
		}
		readCtx, cancel := context.WithTimeout(ctx, markTimeout)
		computers, err := read(readCtx)
		cancel()
		if err != nil {
			continue
		}
		for _, a := range busyUnmarked(id, computers) {
			mark(a)
		}
	}
}

// busyUnmarked are the mark actions for agents of ours that run a build and carry no mark of ours.
// Only nodes proven ours: legacy nodes are marked by the poll, which knows whether their pod is ours.
func busyUnmarked(id Identity, computers []jenkins.Computer) []Action {
	var out []Action
	for i := range computers {
		comp := &computers[i]
		owner, desc := nodeOwnership(id, comp)
		if owner != nodeOurs || !comp.Busy() || (carriesOurMark(comp) && !readyMarked(comp)) {
			continue
		}
		out = append(out, Action{Kind: ActMarkBusy, Agent: comp.Name, Template: desc.Template, State: Busy, Node: true, Build: currentBuild(comp)})
	}
	return out
}
