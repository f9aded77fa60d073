package lifecycle

import (
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// Eviction is a pod of ours Kueue evicted, as the pod watch saw it. Kueue marks the pod and deletes
// it at once, and the node simulator (a kubelet) finishes the deletion within milliseconds, so a
// poll reading the cache may never see the pod Terminating: the watch keeps what it saw for decide.
type Eviction struct {
	Agent    string
	Template string
	Reason   Reason
	Pod      *corev1.Pod
	At       time.Time
}

// evictionKeep bounds how long an eviction is kept: decide tells it on the next poll; the rest is
// memory a watch storm must not grow without end.
const evictionKeep = 10 * time.Minute

// evictionLog collects evictions from the pod watch's handlers for observe.
type evictionLog struct {
	mu   sync.Mutex
	seen map[string]Eviction
}

func newEvictionLog() *evictionLog { return &evictionLog{seen: map[string]Eviction{}} }

// note records pod if Kueue evicted it (first sighting wins).
func (l *evictionLog) note(obj any, now time.Time) {
	if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = tomb.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok || l == nil {
		return
	}
	r, evicted := kueueEviction(pod)
	if !evicted {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if _, ok := l.seen[pod.Name]; !ok {
		l.seen[pod.Name] = Eviction{Agent: pod.Name, Template: pod.Labels[podtemplate.LabelTemplate], Reason: r, Pod: pod, At: now}
	}
}

// list returns the evictions kept, forgetting those older than evictionKeep.
func (l *evictionLog) list(now time.Time) []Eviction {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Eviction
	for name, e := range l.seen {
		if now.Sub(e.At) > evictionKeep {
			delete(l.seen, name)
			continue
		}
		out = append(out, e)
	}
	return out
}

// evictions tells each Kueue eviction once (Event, log, lost-build metric) with the build the agent
// ran, from Jenkins if it still shows it, else from memory; it returns the evicted agents' names.
// A pod Kueue marked that this poll still sees Terminating counts too.
func (d *Decision) evictions(w *world, list []Eviction, now time.Time) map[string]bool {
	out := map[string]bool{}
	for _, a := range w.agents {
		if a.Pod != nil && a.State == Terminating {
			if r, ok := kueueEviction(a.Pod); ok {
				list = append(list, Eviction{Agent: a.Name, Template: a.Template, Reason: r, Pod: a.Pod})
			}
		}
	}
	for _, e := range list {
		out[e.Agent] = true
		if !d.Memory.once("evicted/"+e.Agent, now) {
			continue
		}
		build := d.Memory.Builds[e.Agent]
		if a := w.byName[e.Agent]; a != nil && a.Build != "" {
			build = a.Build
		}
		d.Notices = append(d.Notices, Notice{Kind: NoticeEvicted, Agent: e.Agent, Template: e.Template, Pod: e.Pod, Reason: e.Reason, Build: build})
	}
	return out
}

// forgetBuilds drops the remembered builds of agents that are gone (neither pod nor node) and of
// evicted agents already told.
func (d *Decision) forgetBuilds(w *world, evicted map[string]bool) {
	for name := range d.Memory.Builds {
		if _, exists := w.byName[name]; !exists && !evicted[name] {
			delete(d.Memory.Builds, name)
		}
	}
}
