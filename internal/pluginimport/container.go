package pluginimport

import (
	"fmt"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// One containerTemplate to a container, as the plugin's ContainerTemplate and
// PodTemplateBuilder.createContainer read it: image, command line, the agent's own arguments and
// env left to the provisioner, probes and env vars.

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
