package pluginimport

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
)

// cloudCtx is what a cloud gives its templates.
type cloudCtx struct {
	name         string
	file         string
	containerCap int // 0: none
	capLine      int
	webSocket    *bool
	podLabels    map[string]string
	retention    string // the cloud's podRetention, for templates that say "default"
	defaults     string // defaultsProviderTemplate
}

// outTemplate is one template on its way out.
type outTemplate struct {
	origName string
	name     string
	cloud    *cloudCtx
	file     string
	line     int
	position int // in its cloud's list, from 1

	labels         []string
	inheritFrom    []string // the plugin's names; resolved to ours at the end
	mode           string
	maxAgents      int // 0: none given
	connectTimeout string
	activeDeadline int64
	podRetention   string
	workspace      map[string]any
	webSocket      *bool

	pod            corev1.PodTemplateSpec  // built from the fields
	yamlPod        *corev1.PodTemplateSpec // from yaml:, laid under the fields
	yamlLine       int
	mergeStrategy  string // "merge" or "override" (the plugin's default)
	inheritMerge   bool
	hasOwnVolumes  bool
	hasOwnEnv      bool
	templateEnv    []corev1.EnvVar
	templateMounts []corev1.VolumeMount
}

// Plugin defaults a template does not write (PodTemplate, ContainerTemplate).
const (
	pluginDefaultWorkingDir = "/home/jenkins/agent" // ContainerTemplate.DEFAULT_WORKING_DIR
	pluginUnlimited         = 2147483647            // Integer.MAX_VALUE: PodTemplate.instanceCap's default
)

// template converts one entry of a cloud's templates list (the plugin's PodTemplate).
func (im *importer) template(file string, n *yaml.Node, cloud *cloudCtx, position int) *outTemplate {
	t := &outTemplate{cloud: cloud, file: file, line: n.Line, position: position, mergeStrategy: "override"}
	subject := fmt.Sprintf("template %d of cloud %s", position, cloud.name)
	if n.Kind != yaml.MappingNode {
		im.dropf(file, n.Line, subject, "", "expected a mapping, got %s; not carried over", kindName(n))
		return nil
	}
	o := im.obj(file, n, subject)
	if name, ok := o.str("name"); ok && name != "" {
		t.origName = name
		o.what = "template " + name
		subject = o.what
	}

	if label, ok := o.str("label"); ok {
		// PodTemplate.getLabelSet: Label.parse, i.e. words separated by white space.
		for _, l := range strings.Fields(label) {
			if !validLabel(l) {
				im.dropf(file, o.line("label"), subject, "label", "%q is not a plain Jenkins label atom (the provisioner serves label atoms; expressions belong in pipelines); not carried over", l)
				continue
			}
			if !slices.Contains(t.labels, l) {
				t.labels = append(t.labels, l)
			}
		}
	}
	if len(t.labels) == 0 {
		im.changef(file, o.line("label"), subject, "label", "no label: like the plugin, only builds that name no label can use it, and only in mode NORMAL; otherwise it serves as a parent only")
	}
	t.mode = "exclusive" // PodTemplate.getNodeUsageMode: EXCLUSIVE when unset
	if m, ok := o.str("nodeUsageMode"); ok {
		switch strings.ToUpper(strings.TrimSpace(m)) {
		case "NORMAL":
			t.mode = "normal"
		case "EXCLUSIVE":
		default:
			im.dropf(file, o.line("nodeUsageMode"), subject, "nodeUsageMode", "%q is neither NORMAL nor EXCLUSIVE; mode exclusive used", m)
		}
	}
	if v, ok := o.str("inheritFrom"); ok {
		t.inheritFrom = strings.Fields(v) // PodTemplateUtils.unwrap: space-separated names
	}
	for _, key := range []string{"instanceCapStr", "instanceCap"} {
		if v, ok := o.str(key); ok && strings.TrimSpace(v) != "" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			switch {
			case err != nil:
				im.dropf(file, o.line(key), subject, key, "%q is not a number; not carried over", v)
			case n <= 0 || n >= pluginUnlimited:
				// PodTemplate.setInstanceCap: 0 or less means no limit.
			default:
				t.maxAgents = n
			}
		}
	}
	for _, key := range []string{"slaveConnectTimeoutStr", "slaveConnectTimeout"} {
		if v, ok := o.str(key); ok && strings.TrimSpace(v) != "" {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			switch {
			case err != nil:
				im.dropf(file, o.line(key), subject, key, "%q is not a number of seconds; not carried over", v)
			case n <= 0:
				// PodTemplate.getSlaveConnectTimeout: 0 means the default (1000 s).
				t.connectTimeout = "1000s"
			default:
				t.connectTimeout = fmt.Sprintf("%ds", n)
			}
		}
	}
	for _, key := range []string{"activeDeadlineSecondsStr", "activeDeadlineSeconds"} {
		if v, ok := o.str(key); ok && strings.TrimSpace(v) != "" {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			switch {
			case err != nil:
				im.dropf(file, o.line(key), subject, key, "%q is not a number of seconds; not carried over", v)
			case n > 0: // PodTemplateBuilder sets it only when > 0
				t.activeDeadline = n
			}
		}
	}
	for _, key := range []string{"idleMinutesStr", "idleMinutes"} {
		o.drop(key, "by design: one build per pod, so no agent idles; pods start in about a second instead (a warm pool of ready agents, when the provisioner has one, is the equivalent)")
	}
	im.retention(o, t, subject)

	spec := &t.pod.Spec
	var containers []corev1.Container
	for i, c := range items(o.get("containers")) {
		if ct := im.container(file, c, subject, i); ct != nil {
			containers = append(containers, *ct)
		}
	}
	t.templateEnv = im.envVars(file, o.get("envVars"), subject, "envVars")
	t.hasOwnEnv = len(t.templateEnv) > 0
	im.volumes(file, o.get("volumes"), t, subject)
	im.workspaceVolume(o, t, subject)

	// PodTemplateBuilder.build: the template's env and volumes go into every container, the jnlp
	// one included; when the template has no jnlp container of its own, ours gets them.
	if (t.hasOwnEnv || t.hasOwnVolumes) && !slices.ContainsFunc(containers, func(c corev1.Container) bool { return c.Name == "jnlp" }) {
		containers = append(containers, corev1.Container{Name: "jnlp"})
	}
	for i := range containers {
		c := &containers[i]
		c.Env = mergeEnv(t.templateEnv, c.Env)
		c.VolumeMounts = append(c.VolumeMounts, t.templateMounts...)
	}
	spec.Containers = containers
	if t.hasOwnVolumes && len(t.inheritFrom) > 0 {
		im.changef(file, o.line("volumes"), subject, "volumes", "mounted in this template's own containers and jnlp; a container inherited from a parent does not mount them (the plugin mounts them in every container): add the volumeMounts to it if it needs them")
	}

	if v, ok := o.str("serviceAccount"); ok && v != "" {
		spec.ServiceAccountName = v
	}
	if v, ok := o.str("schedulerName"); ok && v != "" {
		spec.SchedulerName = v
	}
	if v, ok := o.str("nodeSelector"); ok && strings.TrimSpace(v) != "" {
		spec.NodeSelector = im.nodeSelector(file, o.line("nodeSelector"), subject, v)
	}
	for _, s := range items(o.get("imagePullSecrets")) {
		name := s.Value
		if s.Kind == yaml.MappingNode { // PodImagePullSecret(name)
			so := im.obj(file, s, subject+": imagePullSecrets")
			name, _ = so.str("name")
			so.rest()
		}
		if name != "" {
			spec.ImagePullSecrets = append(spec.ImagePullSecrets, corev1.LocalObjectReference{Name: name})
		}
	}
	if ann := im.keyValues(file, o.get("annotations"), subject, "annotations"); len(ann) > 0 {
		t.pod.Annotations = ann
	}
	labels := map[string]string{}
	for k, v := range cloud.podLabels {
		labels[k] = v
	}
	for _, key := range []string{"podLabels", "labels"} {
		for k, v := range im.keyValues(file, o.get(key), subject, key) {
			labels[k] = v
		}
	}
	if len(labels) > 0 {
		t.pod.Labels = labels
	}
	if v, ok := o.str("terminationGracePeriodSeconds"); ok && v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			spec.TerminationGracePeriodSeconds = &n
		} else {
			im.dropf(file, o.line("terminationGracePeriodSeconds"), subject, "terminationGracePeriodSeconds", "%q is not a number; not carried over", v)
		}
	}
	if v, ok := o.str("hostNetwork"); ok && v != "" {
		if b, ok := im.boolean(file, o.line("hostNetwork"), subject, "hostNetwork", v); ok && b {
			spec.HostNetwork = true
		}
	}
	var sc corev1.PodSecurityContext
	if v, ok := o.str("runAsUser"); ok && v != "" {
		sc.RunAsUser = im.int64Field(file, o.line("runAsUser"), subject, "runAsUser", v)
	}
	if v, ok := o.str("runAsGroup"); ok && v != "" {
		sc.RunAsGroup = im.int64Field(file, o.line("runAsGroup"), subject, "runAsGroup", v)
	}
	if v, ok := o.str("supplementalGroups"); ok && v != "" {
		// PodTemplateBuilder.parseSupplementalGroupList: comma-separated numbers.
		for _, g := range strings.Split(v, ",") {
			g = strings.TrimSpace(g)
			if g == "" {
				continue
			}
			if n, err := strconv.ParseInt(g, 10, 64); err == nil {
				sc.SupplementalGroups = append(sc.SupplementalGroups, n)
			} else {
				im.dropf(file, o.line("supplementalGroups"), subject, "supplementalGroups", "group %q is not a number; left out, as the plugin does", g)
			}
		}
	}
	if sc.RunAsUser != nil || sc.RunAsGroup != nil || len(sc.SupplementalGroups) > 0 {
		spec.SecurityContext = &sc
	}

	im.yamlField(o, t, subject)

	if v, ok := o.str("namespace"); ok && v != "" {
		im.namespace(file, o.line("namespace"), subject, v)
	}
	o.drop("showRawYaml", "`provisioner templates render --label L` prints the pod a build would get")
	o.drop("id", "the plugin's internal template id; templates are identified by name here")
	o.drop("nodeProperties", "Jenkins node properties (tool locations, environment) do not exist for agents made outside Jenkins; put the tools and environment in the image or the container's env")
	o.drop("capOnlyOnAlivePods", "caps here always count live pods")
	o.drop("agentInjection", "the inbound agent always runs in the jnlp container; there is no injection into another container")
	if v, ok := o.str("agentContainer"); ok && v != "" && v != "jnlp" {
		im.dropf(file, o.line("agentContainer"), subject, "agentContainer", "the agent runs in the container named jnlp; rename container %q to jnlp (its image must run the inbound agent)", v)
	}
	o.drop("remoteFs", "the agent's working directory is each container's workingDir (default /home/jenkins/agent)")
	o.drop("listener", "not part of a template")
	for _, key := range []string{"image", "command", "args", "privileged", "alwaysPullImage", "resourceRequestCpu", "resourceRequestMemory", "resourceRequestEphemeralStorage", "resourceLimitCpu", "resourceLimitMemory", "resourceLimitEphemeralStorage"} {
		o.drop(key, "the plugin's deprecated single-container field (before containers:); write it in a container instead")
	}
	o.rest()
	return t
}

func validLabel(l string) bool {
	return l != "" && quoteAtom(l) == l
}

// mergeEnv puts the template's env under a container's own: PodTemplateBuilder.createContainer
// fills a map with the template's variables, then the container's, so the container's win.
func mergeEnv(template, own []corev1.EnvVar) []corev1.EnvVar {
	if len(template) == 0 {
		return own
	}
	var out []corev1.EnvVar
	for _, e := range template {
		overridden := false
		for _, c := range own {
			if c.Name == e.Name {
				overridden = true
			}
		}
		if !overridden {
			out = append(out, e)
		}
	}
	return append(out, own...)
}
