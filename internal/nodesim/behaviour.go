package nodesim

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// AnnotationBehaviour selects a failure for one pod; see the package doc for its values.
const AnnotationBehaviour = "nodesim.jenkins-agent-provisioner/behaviour"

// BadImageHost and BadImageTag are the image parts DefaultBehaviour reads as "cannot be pulled":
// .invalid is a reserved top-level domain (RFC 2606), so no real registry can ever answer for it.
const (
	BadImageHost = "nonexistent.invalid"
	BadImageTag  = "does-not-exist"
)

// Behaviour is what the simulator plays for one pod. The zero value is a healthy pod.
type Behaviour struct {
	PullError     bool          // ErrImagePull then ImagePullBackOff, never runs
	Crash         bool          // agent container exits 1 right after start
	Unschedulable bool          // never bound; PodScheduled=False reason Unschedulable
	StartDelay    time.Duration // time between bind and Running (sandbox, image pull, container start)
	NoConnect     bool          // container runs but the agent never reaches Jenkins
	ScheduleDelay time.Duration // time between the simulator first seeing the pod and binding it
	ConnectDelay  time.Duration // time between the agent container starting and its first connection (JVM start, remoting handshake)
}

// StartUp is a start-up time split as a real cluster spends it: scheduling (pod created → bound),
// starting (bound → containers running: sandbox, image pull, container start) and connecting
// (container running → agent online in Jenkins: the JVM starting, remoting's handshake). A
// kind-like local cluster with cached images spends some 1 s + 3 s + 4 s; an autoscaled cloud
// node pool much more.
type StartUp struct {
	Schedule, Start, Connect time.Duration
}

// Total is the whole start-up time a healthy pod takes.
func (u StartUp) Total() time.Duration { return u.Schedule + u.Start + u.Connect }

// withStartUp fills the delays b leaves at zero from u, so a per-pod slow-start still wins.
func (b Behaviour) withStartUp(u StartUp) Behaviour {
	if b.ScheduleDelay == 0 {
		b.ScheduleDelay = u.Schedule
	}
	if b.StartDelay == 0 {
		b.StartDelay = u.Start
	}
	if b.ConnectDelay == 0 {
		b.ConnectDelay = u.Connect
	}
	return b
}

// String lists the behaviour in the annotation's own syntax, so logs and events can be pasted back.
func (b Behaviour) String() string {
	var parts []string
	if b.PullError {
		parts = append(parts, "pull-error")
	}
	if b.Crash {
		parts = append(parts, "crash")
	}
	if b.Unschedulable {
		parts = append(parts, "unschedulable")
	}
	if b.StartDelay > 0 {
		parts = append(parts, "slow-start="+b.StartDelay.String())
	}
	if b.NoConnect {
		parts = append(parts, "no-connect")
	}
	if b.ScheduleDelay > 0 {
		parts = append(parts, "slow-schedule="+b.ScheduleDelay.String())
	}
	if b.ConnectDelay > 0 {
		parts = append(parts, "slow-connect="+b.ConnectDelay.String())
	}
	if len(parts) == 0 {
		return "healthy"
	}
	return strings.Join(parts, ",")
}

// DefaultBehaviour reads a pod's behaviour from the pod alone, so a test or the demo can choose a
// failure through ordinary pod templates: an image that cannot be pulled (BadImage) gives PullError, and
// the AnnotationBehaviour annotation adds the rest. An annotation that does not parse is ignored here
// (the simulator logs it), so a typo makes a healthy pod rather than a stuck informer.
func DefaultBehaviour(pod *corev1.Pod) Behaviour {
	var b Behaviour
	if v, ok := pod.Annotations[AnnotationBehaviour]; ok {
		if parsed, err := ParseBehaviour(v); err == nil {
			b = parsed
		}
	}
	for _, c := range allContainers(pod) {
		if BadImage(c.Image) {
			b.PullError = true
		}
	}
	return b
}

// ParseBehaviour parses the annotation value: a comma-separated list of crash, unschedulable,
// no-connect, pull-error, slow-start=DURATION, slow-schedule=DURATION and slow-connect=DURATION (Go
// duration syntax, e.g. 3s). Spaces around items are allowed; an empty value is the healthy
// behaviour.
func ParseBehaviour(s string) (Behaviour, error) {
	var b Behaviour
	for item := range strings.SplitSeq(s, ",") {
		item = strings.TrimSpace(item)
		key, value, hasValue := strings.Cut(item, "=")
		key = strings.TrimSpace(key)
		value = strings.TrimSpace(value)
		if key == "" && hasValue {
			return Behaviour{}, fmt.Errorf("behaviour item %q has no name", item)
		}
		delay := map[string]*time.Duration{"slow-start": &b.StartDelay, "slow-schedule": &b.ScheduleDelay, "slow-connect": &b.ConnectDelay}[key]
		if delay == nil && hasValue {
			return Behaviour{}, fmt.Errorf("behaviour %q takes no value", key)
		}
		switch key {
		case "":
		case "crash":
			b.Crash = true
		case "unschedulable":
			b.Unschedulable = true
		case "no-connect":
			b.NoConnect = true
		case "pull-error":
			b.PullError = true
		case "slow-start", "slow-schedule", "slow-connect":
			if !hasValue {
				return Behaviour{}, fmt.Errorf("%s needs a duration, e.g. %s=3s", key, key)
			}
			d, err := time.ParseDuration(value)
			if err != nil {
				return Behaviour{}, fmt.Errorf("%s duration: %w", key, err)
			}
			if d < 0 {
				return Behaviour{}, fmt.Errorf("%s duration %s is negative", key, d)
			}
			*delay = d
		default:
			return Behaviour{}, fmt.Errorf("unknown behaviour %q (want crash, unschedulable, no-connect, pull-error, slow-start=DURATION, slow-schedule=DURATION or slow-connect=DURATION)", key)
		}
	}
	return b, nil
}

// BadImage reports whether DefaultBehaviour treats an image reference as one that cannot be pulled.
func BadImage(image string) bool {
	ref := ParseImage(image)
	return ref.Host == BadImageHost || ref.Tag == BadImageTag
}

// ImageRef is an image reference split the way container runtimes read it.
type ImageRef struct {
	Host   string // registry host[:port]; "docker.io" when the reference names none
	Path   string // repository path; Docker Hub's single-name images get "library/"
	Tag    string // "latest" when neither tag nor digest is given
	Digest string // "sha256:..." when pinned
}

// String is the fully qualified reference, as containerd names the image in its pull errors.
func (r ImageRef) String() string {
	s := r.Host + "/" + r.Path
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// ParseImage splits a reference like the docker reference grammar: the first path component is a
// registry host only when it holds a dot or a colon or is "localhost"; the tag is what follows the
// first colon of the last component. It never fails: a malformed reference is split as well as it can
// be, because the simulator only needs the host and the tag to pick a behaviour.
func ParseImage(image string) ImageRef {
	var r ImageRef
	rest := image
	if name, digest, ok := strings.Cut(rest, "@"); ok {
		rest, r.Digest = name, digest
	}
	if first, after, ok := strings.Cut(rest, "/"); ok && (strings.ContainsAny(first, ".:") || first == "localhost") {
		r.Host, rest = first, after
	} else {
		r.Host = "docker.io"
	}
	lastSlash := strings.LastIndex(rest, "/")
	if colon := strings.Index(rest[lastSlash+1:], ":"); colon >= 0 {
		colon += lastSlash + 1
		rest, r.Tag = rest[:colon], rest[colon+1:]
	}
	if r.Host == "docker.io" && !strings.Contains(rest, "/") {
		rest = "library/" + rest
	}
	r.Path = rest
	if r.Tag == "" && r.Digest == "" {
		r.Tag = "latest"
	}
	return r
}

// pullErrorMessage is the error containerd gives the kubelet for a reference DefaultBehaviour calls
// bad: a host that does not resolve, or a tag the registry does not have. The kubelet copies it into
// the ErrImagePull waiting message, so it is what a user of a real cluster reads.
func pullErrorMessage(image string) string {
	ref := ParseImage(image)
	full := ref.String()
	if ref.Host == BadImageHost {
		return fmt.Sprintf("rpc error: code = Unknown desc = failed to pull and unpack image %q: failed to resolve reference %q: "+
			"failed to do request: Head \"https://%s/v2/%s/manifests/%s\": dial tcp: lookup %s: no such host",
			full, full, ref.Host, ref.Path, manifestRef(ref), hostOnly(ref.Host))
	}
	return fmt.Sprintf("rpc error: code = NotFound desc = failed to pull and unpack image %q: failed to resolve reference %q: %s: not found",
		full, full, full)
}

func manifestRef(r ImageRef) string {
	if r.Digest != "" {
		return r.Digest
	}
	return r.Tag
}

func hostOnly(hostPort string) string {
	if h, _, ok := strings.Cut(hostPort, ":"); ok {
		return h
	}
	return hostPort
}

// allContainers lists init and regular containers, the set whose images a kubelet pulls.
func allContainers(pod *corev1.Pod) []corev1.Container {
	out := make([]corev1.Container, 0, len(pod.Spec.InitContainers)+len(pod.Spec.Containers))
	out = append(out, pod.Spec.InitContainers...)
	return append(out, pod.Spec.Containers...)
}
