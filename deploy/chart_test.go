package deploy

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	yamlv3 "go.yaml.in/yaml/v3"
	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"helm.sh/helm/v3/pkg/lint/support"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	k8syaml "k8s.io/apimachinery/pkg/util/yaml"
)

// The Helm chart beside the kustomize base. It is rendered here with Helm's own Go SDK (the
// engine `helm template` and `helm install` use, with the chart's values.schema.json applied),
// linted with Helm's lint action, held to deploy/manifests object by object, and applied to the
// real kube-apiserver with server-side dry run.

const chartDir = "../charts/jenkins-agent-provisioner"

// baseValues are what an operator must give: the Jenkins URL and user of deploy/manifests'
// provisioner.env, so that the settings ConfigMaps can be compared as well.
func baseValues() map[string]any {
	return map[string]any{
		"settings": map[string]any{
			"jenkinsUrl":  "http://jenkins.jenkins.svc.cluster.local:8080/",
			"jenkinsUser": "jenkins-agent-provisioner",
		},
	}
}

func loadChart(t *testing.T) *chart.Chart {
	t.Helper()
	c, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load chart: %v", err)
	}
	return c
}

// renderChart renders the chart as `helm template RELEASE -n NAMESPACE --set ...` does and returns
// its objects and its NOTES.txt.
func renderChart(t *testing.T, release, namespace string, vals map[string]any) ([]*unstructured.Unstructured, string) {
	t.Helper()
	objs, notes, err := tryRenderChart(t, release, namespace, vals)
	if err != nil {
		t.Fatal(err)
	}
	return objs, notes
}

func tryRenderChart(t *testing.T, release, namespace string, vals map[string]any) ([]*unstructured.Unstructured, string, error) {
	t.Helper()
	c := loadChart(t)
	rv, err := chartutil.ToRenderValues(c, vals, chartutil.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true, Revision: 1}, chartutil.DefaultCapabilities)
	if err != nil {
		return nil, "", err
	}
	files, err := engine.Render(c, rv)
	if err != nil {
		return nil, "", err
	}
	var names []string
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	var objs []*unstructured.Unstructured
	notes := ""
	for _, name := range names {
		if strings.HasSuffix(name, "NOTES.txt") {
			notes = files[name]
			continue
		}
		if !strings.HasSuffix(name, ".yaml") {
			continue
		}
		dec := k8syaml.NewYAMLOrJSONDecoder(strings.NewReader(files[name]), 4096)
		for {
			var m map[string]any
			if err := dec.Decode(&m); err != nil {
				if errors.Is(err, io.EOF) {
					break
				}
				t.Fatalf("%s: %v\n%s", name, err, files[name])
			}
			if len(m) == 0 {
				continue
			}
			objs = append(objs, &unstructured.Unstructured{Object: m})
		}
	}
	return objs, notes, nil
}

func with(vals map[string]any, path string, v any) map[string]any {
	parts := strings.Split(path, ".")
	m := vals
	for _, p := range parts[:len(parts)-1] {
		next, ok := m[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			m[p] = next
		}
		m = next
	}
	m[parts[len(parts)-1]] = v
	return vals
}

// TestChartLint runs Helm's lint action, strict: warnings fail too.
func TestChartLint(t *testing.T) {
	lint := action.NewLint()
	lint.Strict = true
	lint.Namespace = provisionerNamespace
	res := lint.Run([]string{chartDir}, baseValues())
	for _, err := range res.Errors {
		t.Errorf("lint: %v", err)
	}
	for _, m := range res.Messages {
		if m.Severity >= support.WarningSev {
			t.Errorf("lint: %s", m)
		}
	}
	if res.TotalChartsLinted != 1 {
		t.Errorf("linted %d charts, want 1", res.TotalChartsLinted)
	}
	// Without the required Jenkins URL the chart refuses to render, naming the value.
	bad := lint.Run([]string{chartDir}, map[string]any{})
	if len(bad.Errors) == 0 && !slices.ContainsFunc(bad.Messages, func(m support.Message) bool { return m.Severity == support.ErrorSev }) {
		t.Errorf("lint without settings.jenkinsUrl passed")
	}
}

// kindName identifies an object across the two renderings; the settings ConfigMap's kustomize
// name carries a content hash, which the chart's does not (it rolls the pods with a checksum).
func kindName(u *unstructured.Unstructured) string {
	name := u.GetName()
	if u.GetKind() == "ConfigMap" && strings.HasPrefix(name, "jenkins-agent-provisioner-config-") {
		name = "jenkins-agent-provisioner-config"
	}
	return u.GetKind() + "/" + u.GetNamespace() + "/" + name
}

func byKindName(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
	m := map[string]*unstructured.Unstructured{}
	for _, u := range objs {
		m[kindName(u)] = u
	}
	return m
}

// TestChartMatchesKustomizeBase: installed as release jenkins-agent-provisioner in namespace
// jenkins-agent-provisioner (namespace.create on), the chart gives the same objects as
// deploy/manifests: same kinds and names, same RBAC rules and subjects, the same Deployment
// (replicas, strategy, security contexts, resources, probes, ports, environment, volumes,
// affinity), PDB, Service, settings and templates.
func TestChartMatchesKustomizeBase(t *testing.T) {
	base := byKindName(buildOnDisk(t, "manifests"))
	chartObjs, _ := renderChart(t, "jenkins-agent-provisioner", provisionerNamespace, with(baseValues(), "namespace.create", true))
	got := byKindName(chartObjs)
	if diff := cmp.Diff(slices.Sorted(maps.Keys(base)), slices.Sorted(maps.Keys(got))); diff != "" {
		t.Fatalf("objects (-kustomize +chart):\n%s", diff)
	}

	role := func(m map[string]*unstructured.Unstructured) []rbacv1.PolicyRule {
		return typed[rbacv1.Role](t, m["Role/"+provisionerNamespace+"/jenkins-agent-provisioner"]).Rules
	}
	if diff := cmp.Diff(role(base), role(got)); diff != "" {
		t.Errorf("Role rules (-kustomize +chart):\n%s", diff)
	}
	binding := func(m map[string]*unstructured.Unstructured) *rbacv1.RoleBinding {
		return typed[rbacv1.RoleBinding](t, m["RoleBinding/"+provisionerNamespace+"/jenkins-agent-provisioner"])
	}
	if diff := cmp.Diff(binding(base).Subjects, binding(got).Subjects); diff != "" {
		t.Errorf("RoleBinding subjects (-kustomize +chart):\n%s", diff)
	}
	if diff := cmp.Diff(binding(base).RoleRef, binding(got).RoleRef); diff != "" {
		t.Errorf("RoleBinding roleRef (-kustomize +chart):\n%s", diff)
	}

	dep := func(m map[string]*unstructured.Unstructured) *appsv1.Deployment {
		return typed[appsv1.Deployment](t, m["Deployment/"+provisionerNamespace+"/jenkins-agent-provisioner"])
	}
	bd, gd := dep(base), dep(got)
	// Labels and selectors differ on purpose (the chart adds Helm's instance and chart labels);
	// everything else of the pod must be the same.
	ignore := cmp.Options{
		cmpopts.IgnoreFields(appsv1.DeploymentSpec{}, "Selector"),
		cmpopts.IgnoreFields(corev1.PodTemplateSpec{}, "ObjectMeta"),
		cmpopts.IgnoreFields(corev1.PodAffinityTerm{}, "LabelSelector"),
		cmpopts.IgnoreFields(corev1.ConfigMapEnvSource{}, "LocalObjectReference"),
	}
	if diff := cmp.Diff(bd.Spec, gd.Spec, ignore); diff != "" {
		t.Errorf("Deployment spec (-kustomize +chart):\n%s", diff)
	}
	if got, want := gd.Spec.Template.Spec.Containers[0].Image, "ghcr.io/jenkins-agent-provisioner/provisioner:v0.1.0"; got != want {
		t.Errorf("image %s, want %s", got, want)
	}
	for _, c := range gd.Spec.Template.Spec.Containers {
		if problems := containerProblems(gd.Spec.Template.Spec, c); len(problems) > 0 {
			t.Errorf("container %s: %s", c.Name, strings.Join(problems, "; "))
		}
	}
	for _, d := range []*appsv1.Deployment{gd} {
		sel := d.Spec.Selector.MatchLabels
		for k, v := range sel {
			if d.Spec.Template.Labels[k] != v {
				t.Errorf("the Deployment's selector %s=%s does not select its pods", k, v)
			}
		}
		if sel["app.kubernetes.io/managed-by"] == "jenkins-agent-provisioner" || d.Spec.Template.Labels["app.kubernetes.io/managed-by"] == "jenkins-agent-provisioner" {
			t.Errorf("the provisioner's own pods carry the agents' managed-by label")
		}
	}

	pdb := func(m map[string]*unstructured.Unstructured) policyv1.PodDisruptionBudgetSpec {
		return typed[policyv1.PodDisruptionBudget](t, m["PodDisruptionBudget/"+provisionerNamespace+"/jenkins-agent-provisioner"]).Spec
	}
	if diff := cmp.Diff(pdb(base), pdb(got), cmpopts.IgnoreFields(policyv1.PodDisruptionBudgetSpec{}, "Selector")); diff != "" {
		t.Errorf("PDB (-kustomize +chart):\n%s", diff)
	}
	svc := func(m map[string]*unstructured.Unstructured) *corev1.Service {
		return typed[corev1.Service](t, m["Service/"+provisionerNamespace+"/jenkins-agent-provisioner"])
	}
	if diff := cmp.Diff(svc(base).Spec, svc(got).Spec, cmpopts.IgnoreFields(corev1.ServiceSpec{}, "Selector")); diff != "" {
		t.Errorf("Service (-kustomize +chart):\n%s", diff)
	}
	if diff := cmp.Diff(svc(base).Annotations, svc(got).Annotations); diff != "" {
		t.Errorf("Service annotations (-kustomize +chart):\n%s", diff)
	}
	for _, name := range []string{"jenkins-agent-provisioner-config", "jenkins-agent-provisioner-templates"} {
		key := "ConfigMap/" + provisionerNamespace + "/" + name
		if diff := cmp.Diff(typed[corev1.ConfigMap](t, base[key]).Data, typed[corev1.ConfigMap](t, got[key]).Data); diff != "" {
			t.Errorf("%s data (-kustomize +chart):\n%s", name, diff)
		}
	}
	compareNetworkPolicies(t, base, got)
	checkIsolation(t, chartObjs, provisionerNamespace, "jenkins-agent-provisioner", provisionerNamespace)
	// Every object the chart renders names its namespace, and none is an agent's by label.
	for _, u := range chartObjs {
		if u.GetKind() != "Namespace" && u.GetNamespace() == "" {
			t.Errorf("%s %s has no namespace", u.GetKind(), u.GetName())
		}
		if u.GetLabels()["app.kubernetes.io/managed-by"] == "jenkins-agent-provisioner" {
			t.Errorf("%s %s carries the agents' managed-by label", u.GetKind(), u.GetName())
		}
	}
}

// compareNetworkPolicies holds the chart's NetworkPolicies to kustomize's, rule by rule. Only the
// provisioner's pod selector may differ: the chart's adds Helm's instance label, so it must hold
// every label of the base's.
func compareNetworkPolicies(t *testing.T, base, got map[string]*unstructured.Unstructured) {
	t.Helper()
	for key, u := range base {
		if u.GetKind() != "NetworkPolicy" {
			continue
		}
		if got[key] == nil {
			t.Errorf("the chart has no %s", key)
			continue
		}
		b, g := typed[networkingv1.NetworkPolicy](t, u), typed[networkingv1.NetworkPolicy](t, got[key])
		var ignore cmp.Option
		if b.Labels["app.kubernetes.io/component"] == "controller" {
			ignore = cmpopts.IgnoreFields(networkingv1.NetworkPolicySpec{}, "PodSelector")
			for k, v := range b.Spec.PodSelector.MatchLabels {
				if g.Spec.PodSelector.MatchLabels[k] != v {
					t.Errorf("%s: the chart's pod selector lacks %s=%s: %v", key, k, v, g.Spec.PodSelector)
				}
			}
		}
		if diff := cmp.Diff(b.Spec, g.Spec, ignore); diff != "" {
			t.Errorf("%s spec (-kustomize +chart):\n%s", key, diff)
		}
		if bc, gc := b.Labels["app.kubernetes.io/component"], g.Labels["app.kubernetes.io/component"]; bc != gc {
			t.Errorf("%s: component label %q, want %q", key, gc, bc)
		}
	}
}

// TestChartMatchesAgentsNamespaceOverlay: with settings.namespace naming another namespace, the
// chart gives the NetworkPolicies, Roles and RoleBindings of deploy/overlays/agents-namespace (the
// agents' policy in both namespaces, the agent rules where the agents run, the Lease here).
func TestChartMatchesAgentsNamespaceOverlay(t *testing.T) {
	overlay := byKindName(buildOnDisk(t, "overlays/agents-namespace"))
	chartObjs, _ := renderChart(t, "jenkins-agent-provisioner", provisionerNamespace, with(baseValues(), "settings.namespace", agentsNamespace))
	got := byKindName(chartObjs)
	kinds := []string{"NetworkPolicy", "Role", "RoleBinding"}
	keys := func(m map[string]*unstructured.Unstructured) []string {
		var out []string
		for k, u := range m {
			if slices.Contains(kinds, u.GetKind()) {
				out = append(out, k)
			}
		}
		return slices.Sorted(slices.Values(out))
	}
	if diff := cmp.Diff(keys(overlay), keys(got)); diff != "" {
		t.Fatalf("objects (-kustomize +chart):\n%s", diff)
	}
	compareNetworkPolicies(t, overlay, got)
	for _, key := range keys(overlay) {
		switch overlay[key].GetKind() {
		case "Role":
			if diff := cmp.Diff(typed[rbacv1.Role](t, overlay[key]).Rules, typed[rbacv1.Role](t, got[key]).Rules); diff != "" {
				t.Errorf("%s rules (-kustomize +chart):\n%s", key, diff)
			}
		case "RoleBinding":
			b, g := typed[rbacv1.RoleBinding](t, overlay[key]), typed[rbacv1.RoleBinding](t, got[key])
			if diff := cmp.Diff([]any{b.RoleRef, b.Subjects}, []any{g.RoleRef, g.Subjects}); diff != "" {
				t.Errorf("%s (-kustomize +chart):\n%s", key, diff)
			}
		}
	}
	checkIsolation(t, chartObjs, provisionerNamespace, "jenkins-agent-provisioner", agentsNamespace)
}

// TestChartSettings: every setting `provisioner run` reads (its source, cmd/provisioner/config.go)
// can be given through the chart, and lands in the container's environment under its name.
func TestChartSettings(t *testing.T) {
	vals := baseValues()
	s := vals["settings"].(map[string]any)
	samples := map[string]any{
		"jenkinsCaFile": "/ca/ca.crt", "agentJenkinsUrl": "http://jenkins:8080/", "agentTunnel": "jenkins-agent:50000",
		"namespace": "jenkins-agents", "kubeconfig": "/kube/config", "pollInterval": "2s", "busyPollInterval": "300ms",
		"maxAgents": 0, "kubeQps": 20, "kubeBurst": 40, "leaderElect": false, "leaderElectionNamespace": "leases",
		"leaderElectionId": "jap", "leaseDuration": "20s", "releaseGrace": "11s", "orphanGrace": "3m", "reconnectGrace": "4m",
		"unschedulableGrace": "6m", "backoffBase": "6s", "backoffMax": "6m", "logLevel": "debug", "logFormat": "console",
		"statusListen": "127.0.0.1:8081", "kueueQueue": "team-a", "maxUnauthorized": 3, "installationId": "team-a",
	}
	// Each of the chart's settings values is given here, or a setting the chart maps would read as
	// missing below: a value left empty is not passed on.
	for _, key := range chartSettingsValues(t) {
		if _, ok := samples[key]; !ok && s[key] == nil {
			t.Errorf("settings.%s has no sample value in TestChartSettings: add one", key)
		}
	}
	for key, v := range samples {
		s[key] = v
	}
	with(vals, "jenkinsToken.create", true)
	with(vals, "jenkinsToken.value", "t0ken")
	objs, _ := renderChart(t, "jap", "ci", vals)
	d := typed[appsv1.Deployment](t, one(t, objs, "Deployment", "ci", "jap-jenkins-agent-provisioner"))
	env := containerEnv(t, objs, d, d.Spec.Template.Spec.Containers[0], "jap-pod")
	for name := range provisionerSettings(t) {
		if name == "PROVISIONER_JENKINS_TOKEN" {
			continue // given as a file from the Secret jenkinsToken names (checked below)
		}
		if _, ok := env[name]; !ok {
			t.Errorf("setting %s cannot be given through the chart (no settings value maps to it in _helpers.tpl's jap.settingsEnv, nor the Deployment)", name)
		}
	}
	if env["PROVISIONER_MAX_AGENTS"] != "0" || env["PROVISIONER_LEADER_ELECT"] != "false" || env["PROVISIONER_NAMESPACE"] != "jenkins-agents" {
		t.Errorf("env: MAX_AGENTS %q LEADER_ELECT %q NAMESPACE %q", env["PROVISIONER_MAX_AGENTS"], env["PROVISIONER_LEADER_ELECT"], env["PROVISIONER_NAMESPACE"])
	}
	sec := typed[corev1.Secret](t, one(t, objs, "Secret", "ci", "jap-jenkins-agent-provisioner-jenkins-token"))
	if string(sec.Data["token"]) != "t0ken" {
		t.Errorf("token Secret data %q", sec.Data)
	}
	// Agents in another namespace: the agent rules move there, the Lease stays.
	var rules = map[string][]rbacv1.PolicyRule{}
	for _, u := range ofKind(objs, "Role") {
		rules[u.GetNamespace()] = typed[rbacv1.Role](t, u).Rules
	}
	if len(rules["ci"]) != 1 || rules["ci"][0].Resources[0] != "leases" || len(rules["jenkins-agents"]) != 3 {
		t.Errorf("split Roles: %+v", rules)
	}
}

// chartSettingsValues lists the keys of settings: in the chart's values.yaml.
func chartSettingsValues(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Settings map[string]any `yaml:"settings"`
	}
	if err := yamlv3.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Settings) == 0 {
		t.Fatal("the chart's values.yaml has no settings")
	}
	return slices.Sorted(maps.Keys(v.Settings))
}

// TestChartValueVariants: the token Secret referenced or created, templates inline or from an
// existing ConfigMap, the values schema refusing bad values, and NOTES.txt.
func TestChartValueVariants(t *testing.T) {
	t.Run("existing Secret and ConfigMap", func(t *testing.T) {
		vals := with(with(baseValues(), "jenkinsToken.existingSecret", "my-token"), "templates.existingConfigMap", "my-templates")
		with(vals, "jenkinsToken.key", "api-token")
		objs, notes := renderChart(t, "jenkins-agent-provisioner", "ci", vals)
		if n := len(ofKind(objs, "Secret")); n != 0 {
			t.Errorf("%d Secrets rendered for an existing one", n)
		}
		for _, u := range ofKind(objs, "ConfigMap") {
			if strings.HasSuffix(u.GetName(), "-templates") {
				t.Errorf("templates ConfigMap %s rendered though an existing one is named", u.GetName())
			}
		}
		d := typed[appsv1.Deployment](t, ofKind(objs, "Deployment")[0])
		vols := map[string]corev1.Volume{}
		for _, v := range d.Spec.Template.Spec.Volumes {
			vols[v.Name] = v
		}
		if vols["jenkins-token"].Secret.SecretName != "my-token" || vols["jenkins-token"].Secret.Items[0].Key != "api-token" || vols["templates"].ConfigMap.Name != "my-templates" {
			t.Errorf("volumes %+v", vols)
		}
		if strings.Contains(notes, "create secret") {
			t.Errorf("NOTES asks to create a Secret that exists:\n%s", notes)
		}
	})
	t.Run("notes", func(t *testing.T) {
		_, notes := renderChart(t, "jenkins-agent-provisioner", "ci", baseValues())
		for _, want := range []string{"kubectl -n ci create secret generic jenkins-agent-provisioner-jenkins-token --from-file=token=", "http://jenkins.jenkins.svc.cluster.local:8080/", "port-forward svc/jenkins-agent-provisioner 8080",
			"jenkins-agent-provisioner/metrics-scraper=true", "on ports 8080,50000", "set networkPolicy.agents.jenkins"} {
			if !strings.Contains(notes, want) {
				t.Errorf("NOTES.txt lacks %q:\n%s", want, notes)
			}
		}
	})
	for _, tc := range []struct {
		name string
		vals map[string]any
		want string
	}{
		{"no Jenkins URL", map[string]any{}, "jenkinsUrl"},
		{"bad log level", with(baseValues(), "settings.logLevel", "loud"), "logLevel"},
		{"bad duration", with(baseValues(), "settings.orphanGrace", "2 minutes"), "orphanGrace"},
		{"unknown value", with(baseValues(), "replicas", 3), "replicas"},
		{"unknown setting", with(baseValues(), "settings.pollIntervall", "1s"), "pollIntervall"},
		{"token both ways", with(with(with(baseValues(), "jenkinsToken.create", true), "jenkinsToken.value", "x"), "jenkinsToken.existingSecret", "y"), "not both"},
		{"token without value", with(baseValues(), "jenkinsToken.create", true), "jenkinsToken.value"},
		{"agents' Jenkins rule without peers", with(baseValues(), "networkPolicy.agents.jenkins.to", []any{}), "/networkPolicy/agents/jenkins/to"},
		{"agents' DNS rule without ports", with(baseValues(), "networkPolicy.agents.dns.ports", []any{}), "/networkPolicy/agents/dns/ports"},
		{"misspelt policy value", with(baseValues(), "networkPolicy.agents.extraEgres", []any{}), "extraEgres"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tryRenderChart(t, "jenkins-agent-provisioner", "ci", tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// TestChartNetworkPolicy: the policies are on by default (compared with the base's by
// TestChartMatchesKustomizeBase), named after the release, can be turned off, and the values an
// operator adapts (scrapers, Jenkins' peers and ports, the internet rule, extra egress) change
// exactly what the pods may reach.
func TestChartNetworkPolicy(t *testing.T) {
	names := func(objs []*unstructured.Unstructured) []string {
		var out []string
		for _, u := range ofKind(objs, "NetworkPolicy") {
			out = append(out, u.GetNamespace()+"/"+u.GetName())
		}
		return slices.Sorted(slices.Values(out))
	}
	for _, tc := range []struct {
		name, release string
		vals          map[string]any
		want          []string
	}{
		{"defaults", "jenkins-agent-provisioner", baseValues(), []string{"ci/jenkins-agent-provisioner", "ci/jenkins-agents"}},
		{"other release", "jap", baseValues(), []string{"ci/jap-jenkins-agent-provisioner", "ci/jap-jenkins-agents"}},
		{"full name override", "jap", with(baseValues(), "fullnameOverride", "ci-prov"), []string{"ci/ci-prov", "ci/ci-prov-agents"}},
		{"agents elsewhere", "jenkins-agent-provisioner", with(baseValues(), "settings.namespace", "builds"), []string{"builds/jenkins-agents", "ci/jenkins-agent-provisioner", "ci/jenkins-agents"}},
		{"off", "jenkins-agent-provisioner", with(baseValues(), "networkPolicy.enabled", false), nil},
		{"agents' off", "jenkins-agent-provisioner", with(baseValues(), "networkPolicy.agents.enabled", false), []string{"ci/jenkins-agent-provisioner"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs, _ := renderChart(t, tc.release, "ci", tc.vals)
			if diff := cmp.Diff(tc.want, names(objs)); diff != "" {
				t.Errorf("NetworkPolicies (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("adapted", func(t *testing.T) {
		objs, notes := renderChart(t, "jenkins-agent-provisioner", "ci", adaptedNetworkPolicyValues())
		ps := policiesOf(t, objs)
		d := typed[appsv1.Deployment](t, one(t, objs, "Deployment", "ci", "jenkins-agent-provisioner"))
		provisioner := peerPod{namespace: "ci", labels: labels.Set(d.Spec.Template.Labels), ip: "10.244.2.9"}
		agent := agentPeer(t, "ci")
		agent.labels["prometheus"] = "yes"
		prometheus := peerPod{namespace: "monitoring", labels: labels.Set{"prometheus": "yes"}, ip: "10.244.3.6"}
		prometheusElsewhere := peerPod{namespace: "default", labels: prometheus.labels, ip: "10.244.3.7"}
		jenkins := peerPod{namespace: "ci-jenkins", labels: labels.Set{"app": "jenkins"}, ip: "10.244.4.3"}
		nexus := peerPod{namespace: "nexus", labels: labels.Set{"app": "nexus"}, ip: "10.244.5.1"}
		tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
		for _, c := range []struct {
			what      string
			got, want bool
		}{
			{"labelled scraper in its namespace -> provisioner", ps.ingressAllowed(t, provisioner, prometheus, "http", 8080, tcp), true},
			{"labelled scraper elsewhere -> provisioner", ps.ingressAllowed(t, provisioner, prometheusElsewhere, "http", 8080, tcp), false},
			{"pod with the default scraper label -> provisioner", ps.ingressAllowed(t, provisioner, scraperPod, "http", 8080, tcp), false},
			{"agent with the scraper labels -> provisioner", ps.ingressAllowed(t, provisioner, agent, "http", 8080, tcp), false},
			{"agent -> DNS", ps.egressAllowed(t, agent, dnsPod, 53, udp), true},
			{"agent -> Jenkins' namespace on its port", ps.egressAllowed(t, agent, jenkins, 8443, tcp), true},
			{"agent -> Jenkins' namespace on the default port", ps.egressAllowed(t, agent, jenkins, 8080, tcp), false},
			{"agent -> the default Jenkins namespace", ps.egressAllowed(t, agent, jenkinsPod, 8443, tcp), false},
			{"agent -> extra egress", ps.egressAllowed(t, agent, nexus, 8081, tcp), true},
			{"agent -> extra egress' namespace on another port", ps.egressAllowed(t, agent, nexus, 80, tcp), false},
			{"agent -> internet (rule dropped)", ps.egressAllowed(t, agent, internetPod, 443, tcp), false},
		} {
			if c.got != c.want {
				t.Errorf("%s: allowed = %v, want %v", c.what, c.got, c.want)
			}
		}
		for _, want := range []string{"prometheus=yes in namespaces matching {\"matchLabels\":{\"kubernetes.io/metadata.name\":\"monitoring\"}}", "on ports 8443,50000", "and 1 extra rule(s)"} {
			if !strings.Contains(notes, want) {
				t.Errorf("NOTES.txt lacks %q:\n%s", want, notes)
			}
		}
		if strings.Contains(notes, "outside the private ranges") {
			t.Errorf("NOTES.txt names the dropped internet rule:\n%s", notes)
		}
	})
}

// adaptedNetworkPolicyValues change every NetworkPolicy value an operator is expected to adapt.
func adaptedNetworkPolicyValues() map[string]any {
	// A map of values merges into the chart's default: null removes the default label, as
	// values.yaml says.
	vals := with(baseValues(), "networkPolicy.scrapers.podLabels", map[string]any{"prometheus": "yes", "jenkins-agent-provisioner/metrics-scraper": nil})
	with(vals, "networkPolicy.scrapers.namespaceSelector", map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "monitoring"}})
	with(vals, "networkPolicy.agents.jenkins.to", []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "ci-jenkins"}}}})
	with(vals, "networkPolicy.agents.jenkins.ports", []any{map[string]any{"protocol": "TCP", "port": 8443}, map[string]any{"protocol": "TCP", "port": 50000}})
	with(vals, "networkPolicy.agents.internet.to", []any{})
	with(vals, "networkPolicy.agents.extraEgress", []any{map[string]any{
		"to":    []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "nexus"}}}},
		"ports": []any{map[string]any{"protocol": "TCP", "port": 8081}},
	}})
	return vals
}

// TestChartDryRun applies the chart's objects to the real kube-apiserver, as TestDryRun does the
// kustomizations': namespaces for real, the rest with server-side dry run; a warning fails.
func TestChartDryRun(t *testing.T) {
	for _, tc := range []struct {
		name, namespace  string
		agentsNamespaces []string
		vals             map[string]any
	}{
		{"defaults", "chart-defaults", nil, with(baseValues(), "namespace.create", true)},
		{"token created, agents elsewhere, adapted network policies", "chart-full", []string{"chart-full-agents"},
			with(with(with(with(adaptedNetworkPolicyValues(), "namespace.create", true), "jenkinsToken.create", true), "jenkinsToken.value", "x"), "settings.namespace", "chart-full-agents")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			objs, _ := renderChart(t, "jenkins-agent-provisioner", tc.namespace, tc.vals)
			a := newApplier(t)
			namespaces := ofKind(objs, "Namespace")
			// The agents' namespace is the operator's to create, as with the overlay's.
			for _, ns := range tc.agentsNamespaces {
				namespaces = append(namespaces, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": ns}}})
			}
			for _, u := range namespaces {
				if err := a.apply(ctx, u, false); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = a.delete(t.Context(), u) })
			}
			kinds := map[string]bool{}
			for _, u := range objs {
				kinds[u.GetKind()] = true
				if u.GetKind() == "Namespace" {
					continue
				}
				if err := a.apply(ctx, u, true); err != nil {
					t.Error(err)
				}
				if w := a.warnings.take(); len(w) > 0 {
					t.Errorf("%s %s: apiserver warnings: %q", u.GetKind(), u.GetName(), w)
				}
			}
			for _, k := range []string{"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service", "NetworkPolicy"} {
				if !kinds[k] {
					t.Errorf("no %s rendered", k)
				}
			}
		})
	}
}

// TestChartDefaultTemplatesLoad: the templates the chart installs by default are the base's
// example, and load.
func TestChartDefaultTemplatesLoad(t *testing.T) {
	data, err := os.ReadFile(chartDir + "/values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Templates struct {
			File string `yaml:"file"`
		} `yaml:"templates"`
	}
	if err := yamlv3.Unmarshal(data, &v); err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile("manifests/templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(bytes.TrimSpace([]byte(v.Templates.File)), bytes.TrimSpace(base)) {
		t.Errorf("the chart's templates.file differs from deploy/manifests/templates.yaml")
	}
}
