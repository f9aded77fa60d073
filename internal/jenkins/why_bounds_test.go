package jenkins

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
)

// queueOf is a /queue/api/json answer with one buildable pipeline placeholder per why, as Jenkins
// 2.4xx writes them.
func queueOf(t testing.TB, whys ...string) []byte {
	t.Helper()
	type task struct {
		Class string `json:"_class"`
		Name  string `json:"name"`
		URL   string `json:"url"`
	}
	type item struct {
		Class     string `json:"_class"`
		ID        int64  `json:"id"`
		Why       string `json:"why"`
		Buildable bool   `json:"buildable"`
		Task      task   `json:"task"`
	}
	var q struct {
		Items []item `json:"items"`
	}
	for i, w := range whys {
		q.Items = append(q.Items, item{Class: "hudson.model.Queue$BuildableItem", ID: int64(i + 1), Why: w, Buildable: true,
			Task: task{Class: classPlaceholder, Name: fmt.Sprintf("part of p #%d", i+1), URL: fmt.Sprintf("job/p/%d/", i+1)}})
	}
	b, err := json.Marshal(q)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func noNodes(label string) string {
	return "There are no nodes with the label \u2018" + label + "\u2019"
}

// TestQueueHostileLabels: a why naming a label past labelexpr's bounds makes that one item an
// error, and every other item is read as before. Before the bounds, the 1 MB of "(" ended the
// whole process with "fatal error: stack overflow".
func TestQueueHostileLabels(t *testing.T) {
	deep := strings.Repeat("(", 10_000) + "a" + strings.Repeat(")", 10_000)
	whys := []string{
		noNodes(strings.Repeat("(", 1<<20)),
		"Waiting for next available executor on \u2018linux\u2019",
		noNodes(deep),
		"Waiting for next available executor on \u2018" + strings.Repeat("x", labelexpr.MaxLength+1) + "\u2019",
		"\u2018n1\u2019 doesn\u2019t have label \u2018" + strings.Repeat("!(", 200) + "\u2019; \u2018n2\u2019 is offline",
		noNodes("linux && docker"),
	}
	got, err := parseQueue(queueOf(t, whys...), nil)
	if err != nil {
		t.Fatalf("parseQueue: %v", err)
	}
	type reading struct {
		Label, Node string
		Ambiguous   bool
		Err         error
	}
	var gotR []reading
	for _, d := range got {
		gotR = append(gotR, reading{d.Label, d.Node, d.Ambiguous, d.Err})
	}
	want := []reading{
		{Err: labelexpr.ErrTooLong},
		{Label: "linux"},
		{Err: labelexpr.ErrTooLong}, // 20 001 bytes: the length bound comes first
		{Err: labelexpr.ErrTooLong},
		{Err: labelexpr.ErrTooDeep},
		{Label: "linux&&docker"},
	}
	if diff := cmp.Diff(want, gotR, cmpopts.EquateErrors()); diff != "" {
		t.Errorf("demands mismatch (-want +got):\n%s", diff)
	}
	for _, d := range got {
		if d.Err != nil && len(d.Err.Error()) > 400 {
			t.Errorf("item %d: error of %d bytes: %.200s...", d.QueueID, len(d.Err.Error()), d.Err)
		}
	}
}

// BenchmarkQueueLongLabels is the poll of the issue: 100 queued items whose why names a 10 KB
// expression. Before: ~3 s a poll (quadratic printing, every item parsed anew); now each distinct
// text is parsed once, linearly.
func BenchmarkQueueLongLabels(b *testing.B) {
	expr := strings.TrimSuffix(strings.Repeat("a && ", 2000), " && ")
	whys := make([]string, 100)
	for i := range whys {
		whys[i] = noNodes(expr)
	}
	body := queueOf(b, whys...)
	for b.Loop() {
		d, err := parseQueue(body, nil)
		if err != nil || len(d) != 100 || d[0].Err != nil {
			b.Fatalf("parseQueue: %d demands, %v", len(d), err)
		}
	}
}

func TestParseWhyErrIsOnlyForBounds(t *testing.T) {
	// An ordinary unparseable label (Jenkins takes it for one atom) is no error.
	w := ParseWhy(noNodes("a b"))
	if w.Err != nil || w.Label != `"a b"` {
		t.Errorf("ParseWhy = %+v, want the label \"a b\" and no error", w)
	}
	if !errors.Is(ParseWhy(noNodes(strings.Repeat("(", 200))).Err, labelexpr.ErrTooDeep) {
		t.Error("200 ( : want ErrTooDeep")
	}
}
