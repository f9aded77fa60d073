package podtemplate

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestRenderKueueQueue checks where the queue label comes from: the template's own label as
// written, then queue:, then the installation's default; Kueue's other labels pass through.
func TestRenderKueueQueue(t *testing.T) {
	const doc = `templates:
  - name: base
    queue: team-queue
  - name: inherits
    labels: [inherits]
    inheritFrom: [base]
  - name: own-field
    labels: [own-field]
    queue: fast
  - name: own-label
    labels: [own-label]
    queue: fast
    pod:
      metadata:
        labels:
          kueue.x-k8s.io/queue-name: fast
          kueue.x-k8s.io/priority-class: ready-agents
  - name: opt-out
    labels: [opt-out]
    pod:
      metadata:
        labels: {kueue.x-k8s.io/queue-name: ""}
  - name: plain
    labels: [plain]
`
	set, err := Parse("kueue.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		template     string
		defaultQueue string
		want         map[string]string // Kueue labels on the pod
	}{
		{"inherits", "", map[string]string{LabelKueueQueue: "team-queue"}},
		{"inherits", "installation", map[string]string{LabelKueueQueue: "team-queue"}},
		{"own-field", "installation", map[string]string{LabelKueueQueue: "fast"}},
		{"own-label", "installation", map[string]string{LabelKueueQueue: "fast", LabelKueuePriorityClass: "ready-agents"}},
		{"opt-out", "installation", map[string]string{LabelKueueQueue: ""}},
		{"plain", "installation", map[string]string{LabelKueueQueue: "installation"}},
		{"plain", "", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.template+"/"+tt.defaultQueue, func(t *testing.T) {
			tmpl, ok := set.Get(tt.template)
			if !ok {
				t.Fatalf("no template %s", tt.template)
			}
			id := goldenIdentity(tt.template)
			id.Queue = tt.defaultQueue
			pod, _, err := Render(tmpl, id)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for k, v := range pod.Labels {
				if strings.HasPrefix(k, "kueue.x-k8s.io/") {
					got[k] = v
				}
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Kueue labels (-want +got):\n%s", diff)
			}
		})
	}
}

// TestKueueQueueErrors checks bad queue names and a conflicting pair are refused with the field.
func TestKueueQueueErrors(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"bad field", `templates:
  - name: a
    labels: [a]
    queue: Team_A
`, `kueue.yaml:4: templates[0].queue: invalid LocalQueue name "Team_A"`},
		{"empty field", `templates:
  - name: a
    labels: [a]
    queue: ""
`, `kueue.yaml:4: templates[0].queue: invalid LocalQueue name "": must not be empty`},
		{"bad label", `templates:
  - name: a
    labels: [a]
    pod:
      metadata:
        labels: {kueue.x-k8s.io/queue-name: a.-b}
`, `templates[0].pod.metadata.labels.kueue.x-k8s.io/queue-name: invalid LocalQueue name "a.-b"`},
		{"conflict", `templates:
  - name: a
    labels: [a]
    queue: one
    pod:
      metadata:
        labels: {kueue.x-k8s.io/queue-name: two}
`, `kueue.yaml:4: templates[0].queue: "one", but pod.metadata.labels sets kueue.x-k8s.io/queue-name to "two": set one of them`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("kueue.yaml", []byte(tt.doc))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestRenderRejectsBadDefaultQueue checks the installation's queue is checked like a template's.
func TestRenderRejectsBadDefaultQueue(t *testing.T) {
	set, err := Parse("kueue.yaml", []byte("templates:\n  - name: a\n    labels: [a]\n"))
	if err != nil {
		t.Fatal(err)
	}
	tmpl, _ := set.Get("a")
	id := goldenIdentity("a")
	id.Queue = "Not A Queue"
	_, _, err = Render(tmpl, id)
	if want := `identity: Kueue queue "Not A Queue"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want one containing %q", err, want)
	}
}
