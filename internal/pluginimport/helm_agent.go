package pluginimport

import (
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// One agent of the jenkinsci chart's values (agent, additionalAgents) made into a JCasC pod
// template the way the chart's jenkins.casc.podTemplate helper renders it, with the default agent's
// values under an additional agent's own.

// helmAgent reads one agent's values: its own, then the default agent's (the chart merges
// additionalAgents over agent with Sprig's merge, maps deeply).
type helmAgent struct {
	im   *importer
	file string
	own  *obj
}

// val looks a dotted path up in the agent, then its parents.
func (a *helmAgent) val(path string) *yaml.Node {
	for o := a.own; o != nil; o = o.parent {
		if v := o.path(path); v != nil {
			return v
		}
	}
	return nil
}

func (a *helmAgent) text(path, def string) string {
	if v := a.val(path); v != nil && v.Kind == yaml.ScalarNode && v.Value != "" {
		return v.Value
	}
	return def
}

func (a *helmAgent) boolVal(path string) bool {
	v := a.val(path)
	return v != nil && v.Kind == yaml.ScalarNode && strings.EqualFold(v.Value, "true")
}

func (a *helmAgent) line() int {
	for o := a.own; o != nil; o = o.parent {
		if o.n != nil {
			return o.n.Line
		}
	}
	return 1
}

func keyAt(k string, line int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k, Line: line}
}

func strAt(v string, line int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v, Line: line}
}

// podTemplate builds the JCasC template the chart's "jenkins.casc.podTemplate" renders.
func (a *helmAgent) podTemplate() *yaml.Node {
	line := a.line()
	t := &yaml.Node{Kind: yaml.MappingNode, Line: line}
	set := func(k string, v *yaml.Node) {
		if v != nil {
			t.Content = append(t.Content, keyAt(k, v.Line), v)
		}
	}
	lineOf := func(path string) int {
		if v := a.val(path); v != nil {
			return v.Line
		}
		return line
	}
	set("name", strAt(a.text("podName", "default"), lineOf("podName")))
	set("namespace", a.val("namespace"))
	if ann := a.val("annotations"); len(pairs(ann)) > 0 {
		set("annotations", keyValueList(ann))
	}
	c := &yaml.Node{Kind: yaml.MappingNode, Line: line}
	cset := func(k string, v *yaml.Node) {
		if v != nil {
			c.Content = append(c.Content, keyAt(k, v.Line), v)
		}
	}
	cset("name", strAt(a.text("sideContainerName", "jnlp"), lineOf("sideContainerName")))
	cset("alwaysPullImage", a.val("alwaysPullImage"))
	if v := a.val("args"); v != nil {
		cset("args", strAt(v.Value, v.Line)) // the chart escapes $ as ^$; the JCasC reader undoes it
	} else {
		cset("args", strAt("${computer.jnlpmac} ${computer.name}", line))
	}
	cset("command", a.val("command"))
	image := a.text("image.repository", "jenkins/inbound-agent") + ":" + a.text("image.tag", "latest")
	if r := a.text("image.registry", ""); r != "" {
		image = r + "/" + image
	}
	cset("image", strAt(image, lineOf("image.repository")))
	if p := a.val("livenessProbe"); len(pairs(p)) > 0 {
		cset("livenessProbe", p)
	}
	cset("privileged", a.val("privileged"))
	for _, r := range [][2]string{
		{"resourceLimitCpu", "resources.limits.cpu"}, {"resourceLimitMemory", "resources.limits.memory"},
		{"resourceLimitEphemeralStorage", "resources.limits.ephemeralStorage"},
		{"resourceRequestCpu", "resources.requests.cpu"}, {"resourceRequestMemory", "resources.requests.memory"},
		{"resourceRequestEphemeralStorage", "resources.requests.ephemeralStorage"},
	} {
		cset(r[0], a.val(r[1]))
	}
	cset("runAsUser", a.val("runAsUser"))
	cset("runAsGroup", a.val("runAsGroup"))
	cset("ttyEnabled", a.val("TTYEnabled"))
	cset("workingDir", a.val("workingDir"))
	containers := &yaml.Node{Kind: yaml.SequenceNode, Line: line, Content: []*yaml.Node{c}}
	for _, ac := range items(a.val("additionalContainers")) {
		containers.Content = append(containers.Content, a.additionalContainer(ac))
	}
	set("containers", containers)

	env := &yaml.Node{Kind: yaml.SequenceNode, Line: lineOf("envVars")}
	for _, e := range items(a.val("envVars")) {
		kv := &yaml.Node{Kind: yaml.MappingNode, Line: e.Line}
		if k := lookup(e, "name"); k != nil {
			kv.Content = append(kv.Content, keyAt("key", k.Line), k)
		}
		if v := lookup(e, "value"); v != nil {
			kv.Content = append(kv.Content, keyAt("value", v.Line), v)
		}
		env.Content = append(env.Content, wrap("envVar", kv))
	}
	for _, e := range items(a.val("secretEnvVars")) {
		env.Content = append(env.Content, wrap("secretEnvVar", e))
	}
	if len(env.Content) > 0 {
		set("envVars", env)
	}
	set("idleMinutes", a.val("idleMinutes"))
	set("instanceCap", a.val("instanceCap"))
	if a.boolVal("hostNetworking") {
		set("hostNetwork", a.val("hostNetworking"))
	}
	if v := a.val("imagePullSecretName"); v != nil && v.Value != "" {
		ps := &yaml.Node{Kind: yaml.MappingNode, Line: v.Line, Content: []*yaml.Node{keyAt("name", v.Line), v}}
		set("imagePullSecrets", &yaml.Node{Kind: yaml.SequenceNode, Line: v.Line, Content: []*yaml.Node{ps}})
	}
	// label: "<release>-<componentName> <customJenkinsLabels...>"
	label := a.im.opts.HelmRelease + "-" + a.text("componentName", "jenkins-agent")
	if cl := a.val("customJenkinsLabels"); cl != nil {
		if cl.Kind == yaml.SequenceNode {
			for _, l := range items(cl) {
				label += " " + l.Value
			}
		} else {
			label += " " + cl.Value
		}
	}
	set("label", strAt(label, lineOf("customJenkinsLabels")))
	if ns := a.val("nodeSelector"); len(pairs(ns)) > 0 {
		var parts []string
		for _, p := range sortedPairs(ns) {
			parts = append(parts, p[0].Value+"="+p[1].Value)
		}
		set("nodeSelector", strAt(strings.Join(parts, ","), ns.Line))
	}
	set("nodeUsageMode", a.val("nodeUsageMode"))
	set("podRetention", a.val("podRetention"))
	set("showRawYaml", a.val("showRawYaml"))
	set("serviceAccount", a.val("serviceAccount"))
	set("slaveConnectTimeoutStr", a.val("connectTimeout"))
	if vs := items(a.val("volumes")); len(vs) > 0 {
		list := &yaml.Node{Kind: yaml.SequenceNode, Line: vs[0].Line}
		for _, v := range vs {
			if w := a.typed(v, volumeKinds); w != nil {
				list.Content = append(list.Content, w)
			}
		}
		set("volumes", list)
	}
	if ws := a.val("workspaceVolume"); len(pairs(ws)) > 0 {
		set("workspaceVolume", a.typed(ws, workspaceKinds))
	}
	set("yaml", a.val("yamlTemplate"))
	set("yamlMergeStrategy", a.val("yamlMergeStrategy"))
	set("inheritYamlMergeStrategy", a.val("inheritYamlMergeStrategy"))
	for _, k := range []string{"podName", "annotations", "sideContainerName", "alwaysPullImage", "args", "command", "image", "livenessProbe", "privileged", "resources", "runAsUser", "runAsGroup", "TTYEnabled", "workingDir", "additionalContainers", "envVars", "secretEnvVars", "idleMinutes", "instanceCap", "hostNetworking", "imagePullSecretName", "customJenkinsLabels", "nodeSelector", "nodeUsageMode", "podRetention", "showRawYaml", "serviceAccount", "connectTimeout", "volumes", "workspaceVolume", "yamlTemplate", "yamlMergeStrategy", "inheritYamlMergeStrategy"} {
		a.own.mark(k)
	}
	return t
}

func wrap(kind string, body *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.MappingNode, Line: body.Line, Content: []*yaml.Node{keyAt(kind, body.Line), body}}
}

func keyValueList(m *yaml.Node) *yaml.Node {
	list := &yaml.Node{Kind: yaml.SequenceNode, Line: m.Line}
	for _, p := range sortedPairs(m) {
		list.Content = append(list.Content, &yaml.Node{Kind: yaml.MappingNode, Line: p[0].Line, Content: []*yaml.Node{
			keyAt("key", p[0].Line), strAt(p[0].Value, p[0].Line), keyAt("value", p[1].Line), p[1],
		}})
	}
	return list
}

// The chart's volume type: values and the JCasC symbols it renders them as.
var volumeKinds = map[string]string{
	"ConfigMap": "configMapVolume", "EmptyDir": "emptyDirVolume", "EphemeralVolume": "genericEphemeralVolume",
	"HostPath": "hostPathVolume", "Nfs": "nfsVolume", "PVC": "persistentVolumeClaim", "Secret": "secretVolume",
}

var workspaceKinds = map[string]string{
	"DynamicPVC": "dynamicPVC", "EmptyDir": "emptyDirWorkspaceVolume", "EphemeralVolume": "genericEphemeralVolume",
	"HostPath": "hostPathWorkspaceVolume", "Nfs": "nfsWorkspaceVolume", "PVC": "persistentVolumeClaimWorkspaceVolume",
}

// typed turns {type: X, ...} into {symbol: {...}}, as the chart's template does (an unknown
// type is used as the symbol itself).
func (a *helmAgent) typed(v *yaml.Node, kinds map[string]string) *yaml.Node {
	ty := lookup(v, "type")
	if ty == nil {
		a.im.dropf(a.file, v.Line, "agent volume", "type", "no type; not carried over")
		return nil
	}
	sym, ok := kinds[ty.Value]
	if !ok {
		sym = ty.Value
	}
	body := &yaml.Node{Kind: yaml.MappingNode, Line: v.Line}
	for _, p := range pairs(v) {
		if p[0].Value != "type" {
			body.Content = append(body.Content, p[0], p[1])
		}
	}
	return wrap(sym, body)
}

// additionalContainer renders one agent.additionalContainers entry as the chart does.
func (a *helmAgent) additionalContainer(n *yaml.Node) *yaml.Node {
	o := a.im.obj(a.file, n, "additionalContainers")
	c := &yaml.Node{Kind: yaml.MappingNode, Line: n.Line}
	cset := func(k string, v *yaml.Node) {
		if v != nil {
			c.Content = append(c.Content, keyAt(k, v.Line), v)
		}
	}
	cset("name", o.get("sideContainerName"))
	cset("alwaysPullImage", orNode(o.get("alwaysPullImage"), a.val("alwaysPullImage")))
	if v := o.get("args"); v != nil {
		cset("args", v)
	}
	cset("command", o.get("command"))
	if img := o.get("image"); img != nil {
		io := a.im.obj(a.file, img, "additionalContainers image")
		repo, _ := io.str("repository")
		tag, _ := io.str("tag")
		if tag == "" {
			tag = "latest"
		}
		image := repo + ":" + tag
		if r, _ := io.str("registry"); r != "" {
			image = r + "/" + image
		}
		io.rest()
		cset("image", strAt(image, img.Line))
	}
	cset("livenessProbe", o.get("livenessProbe"))
	cset("privileged", o.get("privileged"))
	res := o.get("resources")
	for _, r := range [][3]string{
		{"resourceLimitCpu", "limits", "cpu"}, {"resourceLimitMemory", "limits", "memory"},
		{"resourceRequestCpu", "requests", "cpu"}, {"resourceRequestMemory", "requests", "memory"},
	} {
		if res != nil {
			cset(r[0], lookup(lookup(res, r[1]), r[2]))
		} else {
			cset(r[0], a.val("resources."+r[1]+"."+r[2]))
		}
	}
	cset("runAsUser", orNode(o.get("runAsUser"), a.val("runAsUser")))
	cset("runAsGroup", orNode(o.get("runAsGroup"), a.val("runAsGroup")))
	cset("ttyEnabled", orNode(o.get("TTYEnabled"), a.val("TTYEnabled")))
	cset("workingDir", orNode(o.get("workingDir"), a.val("workingDir")))
	o.drop("jenkinsUrl", "the chart sets JENKINS_URL in every container; the provisioner sets it in jnlp: PROVISIONER_AGENT_JENKINS_URL")
	o.rest()
	return c
}

func orNode(a, b *yaml.Node) *yaml.Node {
	if a != nil {
		return a
	}
	return b
}
