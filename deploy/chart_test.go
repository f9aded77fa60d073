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

// TestChartSettings: every setting `provisioner run` reads (its source, cmd/provisioner/config.go)
// can be given through the chart, and lands in the container's environment under its name.
func TestChartSettings(t *testing.T) {
	vals := baseValues()
	s := vals["settings"].(map[string]any)
	for key, v := range map[string]any{
		"jenkinsCaFile": "/ca/ca.crt", "agentJenkinsUrl": "http://jenkins:8080/", "agentTunnel": "jenkins-agent:50000",
		"namespace": "jenkins-agents", "kubeconfig": "/kube/config", "pollInterval": "2s", "busyPollInterval": "300ms",
		"maxAgents": 0, "kubeQps": 20, "kubeBurst": 40, "leaderElect": false, "leaderElectionNamespace": "leases",
		"leaderElectionId": "jap", "leaseDuration": "20s", "releaseGrace": "11s", "orphanGrace": "3m",
		"unschedulableGrace": "6m", "backoffBase": "6s", "backoffMax": "6m", "logLevel": "debug", "logFormat": "console",
		"statusListen": "127.0.0.1:8081", "maxUnauthorized": 3, "installationId": "team-a",
	} {
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
			t.Errorf("setting %s cannot be given through the chart", name)
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
		for _, want := range []string{"kubectl -n ci create secret generic jenkins-agent-provisioner-jenkins-token --from-file=token=", "http://jenkins.jenkins.svc.cluster.local:8080/", "port-forward svc/jenkins-agent-provisioner 8080"} {
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
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := tryRenderChart(t, "jenkins-agent-provisioner", "ci", tc.vals)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one naming %s", err, tc.want)
			}
		})
	}
}

// TestChartNetworkPolicy: off by default; on, the provisioner may be scraped on its http port and
// reach DNS, Jenkins and the apiserver, and agent pods (by the labels the provisioner gives them)
// DNS and Jenkins.
func TestChartNetworkPolicy(t *testing.T) {
	objs, _ := renderChart(t, "jenkins-agent-provisioner", "ci", baseValues())
	if n := len(ofKind(objs, "NetworkPolicy")); n != 0 {
		t.Fatalf("%d NetworkPolicies by default", n)
	}
	objs, _ = renderChart(t, "jenkins-agent-provisioner", "ci", networkPolicyValues())
	nps := map[string]*networkingv1.NetworkPolicy{}
	for _, u := range ofKind(objs, "NetworkPolicy") {
		nps[u.GetName()] = typed[networkingv1.NetworkPolicy](t, u)
	}
	p, a := nps["jenkins-agent-provisioner"], nps["jenkins-agent-provisioner-agents"]
	if p == nil || a == nil {
		t.Fatalf("NetworkPolicies %v", slices.Sorted(maps.Keys(nps)))
	}
	d := typed[appsv1.Deployment](t, ofKind(objs, "Deployment")[0])
	for k, v := range p.Spec.PodSelector.MatchLabels {
		if d.Spec.Template.Labels[k] != v {
			t.Errorf("the provisioner's policy selects %s=%s, which its pods lack", k, v)
		}
	}
	if got := p.Spec.Ingress[0].Ports[0].Port.String(); got != "http" || len(p.Spec.Egress) != 3 {
		t.Errorf("provisioner policy: ingress port %s, %d egress rules", got, len(p.Spec.Egress))
	}
	if a.Spec.PodSelector.MatchLabels["app.kubernetes.io/managed-by"] != "jenkins-agent-provisioner" || len(a.Spec.Egress) != 2 || len(a.Spec.Ingress) != 0 {
		t.Errorf("agents policy: %+v", a.Spec)
	}
}

func networkPolicyValues() map[string]any {
	vals := with(baseValues(), "networkPolicy.enabled", true)
	with(vals, "networkPolicy.agents.enabled", true)
	with(vals, "networkPolicy.jenkins.to", []any{map[string]any{"namespaceSelector": map[string]any{"matchLabels": map[string]any{"kubernetes.io/metadata.name": "jenkins"}}}})
	with(vals, "networkPolicy.apiServer.to", []any{map[string]any{"ipBlock": map[string]any{"cidr": "10.0.0.1/32"}}})
	return vals
}

// TestChartDryRun applies the chart's objects to the real kube-apiserver, as TestDryRun does the
// kustomizations': namespaces for real, the rest with server-side dry run; a warning fails.
func TestChartDryRun(t *testing.T) {
	for _, tc := range []struct {
		name, namespace string
		vals            map[string]any
	}{
		{"defaults", "chart-defaults", with(baseValues(), "namespace.create", true)},
		{"token created, agents elsewhere, network policies", "chart-full", with(with(with(with(networkPolicyValues(), "namespace.create", true), "jenkinsToken.create", true), "jenkinsToken.value", "x"), "settings.namespace", "chart-full")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			objs, _ := renderChart(t, "jenkins-agent-provisioner", tc.namespace, tc.vals)
			a := newApplier(t)
			for _, u := range ofKind(objs, "Namespace") {
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
			for _, k := range []string{"Namespace", "ServiceAccount", "Role", "RoleBinding", "ConfigMap", "Deployment", "PodDisruptionBudget", "Service"} {
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
