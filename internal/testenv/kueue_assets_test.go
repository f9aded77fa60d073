package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// TestCheckKueueAssets checks a half-built folder is diagnosed in one go, naming what is missing.
func TestCheckKueueAssets(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]os.FileMode
		want  string // "" for no error
	}{
		{"complete", map[string]os.FileMode{"bin/kueue": 0o755, "crd/a.yaml": 0o644, "webhook/manifests.yaml": 0o644}, ""},
		{"binary not executable", map[string]os.FileMode{"bin/kueue": 0o644, "crd/a.yaml": 0o644, "webhook/manifests.yaml": 0o644}, `["bin/kueue"]`},
		{"empty", nil, `["bin/kueue" "crd/*.yaml" "webhook/manifests.yaml"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, mode := range tt.files {
				path := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, nil, mode); err != nil {
					t.Fatal(err)
				}
			}
			err := checkKueueAssets(dir)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("error %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "make kueue")):
				t.Errorf("error %v, want one naming %s and the fix", err, tt.want)
			}
		})
	}
}

// TestAdjustKueueWebhooks checks the release manifests' kustomization is reproduced: prefixed
// names, and the namespace selector only on the pod, deployment and statefulset webhooks.
func TestAdjustKueueWebhooks(t *testing.T) {
	o := &envtest.WebhookInstallOptions{
		MutatingWebhooks: []*admissionv1.MutatingWebhookConfiguration{{
			ObjectMeta: metav1.ObjectMeta{Name: "mutating-webhook-configuration"},
			Webhooks:   []admissionv1.MutatingWebhook{{Name: "mpod.kb.io"}, {Name: "mclusterqueue.kb.io"}},
		}},
		ValidatingWebhooks: []*admissionv1.ValidatingWebhookConfiguration{{
			ObjectMeta: metav1.ObjectMeta{Name: "validating-webhook-configuration"},
			Webhooks:   []admissionv1.ValidatingWebhook{{Name: "vstatefulset.kb.io"}, {Name: "vjob.kb.io"}},
		}},
	}
	adjustKueueWebhooks(o)
	type hook struct {
		Config, Name string
		Selector     *metav1.LabelSelector
	}
	var got []hook
	for _, c := range o.MutatingWebhooks {
		for _, w := range c.Webhooks {
			got = append(got, hook{c.Name, w.Name, w.NamespaceSelector})
		}
	}
	for _, c := range o.ValidatingWebhooks {
		for _, w := range c.Webhooks {
			got = append(got, hook{c.Name, w.Name, w.NamespaceSelector})
		}
	}
	sel := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
		Key: "kubernetes.io/metadata.name", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"kube-system", "kueue-system"},
	}}}
	want := []hook{
		{"kueue-mutating-webhook-configuration", "mpod.kb.io", sel},
		{"kueue-mutating-webhook-configuration", "mclusterqueue.kb.io", nil},
		{"kueue-validating-webhook-configuration", "vstatefulset.kb.io", sel},
		{"kueue-validating-webhook-configuration", "vjob.kb.io", nil},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("webhooks (-want +got):\n%s", diff)
	}
}
