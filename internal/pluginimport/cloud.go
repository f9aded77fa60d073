package pluginimport

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	yaml "go.yaml.in/yaml/v3"
)

// cloud imports one jenkins.clouds[].kubernetes (the plugin's KubernetesCloud).
func (im *importer) cloud(file string, n *yaml.Node) {
	im.clouds++
	o := im.obj(file, n, "cloud")
	c := &cloudCtx{file: file, retention: "never"}
	c.name, _ = o.str("name")
	if c.name == "" {
		c.name = "kubernetes" // KubernetesCloud's default name
	}
	o.what = "cloud " + c.name
	subject := o.what

	for _, key := range []string{"containerCapStr", "containerCap"} {
		v, ok := o.str(key)
		if !ok || strings.TrimSpace(v) == "" {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		switch {
		case err != nil:
			im.dropf(file, o.line(key), subject, key, "%q is not a number; not carried over", v)
		case n <= 0 || n >= pluginUnlimited:
			// KubernetesCloud.getContainerCap: 0 or empty means no limit.
		default:
			c.containerCap = n
			c.capLine = o.line(key)
			im.changef(file, o.line(key), subject, key, "the cloud's cap bounds each of its templates' maxAgents; PROVISIONER_MAX_AGENTS (the provisioner's global cap) is the sum over clouds")
		}
	}
	if v, ok := o.str("jenkinsUrl"); ok && v != "" {
		// The plugin's jenkinsUrl is the URL agents dial (and the controller's, in-cluster).
		im.setting("PROVISIONER_JENKINS_URL", v, file, o.line("jenkinsUrl"), subject, "jenkinsUrl")
	}
	if v, ok := o.str("jenkinsTunnel"); ok && v != "" {
		im.setting("PROVISIONER_AGENT_TUNNEL", v, file, o.line("jenkinsTunnel"), subject, "jenkinsTunnel")
	}
	if v, ok := o.str("webSocket"); ok && v != "" {
		if b, ok := im.boolean(file, o.line("webSocket"), subject, "webSocket", v); ok {
			c.webSocket = &b
			if b {
				im.changef(file, o.line("webSocket"), subject, "webSocket", "agent.webSocket: true on each of the cloud's templates")
			}
		}
	}
	if v, ok := o.str("directConnection"); ok && v != "" {
		if b, _ := im.boolean(file, o.line("directConnection"), subject, "directConnection", v); b {
			im.dropf(file, o.line("directConnection"), subject, "directConnection", "agents connect to Jenkins' TCP agent port without the HTTP handshake: set PROVISIONER_AGENT_TUNNEL to that host:port instead")
		} else {
			o.used["directConnection"] = true
		}
	}
	if v, ok := o.str("namespace"); ok && v != "" {
		im.namespace(file, o.line("namespace"), subject, v)
	}
	labels := im.keyValues(file, o.get("podLabels"), subject, "podLabels")
	if len(labels) > 0 {
		c.podLabels = labels
	}
	if r := o.get("podRetention"); r != nil {
		t := &outTemplate{cloud: &cloudCtx{retention: "never"}}
		im.retention(o, t, subject)
		if t.podRetention != "" {
			c.retention = t.podRetention
		}
	}
	if v, ok := o.str("defaultsProviderTemplate"); ok && v != "" {
		// KubernetesCloud.getUnwrappedTemplates: every template inherits from it first.
		c.defaults = v
	}
	o.drop("credentialsId", "Jenkins credentials for the Kubernetes API: the provisioner uses its own ServiceAccount in the cluster (deploy/manifests, charts/jenkins-agent-provisioner), or PROVISIONER_KUBECONFIG for another cluster; create a kubeconfig Secret for that instead")
	o.drop("serverUrl", "the provisioner works in the cluster it runs in, or the one PROVISIONER_KUBECONFIG names")
	o.drop("serverCertificate", "part of the Kubernetes connection: PROVISIONER_KUBECONFIG")
	o.drop("skipTlsVerify", "part of the Kubernetes connection: PROVISIONER_KUBECONFIG")
	o.drop("connectTimeout", "Kubernetes client time-out; the provisioner's requests have their own")
	o.drop("readTimeout", "Kubernetes client time-out; the provisioner's requests have their own")
	o.drop("maxRequestsPerHost", "Kubernetes client concurrency: PROVISIONER_KUBE_QPS and PROVISIONER_KUBE_BURST")
	o.drop("maxRequestsPerHostStr", "Kubernetes client concurrency: PROVISIONER_KUBE_QPS and PROVISIONER_KUBE_BURST")
	o.drop("retentionTimeout", "how long the plugin keeps an idle agent: one build per pod here, nothing idles")
	o.drop("waitForPodSec", "how long the plugin waits for a pod to run: each template's connectTimeout covers start-up and connection")
	o.drop("usageRestricted", "restricts the cloud to some folders: no equivalent; labels decide")
	o.drop("addMasterProxyEnvVars", "set the proxy variables in the templates' containers' env")
	o.drop("capOnlyOnAlivePods", "caps here always count live pods")
	o.drop("garbageCollection", "pods, Secrets and nodes of ours without their other half are always removed after PROVISIONER_ORPHAN_GRACE")
	o.drop("restrictedPssSecurityContext", "write the restricted securityContext in a parent template's pod (docs/templates.md, inheritance)")
	o.drop("jnlpregistry", "write the registry in each template's agent.image or jnlp container image")
	o.drop("useJenkinsProxy", "the provisioner reaches Kubernetes directly")
	o.drop("traits", "cloud traits have no equivalent")
	o.drop("labels", "cloud labels have no equivalent; template labels decide")

	var ts []*outTemplate
	for i, t := range items(o.get("templates")) {
		if ot := im.template(file, t, c, i+1); ot != nil {
			ts = append(ts, ot)
		}
	}
	if c.defaults != "" {
		found := false
		for _, t := range ts {
			if t.origName == c.defaults {
				found = true
			}
		}
		if !found {
			im.dropf(file, o.line("defaultsProviderTemplate"), subject, "defaultsProviderTemplate", "no template %q in this cloud; not carried over", c.defaults)
		} else {
			for _, t := range ts {
				if t.origName != c.defaults && !slices.Contains(t.inheritFrom, c.defaults) {
					t.inheritFrom = append([]string{c.defaults}, t.inheritFrom...)
				}
			}
			im.changef(file, o.line("defaultsProviderTemplate"), subject, "defaultsProviderTemplate", "each of the cloud's templates inherits from %s first", c.defaults)
		}
	}
	if len(ts) == 0 {
		im.dropf(file, n.Line, subject, "templates", "a cloud without templates: nothing to import")
	}
	im.templates = append(im.templates, ts...)
	o.rest()
}

// scanPipelines reports pipelines that define their pods inline (podTemplate(...), agent {
// kubernetes { ... } }) wherever a string of the file holds one (a JCasC jobs: script, a job DSL).
func (im *importer) scanPipelines(file string, n *yaml.Node, depth int) {
	count := 0
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		n = resolve(n)
		if n == nil || count > maxWalkNodes {
			return
		}
		count++
		if n.Kind == yaml.ScalarNode {
			im.scanScript(file, n)
			return
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(n)
}

func (im *importer) scanScript(file string, n *yaml.Node) {
	text := n.Value
	base := stringOffset(n)
	for i, line := range strings.Split(text, "\n") {
		var what string
		switch {
		case strings.Contains(line, "podTemplate("):
			what = "podTemplate(...)"
		case strings.Contains(line, "kubernetes {") || strings.Contains(line, "kubernetes{"):
			what = "agent { kubernetes { ... } }"
		default:
			continue
		}
		ln := base + i + 1
		if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) == 0 && i == 0 {
			ln = n.Line
		}
		label := ""
		if j := strings.Index(line, "label:"); j >= 0 {
			label = strings.Trim(strings.Fields(line[j+len("label:"):] + " x")[0], "'\",)")
		}
		advice := "add a template whose labels serve the pipeline's label, and write agent { label '...' } or node('...') in the pipeline (docs/templates.md, \"Pods defined in pipelines\")"
		if label != "" && label != "x" {
			advice = fmt.Sprintf("add a template with labels [%s] holding that pod, and write node('%s') in the pipeline (docs/templates.md, \"Pods defined in pipelines\")", label, label)
		}
		im.add(PerPipeline, file, ln, "pipeline", what, "a pod defined inside a pipeline cannot be served by a provisioner outside Jenkins: %s", advice)
	}
}
