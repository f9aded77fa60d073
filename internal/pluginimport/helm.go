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
			ao.rest() // its own unknown keys; the default agent's are reported once, with it
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
