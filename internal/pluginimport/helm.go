package pluginimport

import (
	"sort"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// helm imports the jenkinsci/jenkins chart's values. It builds, for each agent, the JCasC pod
// template the chart itself renders (templates/_helpers.tpl, "jenkins.casc.podTemplate"), with
// every node keeping the line of the value it came from, and imports that like any JCasC
// template: one conversion, one set of semantics.
func (im *importer) helm(file string, root *yaml.Node) {
	if r := resolve(root); r == nil || r.Kind != yaml.MappingNode {
		im.dropf(file, root.Line, "values", "", "Helm values are a mapping, got %s; not read", kindName(root))
		return
	}
	top := im.obj(file, root, "values")
	agentNode := top.get("agent")
	additional := top.get("additionalAgents")
	clouds := top.get("additionalClouds")
	for _, p := range top.list {
		if k := p[0].Value; k != "agent" && k != "additionalAgents" && k != "additionalClouds" {
			top.used[k] = true // the controller's own values: not agent templates
		}
	}
	// Clouds written as JCasC in controller.JCasC.configScripts come on top of the chart's own.
	if c := lookup(root, "controller"); c != nil {
		im.jcasc(file, c, 0)
	}
	base := im.obj(file, agentNode, "agent")
	base.parent = im.helmDefaults()
	base.drop("additionalAgents", "the chart reads additionalAgents at the top level of its values, not under agent: (the chart ignores it here too)")
	base.drop("additionalClouds", "the chart reads additionalClouds at the top level of its values, not under agent: (the chart ignores it here too)")
	im.helmTemplateExprs(file, agentNode, "agent")
	im.helmTemplateExprs(file, additional, "additionalAgents")
	im.helmCloud(file, "kubernetes", base, additional, root.Line)
	for _, p := range sortedPairs(clouds) {
		name, cv := p[0].Value, p[1]
		co := im.obj(file, cv, "additionalClouds "+name)
		own := co.get("additionalAgents")
		override := false
		if v, ok := co.str("additionalAgentsOverride"); ok {
			override, _ = im.boolean(file, co.line("additionalAgentsOverride"), co.what, "additionalAgentsOverride", v)
		}
		var agents []*yaml.Node
		if !override && additional != nil {
			agents = append(agents, additional)
		}
		if own != nil {
			agents = append(agents, own)
		}
		agentOver := co.get("agent")
		cloudBase := base
		if agentOver != nil {
			cloudBase = im.obj(file, agentOver, "additionalClouds "+name+": agent")
			cloudBase.parent = base
			cloudBase.helmOverlay = true
		}
		co.drop("kubernetesURL", "the provisioner works in the cluster it runs in, or the one PROVISIONER_KUBECONFIG names: run one provisioner per cluster")
		co.drop("credentialsId", "Jenkins credentials for the Kubernetes API: give the provisioner for that cluster a kubeconfig (PROVISIONER_KUBECONFIG) from a Secret instead")
		co.rest()
		im.helmCloud(file, name, cloudBase, mergeMaps(agents), p[0].Line)
	}
	top.rest()
}

func sortedPairs(n *yaml.Node) [][2]*yaml.Node {
	ps := pairs(n)
	// Helm ranges over maps in key order.
	sort.SliceStable(ps, func(i, j int) bool { return ps[i][0].Value < ps[j][0].Value })
	return ps
}

// mergeMaps joins several additionalAgents maps; later ones win by key.
func mergeMaps(ns []*yaml.Node) *yaml.Node {
	if len(ns) == 0 {
		return nil
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Line: ns[0].Line}
	idx := map[string]int{}
	for _, n := range ns {
		for _, p := range pairs(n) {
			if i, ok := idx[p[0].Value]; ok {
				out.Content[i+1] = p[1]
				continue
			}
			idx[p[0].Value] = len(out.Content)
			out.Content = append(out.Content, p[0], p[1])
		}
	}
	return out
}

// helmCloud builds one cloud's templates: the default agent, then additionalAgents in key
// order, then agent.podTemplates, as the chart renders them.
func (im *importer) helmCloud(file, name string, base *obj, additional *yaml.Node, line int) {
	cloudNode := &yaml.Node{Kind: yaml.MappingNode, Line: line}
	set := func(k string, v *yaml.Node) { cloudNode.Content = append(cloudNode.Content, keyAt(k, v.Line), v) }
	set("name", strAt(name, line))
	a := &helmAgent{im: im, file: file, own: base}
	if v := a.val("containerCap"); v != nil {
		set("containerCapStr", v)
	}
	direct := a.boolVal("directConnection")
	if !direct {
		if v := a.val("jenkinsUrl"); v != nil {
			set("jenkinsUrl", v)
		}
		if a.boolVal("websocket") {
			set("webSocket", a.val("websocket"))
		} else if v := a.val("jenkinsTunnel"); v != nil {
			set("jenkinsTunnel", v)
		}
	} else {
		set("directConnection", a.val("directConnection"))
	}
	if v := a.val("namespace"); v != nil {
		set("namespace", v)
	}
	// The chart labels every agent pod jenkins/<release>-<componentName>: "true" (its
	// NetworkPolicy lets such pods reach the controller), then agent.podLabels.
	comp := a.text("componentName", "jenkins-agent")
	labels := &yaml.Node{Kind: yaml.MappingNode, Line: line}
	labels.Content = append(labels.Content, strAt("jenkins/"+im.opts.HelmRelease+"-"+comp, line), strAt("true", line))
	for _, p := range pairs(a.val("podLabels")) {
		labels.Content = append(labels.Content, p[0], p[1])
	}
	set("podLabels", labels)
	if v := a.val("podRetention"); v != nil {
		set("podRetention", v)
	}

	templates := &yaml.Node{Kind: yaml.SequenceNode, Line: line}
	enabled := true
	if v := a.val("enabled"); v != nil {
		enabled = a.boolVal("enabled")
	}
	if enabled {
		if !a.boolVal("disableDefaultAgent") {
			templates.Content = append(templates.Content, a.podTemplate())
		}
		for _, p := range sortedPairs(additional) {
			ao := im.obj(file, p[1], "additionalAgents "+p[0].Value)
			ao.parent = base
			aa := &helmAgent{im: im, file: file, own: ao}
			templates.Content = append(templates.Content, aa.podTemplate())
			ao.restOwn()
		}
		for _, p := range sortedPairs(a.val("podTemplates")) {
			v := p[1]
			if strings.Contains(v.Value, "{{") {
				im.changef(file, p[0].Line, "agent.podTemplates "+p[0].Value, "", "holds Helm template expressions ({{ ... }}), which the chart renders and the import leaves as written: check the result")
			}
			docs, err := parseDocuments(file, []byte(v.Value), stringOffset(v))
			if err != nil {
				im.dropf(file, p[0].Line, "agent.podTemplates "+p[0].Value, "", "not YAML (%v); not carried over", err)
				continue
			}
			for _, d := range docs {
				r := resolve(d.root)
				if r.Kind == yaml.SequenceNode {
					templates.Content = append(templates.Content, r.Content...)
				} else if r.Kind == yaml.MappingNode {
					templates.Content = append(templates.Content, r)
				}
			}
		}
	}
	set("templates", templates)
	// The keys the chart reads at cloud level but the plugin's cloud does not turn into
	// templates are reported on the values' own lines.
	for k, reason := range map[string]string{
		"kubernetesConnectTimeout":     "Kubernetes client time-out; the provisioner's requests have their own",
		"kubernetesReadTimeout":        "Kubernetes client time-out; the provisioner's requests have their own",
		"maxRequestsPerHostStr":        "Kubernetes client concurrency: PROVISIONER_KUBE_QPS and PROVISIONER_KUBE_BURST",
		"retentionTimeout":             "how long the plugin keeps an idle agent: one build per pod here, nothing idles",
		"waitForPodSec":                "how long the plugin waits for a pod to run: each template's connectTimeout covers start-up and connection",
		"skipTlsVerify":                "part of the Kubernetes connection: PROVISIONER_KUBECONFIG",
		"usageRestricted":              "restricts the cloud to some folders: no equivalent; labels decide",
		"addMasterProxyEnvVars":        "set the proxy variables in the templates' containers' env",
		"garbageCollection":            "pods, Secrets and nodes of ours without their other half are always removed after PROVISIONER_ORPHAN_GRACE",
		"restrictedPssSecurityContext": "write the restricted securityContext in a parent template's pod (docs/templates.md, inheritance)",
		"jnlpregistry":                 "write the registry in each template's agent.image or jnlp container image",
		"defaultsProviderTemplate":     "the chart passes it to the cloud: give the templates inheritFrom instead",
		"useDefaultServiceAccount":     "the chart's agent service account: set pod.spec.serviceAccountName in the template when the agents need one",
		"enabled":                      "",
		"disableDefaultAgent":          "",
		"componentName":                "",
		"podLabels":                    "",
		"containerCap":                 "",
		"jenkinsUrl":                   "",
		"jenkinsTunnel":                "",
		"websocket":                    "",
		"directConnection":             "",
		"namespace":                    "",
		"podTemplates":                 "",
	} {
		if reason == "" {
			base.mark(k)
			continue
		}
		if !base.helmOverlay {
			base.drop(k, "%s", reason)
		} else {
			base.mark(k)
		}
	}
	im.cloud(file, cloudNode)
	base.rest()
}

// helmTemplateExprs reports values holding Helm template expressions: the chart renders them
// with tpl, the import cannot.
func (im *importer) helmTemplateExprs(file string, n *yaml.Node, where string) {
	count := 0
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		n = resolve(n)
		if n == nil || count > maxWalkNodes {
			return
		}
		count++
		if n.Kind == yaml.ScalarNode && strings.Contains(n.Value, "{{") {
			im.changef(file, n.Line, where, "", "a Helm template expression ({{ ... }}), which the chart renders with tpl; left as written: replace it with its value")
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
}

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

// path looks a dotted path up in the mapping, marking the first key read.
func (o *obj) path(p string) *yaml.Node {
	parts := strings.Split(p, ".")
	v := o.get(parts[0])
	for _, k := range parts[1:] {
		if v == nil {
			return nil
		}
		v = lookup(v, k)
	}
	if isNull(v) {
		return nil
	}
	return v
}

func (o *obj) mark(key string) {
	if _, ok := o.keys[key]; ok {
		o.used[key] = true
	}
}

// restOwn reports an additional agent's own unknown keys (the default agent's are reported once,
// with it).
func (o *obj) restOwn() { o.rest() }
