package podtemplate

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
)

// placeholderLabel is the label of the Jenkins node the provisioner keeps so that Jenkins names
// labels in `why`; a template serving it would start agents for a node that never runs builds.
const placeholderLabel = "jenkins-agent-provisioner-placeholder"

// finish applies defaults to a resolved template and validates it, returning the Template or the
// problems found (all of them, not only the first).
func finish(r *rawTemplate, rt *resolvedTemplate, opts Options) (*Template, []*fieldError) {
	var errs []*fieldError
	s := rt.spec
	t := &Template{
		Name:             s.Name,
		Mode:             DefaultMode,
		MaxAgents:        DefaultMaxAgents,
		ConnectTimeout:   DefaultConnectTimeout,
		PodRetention:     DefaultPodRetention,
		RetentionTimeout: DefaultRetentionTimeout,
		Agent:            AgentSpec{Image: DefaultAgentImage, WorkDir: DefaultWorkDir},
		Source:           fmt.Sprintf("%s:%d", r.file, r.node.Line),
	}

	if len(s.Labels) > MaxLabels {
		errs = append(errs, r.errorf("labels", "%d labels, more than the %d a template may serve", len(s.Labels), MaxLabels))
		s.Labels = s.Labels[:MaxLabels]
	}
	seen := map[string]bool{}
	for i, l := range s.Labels {
		sub := fmt.Sprintf("labels[%d]", i)
		switch {
		case len(l) > MaxLabelLength:
			errs = append(errs, r.errorf(sub, "label of %d bytes, more than the %d allowed", len(l), MaxLabelLength))
		case labelexpr.QuoteAtom(l) != l:
			errs = append(errs, r.errorf(sub, "%q is not a plain Jenkins label: no spaces, no trailing dot, none of ?*/\\%%!@#$^&|<>[]:;()\"' and no control characters", l))
		case l == placeholderLabel:
			errs = append(errs, r.errorf(sub, "%q is reserved for the provisioner's placeholder node", l))
		case seen[l]:
			errs = append(errs, r.errorf(sub, "duplicate label %q", l))
		}
		seen[l] = true
	}
	t.Labels = append([]string(nil), s.Labels...)

	if s.Mode != nil {
		switch *s.Mode {
		case ModeExclusive, ModeNormal:
			t.Mode = *s.Mode
		default:
			errs = append(errs, r.errorf("mode", "unsupported value %q (supported: exclusive, normal)", string(*s.Mode)))
		}
	}
	if s.MaxAgents != nil {
		if *s.MaxAgents < 1 {
			errs = append(errs, r.errorf("maxAgents", "must be at least 1, got %d", *s.MaxAgents))
		}
		t.MaxAgents = *s.MaxAgents
	}
	warmSpec, warmErrs := finishWarm(r, s.Warm, t.MaxAgents)
	errs = append(errs, warmErrs...)
	if s.ConnectTimeout != nil {
		if s.ConnectTimeout.Duration <= 0 {
			errs = append(errs, r.errorf("connectTimeout", "must be positive, got %s", s.ConnectTimeout.Duration))
		}
		t.ConnectTimeout = s.ConnectTimeout.Duration
	}
	if s.ActiveDeadlineSeconds != nil {
		if *s.ActiveDeadlineSeconds < 1 {
			errs = append(errs, r.errorf("activeDeadlineSeconds", "must be at least 1, got %d", *s.ActiveDeadlineSeconds))
		}
		v := *s.ActiveDeadlineSeconds
		t.ActiveDeadlineSeconds = &v
	}
	if s.PodRetention != nil {
		switch *s.PodRetention {
		case RetentionNever, RetentionOnFailure, RetentionAlways:
			t.PodRetention = *s.PodRetention
		default:
			errs = append(errs, r.errorf("podRetention", "unsupported value %q (supported: never, onFailure, always)", string(*s.PodRetention)))
		}
	}
	if s.RetentionTimeout != nil {
		if s.RetentionTimeout.Duration <= 0 {
			errs = append(errs, r.errorf("retentionTimeout", "must be positive, got %s", s.RetentionTimeout.Duration))
		}
		t.RetentionTimeout = s.RetentionTimeout.Duration
	}

	t.Workspace = Workspace{EmptyDir: &corev1.EmptyDirVolumeSource{}}
	if w := s.Workspace; w != nil {
		switch {
		case w.EmptyDir != nil && w.Ephemeral != nil:
			errs = append(errs, r.errorf("workspace", "set either emptyDir or ephemeral, not both"))
		case w.Ephemeral != nil:
			e := *w.Ephemeral
			if e.Size.Sign() <= 0 {
				errs = append(errs, r.errorf("workspace.ephemeral.size", "required: a positive size such as 10Gi"))
			}
			for i, m := range e.AccessModes {
				switch m {
				case corev1.ReadWriteOnce, corev1.ReadOnlyMany, corev1.ReadWriteMany, corev1.ReadWriteOncePod:
				default:
					errs = append(errs, r.errorf(fmt.Sprintf("workspace.ephemeral.accessModes[%d]", i), "unsupported value %q (supported: ReadWriteOnce, ReadOnlyMany, ReadWriteMany, ReadWriteOncePod)", string(m)))
				}
			}
			if len(e.AccessModes) == 0 {
				e.AccessModes = []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}
			}
			t.Workspace = Workspace{Ephemeral: &e}
		case w.EmptyDir != nil:
			t.Workspace = Workspace{EmptyDir: w.EmptyDir.DeepCopy()}
		}
	}

	if a := s.Agent; a != nil {
		if a.Image != nil {
			if strings.TrimSpace(*a.Image) == "" {
				errs = append(errs, r.errorf("agent.image", "must not be empty (leave it out for %s)", DefaultAgentImage))
			}
			t.Agent.Image = *a.Image
		}
		if a.WebSocket != nil {
			t.Agent.WebSocket = *a.WebSocket
		}
		if a.WorkDir != nil {
			if !path.IsAbs(*a.WorkDir) {
				errs = append(errs, r.errorf("agent.workDir", "must be an absolute path, got %q", *a.WorkDir))
			}
			t.Agent.WorkDir = *a.WorkDir
		}
	}

	if len(rt.podJSON) > 0 {
		if err := json.Unmarshal(rt.podJSON, &t.Pod); err != nil {
			errs = append(errs, r.errorf("pod", "after merging with parents: %v", err))
			return nil, errs
		}
	}
	errs = append(errs, finishQueue(r, s.Queue, t)...)
	if t.Selectable() {
		// A parent-only template's warm block is only there to be inherited: no build can take
		// its agents.
		t.Warm = warmSpec
		// A parent-only template may leave out what its children add (an image, say); its pod is
		// checked as part of each child's merged pod instead.
		errs = append(errs, validatePod(r, t, opts)...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

// validatePod checks, without an apiserver, what is cheap to check and what the provisioner itself
// relies on. `templates check` then has the apiserver validate the rendered pod for real.
func validatePod(r *rawTemplate, t *Template, opts Options) []*fieldError {
	var errs []*fieldError
	if own := opts.ProvisionerServiceAccount; own != "" {
		for _, f := range []struct{ field, value string }{{"serviceAccountName", t.Pod.Spec.ServiceAccountName}, {"serviceAccount", t.Pod.Spec.DeprecatedServiceAccount}} {
			if f.value == own {
				errs = append(errs, r.errorf("pod.spec."+f.field, "%q is the provisioner's own service account: builds on the agent could create and delete pods and read Secrets with its rights; give agents a service account of their own", own))
			}
		}
	}
	m := t.Pod.ObjectMeta
	for _, f := range []struct{ field, value string }{{"name", m.Name}, {"generateName", m.GenerateName}, {"namespace", m.Namespace}} {
		if f.value != "" {
			errs = append(errs, r.errorf("pod.metadata."+f.field, "set by the provisioner; leave it out"))
		}
	}
	for k, v := range m.Labels {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, r.errorf("pod.metadata.labels."+k, "invalid label key: %s", msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, r.errorf("pod.metadata.labels."+k, "invalid label value %q: %s", v, msg))
		}
	}
	for k := range m.Annotations {
		for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
			errs = append(errs, r.errorf("pod.metadata.annotations."+k, "invalid annotation key: %s", msg))
		}
	}
	spec := t.Pod.Spec
	if p := spec.RestartPolicy; p != "" && p != corev1.RestartPolicyNever {
		errs = append(errs, r.errorf("pod.spec.restartPolicy", "unsupported value %q: an agent pod runs once (leave it out, or Never)", string(p)))
	}

	volumes := map[string]bool{WorkspaceVolumeName: true}
	for i, v := range spec.Volumes {
		sub := fmt.Sprintf("pod.spec.volumes[%d]", i)
		if v.Name == "" {
			errs = append(errs, r.errorf(sub+".name", "required"))
			continue
		}
		for _, msg := range validation.IsDNS1123Label(v.Name) {
			errs = append(errs, podErrorf(r, "volumes", v.Name, "name", "invalid volume name %q: %s", v.Name, msg))
		}
		if volumes[v.Name] && v.Name != WorkspaceVolumeName {
			errs = append(errs, podErrorf(r, "volumes", v.Name, "name", "duplicate volume name %q", v.Name))
		}
		volumes[v.Name] = true
	}

	names := map[string]bool{}
	check := func(list string, c corev1.Container) {
		if c.Name == "" {
			errs = append(errs, r.errorf("pod.spec."+list, "a container has no name"))
			return
		}
		for _, msg := range validation.IsDNS1123Label(c.Name) {
			errs = append(errs, podErrorf(r, list, c.Name, "name", "invalid container name %q: %s", c.Name, msg))
		}
		if names[c.Name] {
			errs = append(errs, podErrorf(r, list, c.Name, "name", "duplicate container name %q", c.Name))
		}
		names[c.Name] = true
		if strings.TrimSpace(c.Image) == "" && !(list == "containers" && c.Name == JNLPContainerName) {
			errs = append(errs, podErrorf(r, list, c.Name, "image", "required: container %q has no image", c.Name))
		}
		switch c.ImagePullPolicy {
		case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
		default:
			errs = append(errs, podErrorf(r, list, c.Name, "imagePullPolicy", "unsupported value %q (supported: Always, IfNotPresent, Never)", string(c.ImagePullPolicy)))
		}
		for _, e := range c.Env {
			if e.Name == "JENKINS_SECRET" {
				errs = append(errs, podErrorf(r, list, c.Name, "env", "JENKINS_SECRET is set by the provisioner from the agent's Secret; remove it"))
			}
			for _, msg := range validation.IsEnvVarName(e.Name) {
				errs = append(errs, podErrorf(r, list, c.Name, "env", "invalid environment variable name %q: %s", e.Name, msg))
			}
		}
		for _, vm := range c.VolumeMounts {
			if !volumes[vm.Name] {
				errs = append(errs, podErrorf(r, list, c.Name, "volumeMounts", "mounts volume %q, which the pod does not define", vm.Name))
			}
			if !path.IsAbs(vm.MountPath) {
				errs = append(errs, podErrorf(r, list, c.Name, "volumeMounts", "mountPath %q of volume %q must be absolute", vm.MountPath, vm.Name))
			}
		}
		for _, p := range c.Ports {
			if p.ContainerPort < 1 || p.ContainerPort > 65535 {
				errs = append(errs, podErrorf(r, list, c.Name, "ports", "containerPort %d out of range 1-65535", p.ContainerPort))
			}
		}
		if c.WorkingDir != "" && !path.IsAbs(c.WorkingDir) {
			errs = append(errs, podErrorf(r, list, c.Name, "workingDir", "must be an absolute path, got %q", c.WorkingDir))
		}
	}
	for _, c := range spec.InitContainers {
		check("initContainers", c)
	}
	for _, c := range spec.Containers {
		check("containers", c)
	}
	return errs
}

// podErrorf reports a problem with the container or volume called name: at its own line when the
// template itself writes that element, otherwise (it came from a parent) at inheritFrom.
func podErrorf(r *rawTemplate, list, name, field, format string, args ...any) *fieldError {
	msg := fmt.Sprintf(format, args...)
	if i, ok := ownListIndex(r, list, name); ok {
		return r.errorf(fmt.Sprintf("pod.spec.%s[%d].%s", list, i, field), "%s", msg)
	}
	return r.errorf("inheritFrom", "%s (inherited)", msg)
}

// ownListIndex finds the element called name in the template's own pod.spec.<list>.
func ownListIndex(r *rawTemplate, list, name string) (int, bool) {
	pod := mappingValue(r.node, "pod")
	if pod == nil {
		return 0, false
	}
	spec := mappingValue(pod, "spec")
	if spec == nil {
		return 0, false
	}
	seq := mappingValue(spec, list)
	if seq == nil || seq.Kind != yaml.SequenceNode {
		return 0, false
	}
	for i, item := range seq.Content {
		if n := mappingValue(item, "name"); n != nil && n.Value == name {
			return i, true
		}
	}
	return 0, false
}
