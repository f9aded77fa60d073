package lifecycle

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
	corelisters "k8s.io/client-go/listers/core/v1"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/cache"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// fakeJenkins is a narrow stand-in for the Jenkins client in act's unit tests: it records the calls
// and answers from fields. The end-to-end tests run the real client against the emulator.
type fakeJenkins struct {
	mu        sync.Mutex
	calls     []string
	queue     []jenkins.Demand
	computers []jenkins.Computer
	jobLabels map[string]string
	// fail makes every call whose name starts with a key return its error.
	fail map[string]error
}

func (f *fakeJenkins) record(call string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, call)
	for prefix, err := range f.fail {
		if strings.HasPrefix(call, prefix) {
			return err
		}
	}
	return nil
}

func (f *fakeJenkins) Calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string{}, f.calls...)
}

func (f *fakeJenkins) Queue(context.Context) ([]jenkins.Demand, error) {
	if err := f.record("Queue"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]jenkins.Demand(nil), f.queue...), nil
}

func (f *fakeJenkins) Computers(context.Context) ([]jenkins.Computer, error) {
	if err := f.record("Computers"); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]jenkins.Computer(nil), f.computers...), nil
}

func (f *fakeJenkins) CreateNode(_ context.Context, n jenkins.NodeSpec) error {
	return f.record("CreateNode " + strings.SplitN(n.Name, "-", 2)[0])
}

func (f *fakeJenkins) DeleteNode(_ context.Context, name string) error {
	return f.record("DeleteNode " + name)
}

func (f *fakeJenkins) SetOnline(_ context.Context, name string) error {
	return f.record("SetOnline " + name)
}

func (f *fakeJenkins) SetTemporarilyOffline(_ context.Context, name, reason string) error {
	return f.record("SetTemporarilyOffline " + name + " " + reason)
}

func (f *fakeJenkins) NodeSecret(_ context.Context, name string) (string, error) {
	return "0123456789abcdef", f.record("NodeSecret " + strings.SplitN(name, "-", 2)[0])
}

func (f *fakeJenkins) JobLabelExpression(_ context.Context, taskURL string) (string, error) {
	if err := f.record("JobLabelExpression " + taskURL); err != nil {
		return "", err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	expr, ok := f.jobLabels[taskURL]
	if !ok {
		return "", fmt.Errorf("job %s: %w", taskURL, jenkins.ErrNotFound)
	}
	return expr, nil
}

func (f *fakeJenkins) EnsurePlaceholderNode(_ context.Context, name, _, _ string) error {
	return f.record("EnsurePlaceholderNode " + name)
}

type staticTemplates struct{ set *podtemplate.Set }

func (s staticTemplates) Current() *podtemplate.Set { return s.set }

// newTestController is a controller on a fake clientset and fakeJenkins, with listers over
// indexers the test fills, and its clock at t0.
func newTestController(t *testing.T, objects ...*corev1.Pod) (*Controller, *fake.Clientset, *fakeJenkins) {
	t.Helper()
	kube := fake.NewClientset()
	jc := &fakeJenkins{fail: map[string]error{}, jobLabels: map[string]string{}}
	c, err := New(zaptest.NewLogger(t), jc, kube, staticTemplates{testTemplates()}, nil, Config{Namespace: "ci", JenkinsURL: "http://j/", Identity: testID})
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return t0 }
	indexers := cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc}
	pods := cache.NewIndexer(cache.MetaNamespaceKeyFunc, indexers)
	secrets := cache.NewIndexer(cache.MetaNamespaceKeyFunc, indexers)
	for _, p := range objects {
		p = p.DeepCopy()
		p.Namespace = "ci"
		_ = pods.Add(p)
		if err := kube.Tracker().Add(p); err != nil {
			t.Fatal(err)
		}
	}
	c.podLister = corelisters.NewPodLister(pods).Pods("ci")
	c.secretLister = corelisters.NewSecretLister(secrets).Secrets("ci")
	return c, kube, jc
}

// kubeWrites lists the fake clientset's writes (Events aside) as "verb resource name" lines.
func kubeWrites(kube *fake.Clientset) []string {
	out := []string{}
	for _, a := range kube.Actions() {
		if a.GetResource().Resource == "events" {
			continue
		}
		switch x := a.(type) {
		case k8stesting.CreateAction:
			name := ""
			if m, ok := x.GetObject().(metav1.Object); ok {
				name = m.GetName()
			}
			out = append(out, "create "+a.GetResource().Resource+" "+name)
		case k8stesting.DeleteAction:
			out = append(out, "delete "+a.GetResource().Resource+" "+x.GetName())
		case k8stesting.PatchAction:
			out = append(out, "patch "+a.GetResource().Resource+" "+x.GetName())
		}
	}
	return out
}

var errUnavailable = fmt.Errorf("jenkins POST /computer/x: %w", jenkins.ErrUnavailable)
