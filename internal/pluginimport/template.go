package pluginimport

import (
	"fmt"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
			if !contains(t.labels, l) {
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
	if (t.hasOwnEnv || t.hasOwnVolumes) && !hasContainer(containers, "jnlp") {
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

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasContainer(cs []corev1.Container, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return true
		}
	}
	return false
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

func (im *importer) boolean(file string, line int, subject, field, v string) (bool, bool) {
	b, err := strconv.ParseBool(strings.ToLower(strings.TrimSpace(v)))
	if err != nil {
		im.dropf(file, line, subject, field, "%q is not true or false; not carried over", v)
		return false, false
	}
	return b, true
}

func (im *importer) int64Field(file string, line int, subject, field, v string) *int64 {
	n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
	if err != nil {
		im.dropf(file, line, subject, field, "%q is not a number; not carried over", v)
		return nil
	}
	return &n
}

// nodeSelector parses "k=v,k2=v2" as PodTemplateBuilder.getNodeSelectorMap does: pairs that are
// not exactly key=value are left out (the plugin logs and ignores them; here they are reported).
func (im *importer) nodeSelector(file string, line int, subject, v string) map[string]string {
	out := map[string]string{}
	for _, sel := range strings.Split(v, ",") {
		parts := strings.Split(strings.TrimSpace(sel), "=")
		if len(parts) == 2 && parts[0] != "" && parts[1] != "" {
			out[parts[0]] = parts[1]
			continue
		}
		im.dropf(file, line, subject, "nodeSelector", "%q is not key=value; left out, as the plugin ignores it", sel)
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// keyValues reads the plugin's lists of {key, value} (PodAnnotation, PodLabel), or a plain map.
func (im *importer) keyValues(file string, n *yaml.Node, subject, field string) map[string]string {
	n = resolve(n)
	if n == nil {
		return nil
	}
	out := map[string]string{}
	if n.Kind == yaml.MappingNode {
		for _, p := range pairs(n) {
			out[p[0].Value] = p[1].Value
		}
		return out
	}
	for _, it := range items(n) {
		// A list item may be wrapped in its symbol (podAnnotation:, podLabel:).
		if inner := lookup(it, "podAnnotation"); inner != nil {
			it = inner
		} else if inner := lookup(it, "podLabel"); inner != nil {
			it = inner
		}
		o := im.obj(file, it, subject+": "+field)
		k, _ := o.str("key")
		v, _ := o.str("value")
		o.rest()
		if k == "" {
			im.dropf(file, it.Line, subject, field, "an entry without a key; not carried over")
			continue
		}
		out[k] = v
	}
	return out
}

func (im *importer) retention(o *obj, t *outTemplate, subject string) {
	n := o.get("podRetention")
	if n == nil {
		return
	}
	val := n.Value
	if n.Kind == yaml.MappingNode && len(n.Content) >= 2 { // {never: {}}, as JCasC may export it
		val = n.Content[0].Value
	}
	switch r := strings.ToLower(strings.TrimSpace(val)); r {
	case "never", "":
		t.podRetention = "never"
	case "always":
		t.podRetention = "always"
	case "onfailure":
		t.podRetention = "onFailure"
	case "evicted":
		t.podRetention = "onFailure"
		im.changef(o.file, o.line("podRetention"), subject, "podRetention", "Evicted (keep evicted pods) has no exact equivalent; onFailure keeps failed pods, evicted ones included")
	case "default":
		t.podRetention = t.cloud.retention // Default: the cloud's podRetention
	default:
		im.dropf(o.file, o.line("podRetention"), subject, "podRetention", "%q is not never, onFailure, always, evicted or default; not carried over", val)
	}
}

// container converts one ContainerTemplate.
func (im *importer) container(file string, n *yaml.Node, subject string, i int) *corev1.Container {
	if n.Kind != yaml.MappingNode {
		im.dropf(file, n.Line, subject, fmt.Sprintf("containers[%d]", i), "expected a mapping, got %s; not carried over", kindName(n))
		return nil
	}
	o := im.obj(file, n, subject+": container")
	c := &corev1.Container{}
	c.Name, _ = o.str("name")
	if c.Name == "" {
		c.Name = fmt.Sprintf("container-%d", i)
		im.changef(file, n.Line, subject, fmt.Sprintf("containers[%d].name", i), "a container without a name; named %s", c.Name)
	}
	if dn := dnsName(c.Name); dn != c.Name {
		im.changef(file, o.line("name"), subject, "container "+c.Name, "named %s: a container name is a DNS-1123 label", dn)
		if dn == "" {
			dn = fmt.Sprintf("container-%d", i)
		}
		c.Name = dn
	}
	o.what = subject + ": container " + c.Name
	csub := o.what
	c.Image, _ = o.str("image")
	if v, ok := o.str("command"); ok && v != "" {
		c.Command = im.commandLine(file, o.line("command"), csub, "command", v)
	}
	if v, ok := o.str("args"); ok && v != "" {
		args := im.commandLine(file, o.line("args"), csub, "args", v)
		if c.Name == "jnlp" {
			args = im.dropAgentArgs(file, o.line("args"), csub, args)
		}
		c.Args = args
	}
	if v, ok := o.str("ttyEnabled"); ok && v != "" {
		if b, ok := im.boolean(file, o.line("ttyEnabled"), csub, "ttyEnabled", v); ok && b {
			c.TTY = true // PodTemplateBuilder: withTty(isTtyEnabled()), no stdin
		}
	}
	if v, ok := o.str("workingDir"); ok && v != "" {
		c.WorkingDir = v
	}
	var sc corev1.SecurityContext
	if v, ok := o.str("privileged"); ok && v != "" {
		if b, ok := im.boolean(file, o.line("privileged"), csub, "privileged", v); ok && b {
			sc.Privileged = &b
		}
	}
	if v, ok := o.str("runAsUser"); ok && v != "" {
		sc.RunAsUser = im.int64Field(file, o.line("runAsUser"), csub, "runAsUser", v)
	}
	if v, ok := o.str("runAsGroup"); ok && v != "" {
		sc.RunAsGroup = im.int64Field(file, o.line("runAsGroup"), csub, "runAsGroup", v)
	}
	if sc.Privileged != nil || sc.RunAsUser != nil || sc.RunAsGroup != nil {
		c.SecurityContext = &sc
	}
	// PodTemplateBuilder.getResourcesMap: blank values are left out.
	for _, r := range []struct {
		key  string
		list *corev1.ResourceList
		name corev1.ResourceName
	}{
		{"resourceRequestCpu", &c.Resources.Requests, corev1.ResourceCPU},
		{"resourceRequestMemory", &c.Resources.Requests, corev1.ResourceMemory},
		{"resourceRequestEphemeralStorage", &c.Resources.Requests, corev1.ResourceEphemeralStorage},
		{"resourceLimitCpu", &c.Resources.Limits, corev1.ResourceCPU},
		{"resourceLimitMemory", &c.Resources.Limits, corev1.ResourceMemory},
		{"resourceLimitEphemeralStorage", &c.Resources.Limits, corev1.ResourceEphemeralStorage},
	} {
		v, ok := o.str(r.key)
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		q, err := resource.ParseQuantity(strings.TrimSpace(v))
		if err != nil {
			im.dropf(file, o.line(r.key), csub, r.key, "%q is not a Kubernetes quantity; not carried over", v)
			continue
		}
		if *r.list == nil {
			*r.list = corev1.ResourceList{}
		}
		(*r.list)[r.name] = q
	}
	c.Env = im.envVars(file, o.get("envVars"), csub, "envVars")
	if c.Name == "jnlp" {
		c.Env = im.dropAgentEnv(file, csub, c.Env)
	}
	if v, ok := o.str("alwaysPullImage"); ok && v != "" {
		if b, ok := im.boolean(file, o.line("alwaysPullImage"), csub, "alwaysPullImage", v); ok && b {
			c.ImagePullPolicy = corev1.PullAlways
		}
	}
	if c.ImagePullPolicy == "" && c.Image != "" && pullsByDefault(c.Image) {
		// PodTemplateBuilder always sets IfNotPresent; Kubernetes would pull a :latest (or
		// untagged) image every time, so say IfNotPresent where the two differ.
		c.ImagePullPolicy = corev1.PullIfNotPresent
	}
	if p := o.get("livenessProbe"); p != nil {
		c.LivenessProbe = im.probe(file, p, csub, o.line("livenessProbe"))
	}
	for j, p := range items(o.get("ports")) {
		if inner := lookup(p, "portMapping"); inner != nil {
			p = inner
		}
		po := im.obj(file, p, csub+": port")
		var port corev1.ContainerPort
		port.Name, _ = po.str("name")
		if v, ok := po.str("containerPort"); ok {
			if n, err := strconv.ParseInt(v, 10, 32); err == nil {
				port.ContainerPort = int32(n)
			}
		}
		if v, ok := po.str("hostPort"); ok && v != "" {
			if n, err := strconv.ParseInt(v, 10, 32); err == nil {
				port.HostPort = int32(n)
			}
		}
		po.rest()
		if port.ContainerPort == 0 {
			im.dropf(file, p.Line, csub, fmt.Sprintf("ports[%d]", j), "a port without a containerPort number; not carried over")
			continue
		}
		c.Ports = append(c.Ports, port)
	}
	o.drop("shell", "the shell of the container() step; pipelines here run in the agent's container (see docs/migrating.md)")
	o.rest()
	return c
}

// pullsByDefault: Kubernetes' default pull policy is Always for :latest and untagged images.
func pullsByDefault(image string) bool {
	if strings.Contains(image, "@") {
		return false
	}
	last := image[strings.LastIndex(image, "/")+1:]
	i := strings.LastIndex(last, ":")
	return i < 0 || last[i+1:] == "latest"
}

func (im *importer) commandLine(file string, line int, subject, field, v string) []string {
	args, ok := splitCommandLine(v)
	if !ok {
		im.changef(file, line, subject, field, "unbalanced quote in %q (the plugin would fail on it); split on spaces instead", v)
		return strings.Fields(v)
	}
	return args
}

// dropAgentArgs removes the jnlp container's ${computer.jnlpmac} and ${computer.name}: the
// plugin substitutes the agent's secret and name there (PodTemplateBuilder.createContainer);
// here the agent gets them from JENKINS_SECRET and JENKINS_AGENT_NAME.
func (im *importer) dropAgentArgs(file string, line int, subject string, args []string) []string {
	var out, dropped []string
	for _, a := range args {
		if strings.Contains(a, "${computer.jnlpmac}") || strings.Contains(a, "${computer.name}") {
			dropped = append(dropped, a)
			continue
		}
		out = append(out, a)
	}
	if len(dropped) > 0 {
		im.dropf(file, line, subject, "args", "by design: %s; the provisioner gives the agent its secret and name in JENKINS_SECRET (from a Secret) and JENKINS_AGENT_NAME", strings.Join(dropped, " "))
	}
	return out
}

// agentEnvNames are the variables the provisioner sets on the jnlp container itself
// (docs/templates.md, "The agent pod"); a template's own value would win over them.
var agentEnvNames = map[string]string{
	"JENKINS_URL":               "PROVISIONER_AGENT_JENKINS_URL",
	"JENKINS_TUNNEL":            "PROVISIONER_AGENT_TUNNEL",
	"JENKINS_SECRET":            "",
	"JENKINS_AGENT_NAME":        "",
	"JENKINS_NAME":              "",
	"JENKINS_AGENT_WORKDIR":     "",
	"JENKINS_DIRECT_CONNECTION": "PROVISIONER_AGENT_TUNNEL",
}

func (im *importer) dropAgentEnv(file, subject string, env []corev1.EnvVar) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, e := range env {
		setting, ours := agentEnvNames[e.Name]
		if !ours {
			out = append(out, e)
			continue
		}
		line := im.envLines[e.Name+"\x00"+subject]
		if setting != "" && e.Value != "" {
			im.setting(setting, e.Value, file, line, subject, e.Name)
		}
		reason := "the provisioner sets it for every agent"
		if setting != "" {
			reason += "; " + setting + " is the setting"
		}
		im.dropf(file, line, subject, "envVars "+e.Name, "%s", reason)
	}
	return out
}

func (im *importer) probe(file string, n *yaml.Node, subject string, keyLine int) *corev1.Probe {
	o := im.obj(file, n, subject+": livenessProbe")
	exec, _ := o.str("execArgs")
	p := &corev1.Probe{}
	for _, f := range []struct {
		key string
		dst *int32
	}{
		{"timeoutSeconds", &p.TimeoutSeconds}, {"initialDelaySeconds", &p.InitialDelaySeconds},
		{"failureThreshold", &p.FailureThreshold}, {"periodSeconds", &p.PeriodSeconds},
		{"successThreshold", &p.SuccessThreshold},
	} {
		if v, ok := o.str(f.key); ok && v != "" {
			if n, err := strconv.ParseInt(v, 10, 32); err == nil {
				*f.dst = int32(n)
			}
		}
	}
	o.rest()
	args, _ := splitCommandLine(exec)
	if len(args) == 0 {
		// PodTemplateBuilder.createContainer builds a probe only when execArgs splits into words.
		im.dropf(file, keyLine, subject, "livenessProbe", "no execArgs: the plugin makes no probe of it either")
		return nil
	}
	p.Exec = &corev1.ExecAction{Command: args}
	return p
}

// envVars converts a list of the plugin's TemplateEnvVar: envVar / containerEnvVar / podEnvVar
// (KeyValueEnvVar: key, value) and secretEnvVar (SecretEnvVar: key, secretName, secretKey,
// optional).
func (im *importer) envVars(file string, n *yaml.Node, subject, field string) []corev1.EnvVar {
	var out []corev1.EnvVar
	for _, it := range items(n) {
		ps := pairs(it)
		if len(ps) != 1 {
			im.dropf(file, it.Line, subject, field, "an entry that is not one of envVar, containerEnvVar, podEnvVar, secretEnvVar; not carried over")
			continue
		}
		kind, body := ps[0][0].Value, ps[0][1]
		o := im.obj(file, body, subject+": "+kind)
		key, _ := o.str("key")
		if key == "" {
			o.rest()
			im.dropf(file, it.Line, subject, field, "%s without a key; not carried over", kind)
			continue
		}
		im.envLines[key+"\x00"+subject] = it.Line
		switch kind {
		case "envVar", "containerEnvVar", "podEnvVar", "keyValueEnvVar":
			v, _ := o.str("value")
			out = append(out, corev1.EnvVar{Name: key, Value: v})
		case "secretEnvVar":
			name, _ := o.str("secretName")
			skey, _ := o.str("secretKey")
			ref := &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: skey}
			if v, ok := o.str("optional"); ok && v != "" {
				if b, ok := im.boolean(file, o.line("optional"), subject, "optional", v); ok {
					ref.Optional = &b
				}
			}
			out = append(out, corev1.EnvVar{Name: key, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: ref}})
		default:
			im.dropf(file, it.Line, subject, field, "unknown environment variable kind %q; not carried over", kind)
			o.used = map[string]bool{"key": true}
			for k := range o.keys {
				o.used[k] = true
			}
		}
		o.rest()
	}
	return out
}
