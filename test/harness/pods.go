package harness

import (
	"context"
	"errors"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// PodTimes is when the harness's watch saw one pod appear, get its deletion requested and go.
// Watch arrival is used rather than the pod's own timestamps, which have 1 s resolution.
type PodTimes struct {
	Template        string
	Added           time.Time
	DeleteRequested time.Time // deletionTimestamp first seen set (or the delete, when it came without one)
	Gone            time.Time
}

// PodTracker follows the pods of one namespace through a watch and keeps, per pod, its times, and
// the most pods alive at once in total and per template: the caps a provisioner must never exceed,
// counted from everything the apiserver ever showed (a terminating pod still counts).
type PodTracker struct {
	mu          sync.Mutex
	pods        map[string]*PodTimes
	live        map[string]int // per template
	total       int
	maxTotal    int
	maxTemplate map[string]int
}

// TrackPods starts a tracker of the pods in ns matching selector ("" = all) and returns once its
// cache has synced.
func TrackPods(ctx context.Context, client kubernetes.Interface, ns, selector string) (*PodTracker, error) {
	t := &PodTracker{pods: map[string]*PodTimes{}, live: map[string]int{}, maxTemplate: map[string]int{}}
	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(ns),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = selector }))
	inf := factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { t.seen(obj.(*corev1.Pod)) },
		UpdateFunc: func(_, obj any) { t.seen(obj.(*corev1.Pod)) },
		DeleteFunc: func(obj any) {
			if tomb, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tomb.Obj
			}
			if pod, ok := obj.(*corev1.Pod); ok {
				t.gone(pod)
			}
		},
	}); err != nil {
		return nil, err
	}
	factory.Start(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), inf.HasSynced) {
		return nil, errors.New("pod watch did not sync")
	}
	return t, nil
}

func (t *PodTracker) seen(pod *corev1.Pod) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.pods[pod.Name]
	if !ok {
		p = &PodTimes{Template: pod.Labels[podtemplate.LabelTemplate], Added: now}
		t.pods[pod.Name] = p
		t.live[p.Template]++
		t.total++
		t.maxTotal = max(t.maxTotal, t.total)
		t.maxTemplate[p.Template] = max(t.maxTemplate[p.Template], t.live[p.Template])
	}
	if pod.DeletionTimestamp != nil && p.DeleteRequested.IsZero() {
		p.DeleteRequested = now
	}
}

func (t *PodTracker) gone(pod *corev1.Pod) {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if p, ok := t.pods[pod.Name]; ok && p.Gone.IsZero() {
		p.Gone = now
		if p.DeleteRequested.IsZero() {
			p.DeleteRequested = now
		}
		t.live[p.Template]--
		t.total--
	}
}

// Get returns a copy of one pod's times.
func (t *PodTracker) Get(name string) (PodTimes, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	p, ok := t.pods[name]
	if !ok {
		return PodTimes{}, false
	}
	return *p, true
}

// Created is the number of distinct pods seen, and when the last of them appeared.
func (t *PodTracker) Created() (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var last time.Time
	for _, p := range t.pods {
		if p.Added.After(last) {
			last = p.Added
		}
	}
	return len(t.pods), last
}

// Live is the number of pods alive now.
func (t *PodTracker) Live() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// Max returns the most pods alive at once, in total and per template.
func (t *PodTracker) Max() (int, map[string]int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	per := map[string]int{}
	for k, v := range t.maxTemplate {
		per[k] = v
	}
	return t.maxTotal, per
}
