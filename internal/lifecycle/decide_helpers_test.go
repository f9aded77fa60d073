package lifecycle

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// The world the decide tests build snapshots in: templates in file order, agents made of a pod, a
// node or both, builds in the queue.

// testID is the installation the tests' agents belong to.
var testID = Identity{Namespace: "ci", ID: "test-installation", Key: []byte("0123456789abcdef")}

var testDecideConfig = DecideConfig{
	Identity:     testID,
	ReleaseGrace: 10 * time.Second, OrphanGrace: time.Minute, UnschedulableGrace: time.Minute,
	DefaultConnectTimeout: 5 * time.Minute, ConfigErrorGrace: 15 * time.Second,
	BackoffBase: 5 * time.Second, BackoffMax: time.Minute,
}

func testTemplates() *podtemplate.Set {
	return &podtemplate.Set{Templates: []*podtemplate.Template{
		{Name: "maven", Labels: []string{"maven", "jdk17", "linux"}, MaxAgents: 3},
		{Name: "docker", Labels: []string{"docker", "linux"}, MaxAgents: 10},
		{Name: "any", Mode: podtemplate.ModeNormal, Labels: []string{"any"}},
	}}
}

// world builds a snapshot at t0 with a fresh Jenkins view.
type testWorld struct{ snap Snapshot }

func newTestWorld() *testWorld {
	return &testWorld{snap: Snapshot{At: t0, JenkinsFresh: true, Templates: testTemplates(), JobLabels: map[string]JobLabel{}}}
}

// pod adds an agent pod of template, age old at the Jenkins view's time.
func (w *testWorld) pod(name, template string, age time.Duration, mutate ...func(*corev1.Pod)) *testWorld {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ci", UID: types.UID("uid-" + name), CreationTimestamp: metav1.NewTime(t0.Add(-age)),
			Labels:      map[string]string{podtemplate.LabelManagedBy: podtemplate.ManagedByValue, podtemplate.LabelTemplate: template},
			Annotations: map[string]string{annotationConnectTimeout: "5m0s", annotationCreatedBy: testID.creationRecord(name)}},
		Status: corev1.PodStatus{Phase: corev1.PodRunning},
	}
	for _, m := range mutate {
		m(p)
	}
	w.snap.Pods = append(w.snap.Pods, p)
	return w
}

// node adds a Jenkins node of ours (offline, not connected yet unless mutated).
func (w *testWorld) node(name, template string, age time.Duration, mutate ...func(*jenkins.Computer)) *testWorld {
	c := jenkins.Computer{Name: name, Description: nodeDescription(testID, name, template, t0.Add(-age)), Offline: true, NumExecutors: 1,
		Executors: []jenkins.Executor{{Idle: true}}}
	for _, m := range mutate {
		m(&c)
	}
	w.snap.Computers = append(w.snap.Computers, c)
	return w
}

// agent adds both halves.
func (w *testWorld) agent(name, template string, age time.Duration, node ...func(*jenkins.Computer)) *testWorld {
	return w.pod(name, template, age).node(name, template, age, node...)
}

func (w *testWorld) secret(name string, age time.Duration, owner *corev1.Pod) *testWorld {
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ci", UID: types.UID("uid-secret-" + name), CreationTimestamp: metav1.NewTime(t0.Add(-age)),
		Labels: map[string]string{podtemplate.LabelManagedBy: podtemplate.ManagedByValue}}}
	if owner != nil {
		podtemplate.SetSecretOwner(s, owner)
	}
	w.snap.Secrets = append(w.snap.Secrets, s)
	return w
}

// build queues a build asking for label, waiting for age.
func (w *testWorld) build(id int64, label string, age time.Duration) *testWorld {
	w.snap.Demand = append(w.snap.Demand, jenkins.Demand{QueueID: id, Label: label, Kind: jenkins.KindFreestyle, InQueueSince: t0.Add(-age)})
	return w
}

func (w *testWorld) demand(d jenkins.Demand) *testWorld {
	w.snap.Demand = append(w.snap.Demand, d)
	return w
}

func (w *testWorld) creating(name, template string) *testWorld {
	w.snap.Creating = append(w.snap.Creating, Creation{Name: name, Template: template})
	return w
}

func (w *testWorld) podNamed(name string) *corev1.Pod {
	for _, p := range w.snap.Pods {
		if p.Name == name {
			return p
		}
	}
	panic("no pod " + name)
}

// actions sums decided actions up as "Kind agent [template] [extras]" lines.
func actions(d Decision) []string {
	out := []string{}
	for _, a := range d.Actions {
		s := string(a.Kind)
		if a.Agent != "" {
			s += " " + a.Agent
		} else {
			s += " " + a.Template
		}
		if a.Kind == ActCreate && !a.QueuedAt.IsZero() {
			s += fmt.Sprintf(" queued-%s", t0.Sub(a.QueuedAt))
		}
		if a.Retain {
			s += " retain"
		}
		if a.Secret != nil && a.Kind != ActDeleteSecret && a.Kind != ActOwnSecret {
			s += " +secret"
		}
		if a.Build != "" {
			s += " build=" + a.Build
		}
		if !a.Reason.IsZero() && a.Kind != ActFinish {
			s += " " + string(a.Reason.Kind)
		}
		out = append(out, s)
	}
	return out
}

// waits sums the waiting table up as "label→template: builds why" lines.
func waits(d Decision) []string {
	out := []string{}
	for _, w := range d.Status.Waiting {
		s := fmt.Sprintf("%s→%s: %d %s", w.Label, w.Template, w.Builds, w.Why.Kind)
		if w.Why.Detail != "" {
			s += " (" + w.Why.Detail + ")"
		}
		if !w.Why.Until.IsZero() {
			s += " until t0+" + w.Why.Until.Sub(t0).String()
		}
		out = append(out, s)
	}
	return out
}

func notices(d Decision) []string {
	out := []string{}
	for _, n := range d.Notices {
		s := string(n.Kind) + " " + strings.TrimSpace(n.Agent+" "+n.Label)
		if n.Backoff > 0 {
			s += " backoff=" + n.Backoff.String()
		}
		out = append(out, s)
	}
	return out
}

func withAnnotation(k, v string) func(*corev1.Pod) {
	return func(p *corev1.Pod) { p.Annotations[k] = v }
}

func pending(p *corev1.Pod) { p.Status.Phase = corev1.PodPending }
