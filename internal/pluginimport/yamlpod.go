package pluginimport

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// yamlField reads the template's raw pod YAML (yaml:, and the transient yamls: list) and its merge
// strategy. The plugin lays the fields over the YAML (PodTemplateBuilder.build:
// combine(template.getYamlsPod(), fieldsPod)); here the YAML becomes the base of the pod and the
// fields are merged over it by strategic merge patch, containers by name as combine() does.
func (im *importer) yamlField(o *obj, t *outTemplate, subject string) {
	if v, ok := o.str("yamlMergeStrategy"); ok {
		t.mergeStrategy = im.mergeStrategy(o, subject, v)
	} else if n := o.get("yamlMergeStrategy"); n != nil && len(n.Content) >= 2 { // {merge: {}}
		t.mergeStrategy = im.mergeStrategy(o, subject, n.Content[0].Value)
	}
	if v, ok := o.str("inheritYamlMergeStrategy"); ok && v != "" {
		t.inheritMerge, _ = im.boolean(o.file, o.line("inheritYamlMergeStrategy"), subject, "inheritYamlMergeStrategy", v)
	}
	var texts []struct {
		text string
		line int
	}
	if n := o.get("yaml"); n != nil && strings.TrimSpace(n.Value) != "" {
		texts = append(texts, struct {
			text string
			line int
		}{n.Value, o.line("yaml")})
	}
	for _, it := range items(o.get("yamls")) {
		if strings.TrimSpace(it.Value) != "" {
			texts = append(texts, struct {
				text string
				line int
			}{it.Value, it.Line})
		}
	}
	for _, tx := range texts {
		pod, err := im.parsePodYAML(o.file, tx.line, subject, tx.text)
		if err != nil {
			im.dropf(o.file, tx.line, subject, "yaml", "not a Kubernetes Pod (%v); not carried over", err)
			continue
		}
		if t.yamlPod == nil {
			t.yamlPod = pod
			t.yamlLine = tx.line
			continue
		}
		// yamls: later fragments merge over earlier ones (Merge.merge).
		merged, err := mergePods(t.yamlPod, pod)
		if err != nil {
			im.dropf(o.file, tx.line, subject, "yamls", "cannot merge with the previous fragment (%v); not carried over", err)
			continue
		}
		t.yamlPod = merged
	}
}

func (im *importer) mergeStrategy(o *obj, subject, v string) string {
	switch s := strings.ToLower(strings.TrimSpace(v)); s {
	case "merge", "override":
		return s
	case "":
		return "override"
	default:
		im.dropf(o.file, o.line("yamlMergeStrategy"), subject, "yamlMergeStrategy", "%q is neither merge nor override; override (the plugin's default) used", v)
		return "override"
	}
}

// parsePodYAML decodes one YAML fragment strictly as a Pod and keeps what a template may hold:
// the labels, annotations and spec. What the provisioner sets itself is reported and left out.
func (im *importer) parsePodYAML(file string, line int, subject, text string) (*corev1.PodTemplateSpec, error) {
	var pod corev1.Pod
	if err := yaml.UnmarshalStrict([]byte(text), &pod); err != nil {
		// Fields this Kubernetes version does not know (a typo, or a newer API) would fail the
		// loader; the rest of the pod is still worth carrying over.
		pod = corev1.Pod{}
		if lerr := yaml.Unmarshal([]byte(text), &pod); lerr != nil {
			return nil, lerr
		}
		im.dropf(file, line, subject, "yaml", "%v: those fields are left out, the rest of the pod is carried over", err)
	}
	if pod.Kind != "" && pod.Kind != "Pod" {
		return nil, fmt.Errorf("kind %s", pod.Kind)
	}
	for _, f := range []struct{ name, val string }{
		{"metadata.name", pod.Name}, {"metadata.generateName", pod.GenerateName}, {"metadata.namespace", pod.Namespace},
	} {
		if f.val != "" {
			im.dropf(file, line, subject, "yaml "+f.name, "the provisioner names agent pods and puts them in PROVISIONER_NAMESPACE")
		}
	}
	if pod.Spec.RestartPolicy != "" && pod.Spec.RestartPolicy != corev1.RestartPolicyNever {
		im.dropf(file, line, subject, "yaml spec.restartPolicy", "agent pods always have restartPolicy Never (one build per pod)")
	}
	pod.Spec.RestartPolicy = ""
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		if c.Name != "jnlp" {
			continue
		}
		var env []corev1.EnvVar
		for _, e := range c.Env {
			if setting, ours := agentEnvNames[e.Name]; ours {
				if setting != "" && e.Value != "" {
					im.setting(setting, e.Value, file, line, subject, "yaml jnlp env "+e.Name)
				}
				im.dropf(file, line, subject, "yaml jnlp env "+e.Name, "the provisioner sets it for every agent (a template's value would win over its own)")
				continue
			}
			env = append(env, e)
		}
		c.Env = env
		var args []string
		for _, a := range c.Args {
			if strings.Contains(a, "${computer.jnlpmac}") || strings.Contains(a, "${computer.name}") {
				im.dropf(file, line, subject, "yaml jnlp args", "by design: %s; the agent gets its secret and name from JENKINS_SECRET and JENKINS_AGENT_NAME", a)
				continue
			}
			args = append(args, a)
		}
		c.Args = args
	}
	if pod.Status.Phase != "" || len(pod.Status.Conditions) > 0 {
		im.dropf(file, line, subject, "yaml status", "a pod's status is not part of a template")
	}
	return &corev1.PodTemplateSpec{
		ObjectMeta: metaOf(pod.Labels, pod.Annotations),
		Spec:       pod.Spec,
	}, nil
}
