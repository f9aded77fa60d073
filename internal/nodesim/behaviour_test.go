package nodesim

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestParseBehaviour(t *testing.T) {
	tests := []struct {
		in      string
		want    Behaviour
		wantErr string
	}{
		{in: "", want: Behaviour{}},
		{in: "crash", want: Behaviour{Crash: true}},
		{in: "unschedulable", want: Behaviour{Unschedulable: true}},
		{in: "no-connect", want: Behaviour{NoConnect: true}},
		{in: "pull-error", want: Behaviour{PullError: true}},
		{in: "slow-start=3s", want: Behaviour{StartDelay: 3 * time.Second}},
		{in: " slow-start = 1m30s , crash ", want: Behaviour{StartDelay: 90 * time.Second, Crash: true}},
		{in: "crash,,no-connect", want: Behaviour{Crash: true, NoConnect: true}},
		{in: "slow-start", wantErr: "slow-start needs a duration"},
		{in: "slow-start=soon", wantErr: "slow-start duration"},
		{in: "slow-start=-1s", wantErr: "negative"},
		{in: "crash=yes", wantErr: `"crash" takes no value`},
		{in: "=3s", wantErr: "has no name"},
		{in: "explode", wantErr: `unknown behaviour "explode"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseBehaviour(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseBehaviour(%q) error = %v, want one containing %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseBehaviour(%q): %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseBehaviour(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func FuzzParseBehaviour(f *testing.F) {
	for _, s := range []string{"", "crash", "slow-start=3s,no-connect", "unschedulable, pull-error", "slow-start=", "=", ",,"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseBehaviour(s)
		if err != nil {
			return
		}
		// What parses prints back in the same syntax, and that parses to the same behaviour.
		text := b.String()
		if text == "healthy" {
			if b != (Behaviour{}) {
				t.Fatalf("%q parsed to %+v but prints as healthy", s, b)
			}
			return
		}
		again, err := ParseBehaviour(text)
		if err != nil {
			t.Fatalf("ParseBehaviour(%q) = %+v, whose String %q does not parse: %v", s, b, text, err)
		}
		if again != b {
			t.Fatalf("round trip of %q: %+v then %+v", s, b, again)
		}
	})
}

func TestParseImage(t *testing.T) {
	tests := []struct {
		in   string
		want ImageRef
	}{
		{"jenkins/inbound-agent", ImageRef{Host: "docker.io", Path: "jenkins/inbound-agent", Tag: "latest"}},
		{"busybox:1.36", ImageRef{Host: "docker.io", Path: "library/busybox", Tag: "1.36"}},
		{"nonexistent.invalid/jenkins/inbound-agent:3283.v92c105e0f819-1", ImageRef{Host: "nonexistent.invalid", Path: "jenkins/inbound-agent", Tag: "3283.v92c105e0f819-1"}},
		{"localhost:5000/agent:does-not-exist", ImageRef{Host: "localhost:5000", Path: "agent", Tag: "does-not-exist"}},
		{"localhost/agent", ImageRef{Host: "localhost", Path: "agent", Tag: "latest"}},
		{"registry:5000/team/agent", ImageRef{Host: "registry:5000", Path: "team/agent", Tag: "latest"}},
		{"ghcr.io/org/img@sha256:abc", ImageRef{Host: "ghcr.io", Path: "org/img", Digest: "sha256:abc"}},
		{"ghcr.io/org/img:1@sha256:abc", ImageRef{Host: "ghcr.io", Path: "org/img", Tag: "1", Digest: "sha256:abc"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, ParseImage(tt.in)); diff != "" {
				t.Errorf("ParseImage(%q) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
}

func FuzzParseImage(f *testing.F) {
	for _, s := range []string{"jenkins/inbound-agent:latest", "localhost:5000/a", "a@sha256:x", "nonexistent.invalid/x:y", ":", "/", "a/b:c/d", "::@0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r := ParseImage(s)
		// The fully qualified form names the same image: parsing it again changes nothing.
		if again := ParseImage(r.String()); again != r {
			t.Fatalf("ParseImage(%q) = %+v; its String %q parses to %+v", s, r, r.String(), again)
		}
		if r.Tag == "" && r.Digest == "" {
			t.Fatalf("ParseImage(%q) has neither tag nor digest", s)
		}
	})
}

func pod(annotations map[string]string, images ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "t-abcde", Annotations: annotations}}
	for i, img := range images {
		name := "jnlp"
		if i > 0 {
			name = "side" + string(rune('0'+i))
		}
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: name, Image: img})
	}
	return p
}

func TestDefaultBehaviour(t *testing.T) {
	const good = "jenkins/inbound-agent:3283.v92c105e0f819-1"
	tests := []struct {
		name string
		pod  *corev1.Pod
		want Behaviour
	}{
		{"healthy", pod(nil, good), Behaviour{}},
		{"bad host", pod(nil, "nonexistent.invalid/jenkins/inbound-agent"), Behaviour{PullError: true}},
		{"bad tag in a sidecar", pod(nil, good, "maven:does-not-exist"), Behaviour{PullError: true}},
		{"tag-like path is not a tag", pod(nil, "does-not-exist/agent"), Behaviour{}},
		{"crash", pod(map[string]string{AnnotationBehaviour: "crash"}, good), Behaviour{Crash: true}},
		{"unschedulable", pod(map[string]string{AnnotationBehaviour: "unschedulable"}, good), Behaviour{Unschedulable: true}},
		{"slow start", pod(map[string]string{AnnotationBehaviour: "slow-start=3s"}, good), Behaviour{StartDelay: 3 * time.Second}},
		{"no connect plus bad image", pod(map[string]string{AnnotationBehaviour: "no-connect"}, "x:does-not-exist"), Behaviour{NoConnect: true, PullError: true}},
		{"unparsable annotation is healthy", pod(map[string]string{AnnotationBehaviour: "explode"}, good), Behaviour{}},
		{"other annotations ignored", pod(map[string]string{"nodesim/behaviour": "crash"}, good), Behaviour{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, DefaultBehaviour(tt.pod)); diff != "" {
				t.Errorf("DefaultBehaviour (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPullErrorMessage(t *testing.T) {
	tests := []struct {
		image, want string
	}{
		{
			"nonexistent.invalid/jenkins/inbound-agent:1",
			`rpc error: code = Unknown desc = failed to pull and unpack image "nonexistent.invalid/jenkins/inbound-agent:1": ` +
				`failed to resolve reference "nonexistent.invalid/jenkins/inbound-agent:1": failed to do request: ` +
				`Head "https://nonexistent.invalid/v2/jenkins/inbound-agent/manifests/1": dial tcp: lookup nonexistent.invalid: no such host`,
		},
		{
			"maven:does-not-exist",
			`rpc error: code = NotFound desc = failed to pull and unpack image "docker.io/library/maven:does-not-exist": ` +
				`failed to resolve reference "docker.io/library/maven:does-not-exist": docker.io/library/maven:does-not-exist: not found`,
		},
	}
	for _, tt := range tests {
		if got := pullErrorMessage(tt.image); got != tt.want {
			t.Errorf("pullErrorMessage(%q)\n got %s\nwant %s", tt.image, got, tt.want)
		}
	}
}
