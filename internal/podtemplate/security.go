package podtemplate

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Warning is a setting of a template that `templates check` reports without refusing the
// template. Most give its agents, and so every build on them, more power over the node or the
// cluster than running a build needs (SecurityWarnings): administrators' choices, since a Docker
// build may need them. WarnWarmBound says a warm count is cut by its bound (WarmWarnings).
type Warning struct {
	Kind  WarningKind
	Field string // path in the merged pod, e.g. pod.spec.containers[dind].securityContext.privileged
	Msg   string
}

// WarningKind names the class of a Warning.
type WarningKind string

// Kinds of Warning.
const (
	WarnPrivileged       WarningKind = "privileged"
	WarnCapabilities     WarningKind = "capabilities"
	WarnHostNamespace    WarningKind = "hostNamespace"
	WarnHostPath         WarningKind = "hostPath"
	WarnDockerWithoutTLS WarningKind = "dockerWithoutTLS"
	WarnWarmBound        WarningKind = "warmBound"
)

func (w Warning) String() string { return w.Field + ": " + w.Msg }

// SecurityWarnings lists the risky settings of t's merged pod: privileged containers, added
// capabilities, host namespaces, hostPath volumes, and a Docker daemon or client on TCP without TLS.
func SecurityWarnings(t *Template) []Warning {
	var out []Warning
	spec := t.Pod.Spec
	add := func(kind WarningKind, field, format string, args ...any) {
		out = append(out, Warning{Kind: kind, Field: field, Msg: fmt.Sprintf(format, args...)})
	}
	if spec.HostNetwork {
		add(WarnHostNamespace, "pod.spec.hostNetwork", "agents share the node's network: builds can reach every port bound on the node and the kubelet")
	}
	if spec.HostPID {
		add(WarnHostNamespace, "pod.spec.hostPID", "agents see every process of the node: builds can inspect and signal them")
	}
	if spec.HostIPC {
		add(WarnHostNamespace, "pod.spec.hostIPC", "agents share the node's IPC namespace")
	}
	for _, v := range spec.Volumes {
		if v.HostPath != nil {
			add(WarnHostPath, fmt.Sprintf("pod.spec.volumes[%s].hostPath", v.Name), "mounts %s from the node: builds can read or change the node's files%s", v.HostPath.Path, dockerSocketHint(v.HostPath.Path))
		}
	}
	lists := []struct {
		name string
		cs   []corev1.Container
	}{{"initContainers", spec.InitContainers}, {"containers", spec.Containers}}
	for _, l := range lists {
		for _, c := range l.cs {
			at := fmt.Sprintf("pod.spec.%s[%s]", l.name, c.Name)
			if sc := c.SecurityContext; sc != nil {
				if sc.Privileged != nil && *sc.Privileged {
					add(WarnPrivileged, at+".securityContext.privileged", "a privileged container is root on the node: any build on the agent can take the node over")
				}
				if sc.Capabilities != nil && len(sc.Capabilities.Add) > 0 {
					caps := make([]string, len(sc.Capabilities.Add))
					for i, c := range sc.Capabilities.Add {
						caps[i] = string(c)
					}
					add(WarnCapabilities, at+".securityContext.capabilities.add", "adds %s", strings.Join(caps, ", "))
				}
			}
			if msg := dockerWithoutTLS(c); msg != "" {
				add(WarnDockerWithoutTLS, at, "%s", msg)
			}
		}
	}
	return out
}

func dockerSocketHint(path string) string {
	if strings.HasSuffix(path, "docker.sock") || strings.HasSuffix(path, "containerd.sock") {
		return " (a container runtime's socket is root on the node)"
	}
	return ""
}

// dockerWithoutTLS recognises a Docker daemon serving TCP without TLS, and a Docker client told to
// use one: anything that reaches the port (every pod, unless a NetworkPolicy says otherwise) drives
// the daemon, which in a dind container is privileged.
func dockerWithoutTLS(c corev1.Container) string {
	env := map[string]*corev1.EnvVar{}
	for i := range c.Env {
		env[c.Env[i].Name] = &c.Env[i]
	}
	argv := append(append([]string(nil), c.Command...), c.Args...)
	daemon := strings.Contains(c.Image, "dind") || containsWord(argv, "dockerd")
	if daemon {
		if tcpHost(argv) && !containsPrefix(argv, "--tls") {
			return "runs dockerd on a TCP address without --tls: whatever reaches the port controls the daemon"
		}
		// The docker:dind image's entrypoint listens on tcp://0.0.0.0:2375 without TLS when
		// DOCKER_TLS_CERTDIR is set and empty (dockerd-entrypoint.sh).
		if e, ok := env["DOCKER_TLS_CERTDIR"]; ok && e.ValueFrom == nil && e.Value == "" && !containsPrefix(argv, "--tls") && !unixOnly(argv) {
			return "DOCKER_TLS_CERTDIR is empty: the dind entrypoint serves tcp://0.0.0.0:2375 without TLS; share a unix socket through an emptyDir, or keep TLS"
		}
	}
	if e, ok := env["DOCKER_HOST"]; ok && e.ValueFrom == nil && strings.HasPrefix(e.Value, "tcp://") {
		if v, ok := env["DOCKER_TLS_VERIFY"]; !ok || v.Value == "" || v.Value == "0" {
			return fmt.Sprintf("DOCKER_HOST=%s without DOCKER_TLS_VERIFY: the Docker daemon is reached without TLS", e.Value)
		}
	}
	return ""
}

func containsWord(argv []string, w string) bool {
	for _, a := range argv {
		for _, f := range strings.Fields(a) {
			if f == w || strings.HasSuffix(f, "/"+w) {
				return true
			}
		}
	}
	return false
}

func containsPrefix(argv []string, p string) bool {
	for _, a := range argv {
		for _, f := range strings.Fields(a) {
			if strings.HasPrefix(f, p) {
				return true
			}
		}
	}
	return false
}

// tcpHost: -H tcp://..., --host tcp://... or --host=tcp://...
func tcpHost(argv []string) bool {
	var words []string
	for _, a := range argv {
		words = append(words, strings.Fields(a)...)
	}
	for i, w := range words {
		switch {
		case strings.HasPrefix(w, "--host=tcp://"), strings.HasPrefix(w, "-H=tcp://"), strings.HasPrefix(w, "-Htcp://"):
			return true
		case (w == "-H" || w == "--host") && i+1 < len(words) && strings.HasPrefix(words[i+1], "tcp://"):
			return true
		}
	}
	return false
}

// unixOnly: every -H/--host given is a unix socket (and at least one is given).
func unixOnly(argv []string) bool {
	var words []string
	for _, a := range argv {
		words = append(words, strings.Fields(a)...)
	}
	hosts := 0
	for i, w := range words {
		var v string
		switch {
		case strings.HasPrefix(w, "--host="):
			v = strings.TrimPrefix(w, "--host=")
		case (w == "-H" || w == "--host") && i+1 < len(words):
			v = words[i+1]
		default:
			continue
		}
		hosts++
		if !strings.HasPrefix(v, "unix://") {
			return false
		}
	}
	return hosts > 0
}
