package deploy

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
	"github.com/jenkins-agent-provisioner/provisioner/internal/testenv"
)

var env *testenv.Env

func TestMain(m *testing.M) {
	flag.Parse()
	// A fuzz run (-fuzz) exercises only the fuzz targets, pure parsers that need no control plane,
	// and its worker processes each run TestMain: starting a control plane in every one of them
	// would make fuzzing crawl. Tests that need the control plane fail through requireEnv there.
	if fuzzing := flag.Lookup("test.fuzz"); fuzzing != nil && fuzzing.Value.String() != "" || isFuzzWorker() {
		os.Exit(m.Run())
	}
	testenv.Main(m, testenv.Options{}, &env)
}

func isFuzzWorker() bool {
	f := flag.Lookup("test.fuzzworker")
	return f != nil && f.Value.String() == "true"
}

// requireEnv fails a test that needs the control plane when TestMain did not start one.
func requireEnv(t *testing.T) {
	t.Helper()
	if env == nil {
		t.Fatal("no control plane: this test cannot run in a -fuzz invocation; select fuzz targets with -run '^$'")
	}
}

const (
	provisionerNamespace = "jenkins-agent-provisioner"
	agentsNamespace      = "jenkins-agents"
	serviceAccount       = "jenkins-agent-provisioner"
	tokenSecretName      = "jenkins-agent-provisioner-jenkins-token"
	templatesConfigMap   = "jenkins-agent-provisioner-templates"
	// fieldManager names this test's writes, as kubectl's "kubectl-client-side-apply" names its own.
	fieldManager = "deploy-manifests-test"
	// nonRootUID is distroless' "nonroot" user, the USER of the image built by ../Dockerfile.
	nonRootUID = int64(65532)
)

// kustomization is one thing an operator may apply with `kubectl apply -k`.
type kustomization struct {
	name string
	dir  string // relative to this package
	// agentsNamespace is where the provisioner is told to create agent pods.
	agentsNamespace string
}

var kustomizations = []kustomization{
	{name: "base", dir: "manifests", agentsNamespace: provisionerNamespace},
	{name: "agents-namespace overlay", dir: "overlays/agents-namespace", agentsNamespace: agentsNamespace},
}

// build renders the kustomization at dir in fsys as `kubectl kustomize` does (same library, default
// options: no plugins, load restrictions on) and returns its objects in kustomize's output order.
func build(t *testing.T, fsys filesys.FileSystem, dir string) []*unstructured.Unstructured {
	t.Helper()
	rm, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range rm.Resources() {
		// Through JSON rather than r.Map(): YAML decoding yields int, which unstructured's deep
		// copy rejects; JSON gives int64 and float64 as the apimachinery types expect.
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("kustomize build %s: encoding %s: %v", dir, r.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			t.Fatalf("kustomize build %s: decoding %s: %v", dir, r.CurId(), err)
		}
		objs = append(objs, u)
	}
	return objs
}

func buildOnDisk(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	return build(t, filesys.MakeFsOnDisk(), dir)
}

// warnings collects the apiserver's Warning headers (deprecated APIs, Pod Security "warn" findings,
// unknown or duplicate fields), which a plain client only logs.
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	msgs := w.msgs
	w.msgs = nil
	return msgs
}

// applier applies objects with server-side apply, as `kubectl apply --server-side` does.
type applier struct {
	dyn      dynamic.Interface
	kube     kubernetes.Interface // typed, with the same warning collection
	mapper   meta.RESTMapper
	warnings *warnings
}

func newApplier(t *testing.T) *applier {
	t.Helper()
	requireEnv(t)
	w := &warnings{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("dynamic client: %v", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	groups, err := restmapper.GetAPIGroupResources(env.Client.Discovery())
	if err != nil {
		t.Fatalf("discovering the apiserver's resources: %v", err)
	}
	return &applier{dyn: dyn, kube: kube, mapper: restmapper.NewDiscoveryRESTMapper(groups), warnings: w}
}

func (a *applier) resource(u *unstructured.Unstructured) (dynamic.ResourceInterface, error) {
	gvk := u.GroupVersionKind()
	m, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return nil, fmt.Errorf("%s is not served by this apiserver: %w", gvk, err)
	}
	if m.Scope.Name() != meta.RESTScopeNameNamespace {
		return a.dyn.Resource(m.Resource), nil
	}
	// A namespaced object without a namespace would land in whatever namespace the operator's
	// kubeconfig points at: the manifests must name it.
	if u.GetNamespace() == "" {
		return nil, fmt.Errorf("namespaced %s %q has no namespace", u.GetKind(), u.GetName())
	}
	return a.dyn.Resource(m.Resource).Namespace(u.GetNamespace()), nil
}

// apply applies u, only as a server-side dry run (admission, validation and defaulting run, nothing
// is stored) when dryRun is set.
func (a *applier) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	ri, err := a.resource(u)
	if err != nil {
		return err
	}
	opts := metav1.ApplyOptions{FieldManager: fieldManager, Force: true}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	if _, err := ri.Apply(ctx, u.GetName(), u, opts); err != nil {
		return fmt.Errorf("applying %s %s/%s (dry run %t): %w", u.GetKind(), u.GetNamespace(), u.GetName(), dryRun, err)
	}
	return nil
}

func (a *applier) delete(ctx context.Context, u *unstructured.Unstructured) error {
	ri, err := a.resource(u)
	if err != nil {
		return err
	}
	if err := ri.Delete(ctx, u.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("deleting %s %s/%s: %w", u.GetKind(), u.GetNamespace(), u.GetName(), err)
	}
	return nil
}

func ofKind(objs []*unstructured.Unstructured, kind string) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range objs {
		if u.GetKind() == kind {
			out = append(out, u)
		}
	}
	return out
}

// one returns the only object of kind named name in namespace ns.
func one(t *testing.T, objs []*unstructured.Unstructured, kind, ns, name string) *unstructured.Unstructured {
	t.Helper()
	var found []*unstructured.Unstructured
	for _, u := range ofKind(objs, kind) {
		if u.GetNamespace() == ns && u.GetName() == name {
			found = append(found, u)
		}
	}
	if len(found) != 1 {
		t.Fatalf("want exactly one %s %s/%s, found %d", kind, ns, name, len(found))
	}
	return found[0]
}

func typed[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s/%s does not convert to %T: %v", u.GetKind(), u.GetNamespace(), u.GetName(), out, err)
	}
	return out
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestDryRun applies every object of each kustomization to a real kube-apiserver: the Namespaces
// for real (a namespace's dry run creates nothing, and the namespaced objects need it), everything
// else as a server-side dry run, which runs the apiserver's validation, defaulting and admission
// (Pod Security included) without storing anything. Any warning fails too: it means a deprecated
// API, an unknown or duplicate field, or a Pod Security finding.
func TestDryRun(t *testing.T) {
	for _, k := range kustomizations {
		t.Run(k.name, func(t *testing.T) {
			ctx := testContext(t)
			objs := buildOnDisk(t, k.dir)
			a := newApplier(t)
			for _, u := range ofKind(objs, "Namespace") {
				if err := a.apply(ctx, u, false); err != nil {
					t.Fatal(err)
				}
				if w := a.warnings.take(); len(w) > 0 {
					t.Errorf("Namespace %s: apiserver warnings: %q", u.GetName(), w)
				}
			}
			applied := 0
			for _, u := range objs {
				if u.GetKind() == "Namespace" {
					continue
				}
				if err := a.apply(ctx, u, true); err != nil {
					t.Error(err)
					continue
				}
				applied++
				if w := a.warnings.take(); len(w) > 0 {
					t.Errorf("%s %s/%s: apiserver warnings: %q", u.GetKind(), u.GetNamespace(), u.GetName(), w)
				}
			}
			// The kinds an operator relies on are all there (a resource dropped from the
			// kustomization's list would otherwise pass unnoticed).
			var kinds []string
			for _, u := range objs {
				if !slices.Contains(kinds, u.GetKind()) {
					kinds = append(kinds, u.GetKind())
				}
			}
			slices.Sort(kinds)
			want := []string{"ConfigMap", "Deployment", "Namespace", "NetworkPolicy", "PodDisruptionBudget", "Role", "RoleBinding", "Service", "ServiceAccount"}
			if diff := cmp.Diff(want, kinds); diff != "" {
				t.Errorf("kinds in %s (-want +got):\n%s", k.dir, diff)
			}
			t.Logf("%s: %d objects dry-run applied after %d namespaces", k.dir, applied, len(ofKind(objs, "Namespace")))
		})
	}
}

// TestDeploymentSecurity checks every container of every Deployment for the hardening the
// provisioner promises operators: it runs as a numeric non-root user on a read-only root file
// system, with no capabilities, no privilege escalation, the runtime's default seccomp profile, and
// bounded resources. Values may come from the container or, where Kubernetes allows, the pod.
func TestDeploymentSecurity(t *testing.T) {
	for _, k := range kustomizations {
		t.Run(k.name, func(t *testing.T) {
			deployments := ofKind(buildOnDisk(t, k.dir), "Deployment")
			if len(deployments) == 0 {
				t.Fatal("no Deployment")
			}
			for _, u := range deployments {
				d := typed[appsv1.Deployment](t, u)
				spec := d.Spec.Template.Spec
				containers := append(slices.Clone(spec.InitContainers), spec.Containers...)
				if len(containers) == 0 {
					t.Fatalf("Deployment %s has no containers", d.Name)
				}
				for _, c := range containers {
					if problems := containerProblems(spec, c); len(problems) > 0 {
						t.Errorf("Deployment %s container %s:\n  %s", d.Name, c.Name, strings.Join(problems, "\n  "))
					}
				}
			}
		})
	}
}

// containerProblems lists what c (in pod spec p) lacks of the required hardening; nil when none.
func containerProblems(p corev1.PodSpec, c corev1.Container) []string {
	psc := p.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		sc = &corev1.SecurityContext{}
	}
	var problems []string
	// Effective values: the container's setting wins over the pod's, as the kubelet applies them.
	runAsNonRoot := cmpOr(sc.RunAsNonRoot, psc.RunAsNonRoot)
	if runAsNonRoot == nil || !*runAsNonRoot {
		problems = append(problems, "runAsNonRoot is not true")
	}
	if uid := cmpOr(sc.RunAsUser, psc.RunAsUser); uid == nil || *uid != nonRootUID {
		problems = append(problems, fmt.Sprintf("runAsUser is %v, want %d (a numeric UID lets the kubelet verify non-root)", deref(uid), nonRootUID))
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		problems = append(problems, "readOnlyRootFilesystem is not true")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		problems = append(problems, "allowPrivilegeEscalation is not false")
	}
	if sc.Privileged != nil && *sc.Privileged {
		problems = append(problems, "privileged")
	}
	if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		problems = append(problems, "capabilities.drop is not [ALL]")
	} else if len(sc.Capabilities.Add) > 0 {
		problems = append(problems, fmt.Sprintf("capabilities.add is %v", sc.Capabilities.Add))
	}
	seccomp := cmpOr(sc.SeccompProfile, psc.SeccompProfile)
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		problems = append(problems, "seccompProfile is not RuntimeDefault")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			problems = append(problems, fmt.Sprintf("no %s request", r))
		}
		if q, ok := c.Resources.Limits[r]; !ok || q.IsZero() {
			problems = append(problems, fmt.Sprintf("no %s limit", r))
		}
	}
	return problems
}

func cmpOr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}

func deref[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}

// TestContainerProblemsCatches makes sure containerProblems is not vacuous: each weakening of the
// shipped Deployment's container is reported.
func TestContainerProblemsCatches(t *testing.T) {
	d := typed[appsv1.Deployment](t, one(t, buildOnDisk(t, "manifests"), "Deployment", provisionerNamespace, "jenkins-agent-provisioner"))
	base := d.Spec.Template.Spec
	if got := containerProblems(base, base.Containers[0]); len(got) > 0 {
		t.Fatalf("the shipped container already has problems: %q", got)
	}
	tests := []struct {
		name   string
		weaken func(p *corev1.PodSpec, c *corev1.Container)
		want   string
	}{
		{"root user", func(p *corev1.PodSpec, c *corev1.Container) { c.SecurityContext.RunAsUser = ptr(int64(0)) }, "runAsUser is 0"},
		{"runAsNonRoot unset", func(p *corev1.PodSpec, c *corev1.Container) {
			c.SecurityContext.RunAsNonRoot = nil
			p.SecurityContext.RunAsNonRoot = nil
		}, "runAsNonRoot is not true"},
		{"writable root", func(p *corev1.PodSpec, c *corev1.Container) { c.SecurityContext.ReadOnlyRootFilesystem = nil }, "readOnlyRootFilesystem"},
		{"escalation", func(p *corev1.PodSpec, c *corev1.Container) { c.SecurityContext.AllowPrivilegeEscalation = ptr(true) }, "allowPrivilegeEscalation"},
		{"capability added", func(p *corev1.PodSpec, c *corev1.Container) {
			c.SecurityContext.Capabilities.Add = []corev1.Capability{"NET_BIND_SERVICE"}
		}, "capabilities.add"},
		{"unconfined seccomp", func(p *corev1.PodSpec, c *corev1.Container) {
			c.SecurityContext.SeccompProfile = &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined}
		}, "seccompProfile"},
		{"no memory limit", func(p *corev1.PodSpec, c *corev1.Container) { delete(c.Resources.Limits, corev1.ResourceMemory) }, "no memory limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := *base.DeepCopy()
			c := &p.Containers[0]
			tt.weaken(&p, c)
			got := strings.Join(containerProblems(p, *c), "; ")
			if !strings.Contains(got, tt.want) {
				t.Errorf("problems = %q, want one mentioning %q", got, tt.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// TestPodSecurityRestricted has the apiserver's own Pod Security admission judge the provisioner's
// pod: each Deployment's pod template is dry-run created as a Pod in a namespace enforcing the
// "restricted" profile. The weakened variants must be refused, which proves the admission plugin
// is active here and the acceptance above means something.
func TestPodSecurityRestricted(t *testing.T) {
	requireEnv(t)
	ctx := testContext(t)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   "psa-restricted-check",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}
	if _, err := env.Client.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", ns.Name, err)
	}
	d := typed[appsv1.Deployment](t, one(t, buildOnDisk(t, "manifests"), "Deployment", provisionerNamespace, "jenkins-agent-provisioner"))
	tests := []struct {
		name    string
		weaken  func(p *corev1.PodSpec)
		allowed bool
	}{
		{"as shipped", func(*corev1.PodSpec) {}, true},
		{"privilege escalation allowed", func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr(true) }, false},
		{"capabilities kept", func(p *corev1.PodSpec) { p.Containers[0].SecurityContext.Capabilities = nil }, false},
		{"root", func(p *corev1.PodSpec) {
			p.SecurityContext.RunAsNonRoot = nil
			p.SecurityContext.RunAsUser = ptr(int64(0))
			p.Containers[0].SecurityContext.RunAsNonRoot = nil
			p.Containers[0].SecurityContext.RunAsUser = ptr(int64(0))
		}, false},
		{"no seccomp profile", func(p *corev1.PodSpec) {
			p.SecurityContext.SeccompProfile = nil
			p.Containers[0].SecurityContext.SeccompProfile = nil
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: "provisioner", Namespace: ns.Name, Labels: d.Spec.Template.Labels},
				Spec:       *d.Spec.Template.Spec.DeepCopy(),
			}
			tt.weaken(&pod.Spec)
			_, err := env.Client.CoreV1().Pods(ns.Name).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			switch {
			case tt.allowed && err != nil:
				t.Errorf("restricted Pod Security refused the pod: %v", err)
			case !tt.allowed && err == nil:
				t.Error("restricted Pod Security accepted the weakened pod")
			case !tt.allowed && !apierrors.IsForbidden(err):
				t.Errorf("weakened pod refused for another reason than Pod Security: %v", err)
			}
		})
	}
}

// access is one question to the apiserver's authorizer about the provisioner's ServiceAccount.
type access struct {
	verb, group, resource, namespace string
	allowed                          bool
}

// TestRBAC applies each kustomization's ServiceAccount, Roles and RoleBindings for real and asks the
// apiserver's RBAC authorizer (SubjectAccessReview) what the provisioner may do: everything its
// code needs where its agents live, and nothing beyond (no update, no other namespace, no
// cluster-scope reads, no persistentvolumeclaims, no events.k8s.io Events, in the overlay no pods,
// Secrets or Events in its own namespace beside its Lease).
func TestRBAC(t *testing.T) {
	p, a := provisionerNamespace, agentsNamespace
	common := []access{
		{"create", "coordination.k8s.io", "leases", p, true},
		{"get", "coordination.k8s.io", "leases", p, true},
		{"update", "coordination.k8s.io", "leases", p, true},
		{"delete", "coordination.k8s.io", "leases", p, false},
		{"list", "coordination.k8s.io", "leases", p, false},
		{"list", "", "nodes", "", false},
		{"list", "", "pods", "", false},
		{"create", "", "pods", "default", false},
		{"get", "", "secrets", "default", false},
		{"get", "", "configmaps", p, false},
	}
	agentRights := func(ns string, allowed bool) []access {
		return []access{
			{"create", "", "pods", ns, allowed},
			{"get", "", "pods", ns, allowed},
			{"list", "", "pods", ns, allowed},
			{"watch", "", "pods", ns, allowed},
			{"patch", "", "pods", ns, allowed},
			{"delete", "", "pods", ns, allowed},
			{"create", "", "secrets", ns, allowed},
			{"watch", "", "secrets", ns, allowed},
			{"patch", "", "secrets", ns, allowed},
			{"delete", "", "secrets", ns, allowed},
			// Events on agent pods: client-go's legacy recorder writes core/v1 Events only.
			{"create", "", "events", ns, allowed},
			{"patch", "", "events", ns, allowed},
			// Never needed, whatever the namespace.
			{"update", "", "pods", ns, false},
			{"deletecollection", "", "pods", ns, false},
			{"create", "", "pods/exec", ns, false},
			{"update", "", "secrets", ns, false},
			{"update", "", "events", ns, false},
			// Nothing writes events.k8s.io Events.
			{"create", "events.k8s.io", "events", ns, false},
			{"patch", "events.k8s.io", "events", ns, false},
			// Ephemeral workspace claims are the ephemeral volume controller's and the garbage
			// collector's business: the provisioner never calls the PVC API.
			{"get", "", "persistentvolumeclaims", ns, false},
			{"list", "", "persistentvolumeclaims", ns, false},
			{"watch", "", "persistentvolumeclaims", ns, false},
			{"create", "", "persistentvolumeclaims", ns, false},
			{"delete", "", "persistentvolumeclaims", ns, false},
		}
	}
	tests := []struct {
		k      kustomization
		checks []access
	}{
		{kustomizations[0], slices.Concat(common, agentRights(p, true), []access{
			{"create", "", "pods", a, false},
		})},
		{kustomizations[1], slices.Concat(common, agentRights(a, true), agentRights(p, false), []access{
			{"create", "coordination.k8s.io", "leases", a, false},
		})},
	}
	for _, tt := range tests {
		t.Run(tt.k.name, func(t *testing.T) {
			ctx := testContext(t)
			objs := buildOnDisk(t, tt.k.dir)
			ap := newApplier(t)
			for _, u := range ofKind(objs, "Namespace") {
				if err := ap.apply(ctx, u, false); err != nil {
					t.Fatal(err)
				}
			}
			// RBAC for real, then removed again so that the next kustomization starts from none.
			var rbac []*unstructured.Unstructured
			for _, kind := range []string{"ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} {
				rbac = append(rbac, ofKind(objs, kind)...)
			}
			t.Cleanup(func() {
				for _, u := range rbac {
					if err := ap.delete(context.WithoutCancel(ctx), u); err != nil {
						t.Error(err)
					}
				}
			})
			for _, u := range rbac {
				if err := ap.apply(ctx, u, false); err != nil {
					t.Fatal(err)
				}
			}
			user := "system:serviceaccount:" + provisionerNamespace + ":" + serviceAccount
			groups := []string{"system:serviceaccounts", "system:serviceaccounts:" + provisionerNamespace, "system:authenticated"}
			for _, c := range tt.checks {
				sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
					User:   user,
					Groups: groups,
					ResourceAttributes: &authorizationv1.ResourceAttributes{
						Namespace: c.namespace, Verb: c.verb, Group: c.group, Resource: baseResource(c.resource), Subresource: subresource(c.resource),
					},
				}}
				got, err := env.Client.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
				if err != nil {
					t.Fatalf("SubjectAccessReview: %v", err)
				}
				if got.Status.Allowed != c.allowed {
					t.Errorf("%s %s %q in namespace %q: allowed = %t, want %t (%s)", c.verb, c.resource, c.group, c.namespace, got.Status.Allowed, c.allowed, got.Status.Reason)
				}
			}
		})
	}
}

func baseResource(r string) string { res, _, _ := strings.Cut(r, "/"); return res }
func subresource(r string) string  { _, sub, _ := strings.Cut(r, "/"); return sub }

// TestRoleRules pins the Roles' rules exactly, so that a widened Role shows up in review as a test
// change; TestRBAC checks what the rules mean.
func TestRoleRules(t *testing.T) {
	rule := func(group, resource string, verbs ...string) rbacv1.PolicyRule {
		return rbacv1.PolicyRule{APIGroups: []string{group}, Resources: []string{resource}, Verbs: verbs}
	}
	agentRules := []rbacv1.PolicyRule{
		rule("", "pods", "get", "list", "watch", "create", "delete", "patch"),
		rule("", "secrets", "get", "list", "watch", "create", "delete", "patch"),
		rule("", "events", "create", "patch"),
	}
	leases := rule("coordination.k8s.io", "leases", "get", "create", "update")
	tests := []struct {
		k    kustomization
		want map[string][]rbacv1.PolicyRule // Role's namespace → rules
	}{
		{kustomizations[0], map[string][]rbacv1.PolicyRule{
			provisionerNamespace: slices.Concat(agentRules, []rbacv1.PolicyRule{leases}),
		}},
		{kustomizations[1], map[string][]rbacv1.PolicyRule{
			provisionerNamespace: {leases},
			agentsNamespace:      agentRules,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.k.name, func(t *testing.T) {
			objs := buildOnDisk(t, tt.k.dir)
			got := map[string][]rbacv1.PolicyRule{}
			for _, u := range ofKind(objs, "Role") {
				got[u.GetNamespace()] = typed[rbacv1.Role](t, u).Rules
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Role rules by namespace (-want +got):\n%s", diff)
			}
			for _, kind := range []string{"ClusterRole", "ClusterRoleBinding"} {
				if n := len(ofKind(objs, kind)); n > 0 {
					t.Errorf("%d %s objects: the provisioner needs no cluster-wide rights", n, kind)
				}
			}
		})
	}
}

// TestWiring checks that the Deployment, its settings, its mounts, the PodDisruptionBudget and the
// Service agree with each other and with what the provisioner reads, for each kustomization.
func TestWiring(t *testing.T) {
	// The provisioner's settings; anything else named PROVISIONER_* is a typo it would ignore.
	settings := provisionerSettings(t)
	for _, k := range kustomizations {
		t.Run(k.name, func(t *testing.T) {
			objs := buildOnDisk(t, k.dir)
			d := typed[appsv1.Deployment](t, one(t, objs, "Deployment", provisionerNamespace, "jenkins-agent-provisioner"))
			spec := d.Spec.Template.Spec
			c := spec.Containers[0]

			if got := deref(d.Spec.Replicas); got != int32(2) {
				t.Errorf("replicas = %v, want 2 (a leader and a standby)", got)
			}
			if spec.ServiceAccountName != serviceAccount {
				t.Errorf("serviceAccountName = %q, want %q", spec.ServiceAccountName, serviceAccount)
			}

			got := containerEnv(t, objs, d, c, "<pod name>")
			for name := range got {
				if _, ok := settings[name]; strings.HasPrefix(name, "PROVISIONER_") && !ok {
					t.Errorf("environment variable %s is not a provisioner setting", name)
				}
			}
			for name, want := range map[string]string{
				"PROVISIONER_NAMESPACE":                 k.agentsNamespace,
				"PROVISIONER_LEADER_ELECT":              "true",
				"PROVISIONER_LEADER_ELECTION_NAMESPACE": provisionerNamespace,
				"PROVISIONER_LISTEN":                    ":8080",
				"POD_NAME":                              "<pod name>",
				"PROVISIONER_SERVICE_ACCOUNT":           serviceAccount,
				"POD_NAMESPACE":                         provisionerNamespace,
			} {
				if got[name] != want {
					t.Errorf("%s = %q, want %q", name, got[name], want)
				}
			}
			for _, name := range []string{"PROVISIONER_JENKINS_URL", "PROVISIONER_JENKINS_USER"} {
				if got[name] == "" {
					t.Errorf("%s is not set", name)
				}
			}

			// The token file and the templates directory are where the mounts put them.
			checkMount(t, spec, c, got["PROVISIONER_JENKINS_TOKEN_FILE"], func(v corev1.Volume) bool {
				return v.Secret != nil && v.Secret.SecretName == tokenSecretName &&
					slices.Contains(v.Secret.Items, corev1.KeyToPath{Key: "token", Path: "token"})
			}, "the token Secret's key token")
			checkMount(t, spec, c, got["PROVISIONER_TEMPLATES"], func(v corev1.Volume) bool {
				return v.ConfigMap != nil && v.ConfigMap.Name == templatesConfigMap && len(v.ConfigMap.Items) == 0
			}, "the templates ConfigMap as a whole directory")
			templates := typed[corev1.ConfigMap](t, one(t, objs, "ConfigMap", provisionerNamespace, templatesConfigMap))
			if _, ok := templates.Data["templates.yaml"]; !ok {
				t.Errorf("ConfigMap %s has no templates.yaml; keys: %v", templatesConfigMap, mapsKeys(templates.Data))
			}

			// Probes on the named port that LISTEN opens.
			port := containerPort(c, "http")
			if port != 8080 {
				t.Errorf("container port http = %d, want 8080 (PROVISIONER_LISTEN :8080)", port)
			}
			for _, p := range []struct {
				name  string
				probe *corev1.Probe
				path  string
			}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
				if p.probe == nil || p.probe.HTTPGet == nil {
					t.Errorf("%s probe is not an HTTP GET", p.name)
					continue
				}
				if diff := cmp.Diff(corev1.HTTPGetAction{Path: p.path, Port: intstr.FromString("http")}, *p.probe.HTTPGet); diff != "" {
					t.Errorf("%s probe (-want +got):\n%s", p.name, diff)
				}
			}

			// The PodDisruptionBudget and the Service select exactly these pods.
			podLabels := labels.Set(d.Spec.Template.Labels)
			pdb := typed[policyv1.PodDisruptionBudget](t, one(t, objs, "PodDisruptionBudget", provisionerNamespace, "jenkins-agent-provisioner"))
			if diff := cmp.Diff(d.Spec.Selector, pdb.Spec.Selector); diff != "" {
				t.Errorf("PodDisruptionBudget selector differs from the Deployment's (-deployment +pdb):\n%s", diff)
			}
			if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(1) {
				t.Errorf("PodDisruptionBudget minAvailable = %v, want 1", pdb.Spec.MinAvailable)
			}
			svc := typed[corev1.Service](t, one(t, objs, "Service", provisionerNamespace, "jenkins-agent-provisioner"))
			if !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) || len(svc.Spec.Selector) == 0 {
				t.Errorf("Service selector %v does not select the pods (labels %v)", svc.Spec.Selector, podLabels)
			}
			wantPorts := []corev1.ServicePort{{Name: "http", Port: 8080, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP}}
			if diff := cmp.Diff(wantPorts, svc.Spec.Ports); diff != "" {
				t.Errorf("Service ports (-want +got):\n%s", diff)
			}
			wantAnn := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": "8080", "prometheus.io/path": "/metrics"}
			for key, want := range wantAnn {
				if svc.Annotations[key] != want {
					t.Errorf("Service annotation %s = %q, want %q", key, svc.Annotations[key], want)
				}
			}

			// The provisioner's reaper deletes pods and Secrets labelled as its agents': none of its
			// own objects may look like one, and its Deployment must not select agent pods.
			agentPod := labels.Set{
				"app.kubernetes.io/managed-by": "jenkins-agent-provisioner", "app.kubernetes.io/name": "jenkins-agent",
				"jenkins-agent-provisioner/template": "default",
			}
			selector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
			if err != nil {
				t.Fatalf("Deployment selector: %v", err)
			}
			if selector.Matches(agentPod) {
				t.Errorf("Deployment selector %s selects agent pods", selector)
			}
			for _, u := range objs {
				if u.GetLabels()["app.kubernetes.io/managed-by"] == "jenkins-agent-provisioner" {
					t.Errorf("%s %s carries the agents' managed-by label: the reaper would take it for an agent's", u.GetKind(), u.GetName())
				}
			}
		})
	}
}

// containerEnv is the environment container c of Deployment d sees in a pod named podName: the
// ConfigMaps' entries, then env, which wins on a clash, with downward API values resolved as the
// kubelet resolves them.
func containerEnv(t *testing.T, objs []*unstructured.Unstructured, d *appsv1.Deployment, c corev1.Container, podName string) map[string]string {
	t.Helper()
	got := map[string]string{}
	for _, from := range c.EnvFrom {
		if from.ConfigMapRef == nil || from.Prefix != "" {
			t.Fatalf("envFrom %+v: only whole ConfigMaps expected", from)
		}
		cm := typed[corev1.ConfigMap](t, one(t, objs, "ConfigMap", d.Namespace, from.ConfigMapRef.Name))
		for name, v := range cm.Data {
			got[name] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			got[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
			got[e.Name] = d.Namespace
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			got[e.Name] = podName
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "spec.serviceAccountName":
			got[e.Name] = d.Spec.Template.Spec.ServiceAccountName
		case e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.Resource == "limits.memory" &&
			e.ValueFrom.ResourceFieldRef.Divisor.IsZero():
			limit, ok := c.Resources.Limits[corev1.ResourceMemory]
			if !ok {
				t.Fatalf("env %s: from limits.memory, but the container has no memory limit", e.Name)
			}
			got[e.Name] = strconv.FormatInt(limit.Value(), 10)
		default:
			t.Fatalf("env %s: unexpected source %+v", e.Name, e.ValueFrom)
		}
	}
	return got
}

// checkMount fails unless path lies in a read-only mount of c whose volume satisfies isVolume.
func checkMount(t *testing.T, spec corev1.PodSpec, c corev1.Container, path string, isVolume func(corev1.Volume) bool, what string) {
	t.Helper()
	if path == "" {
		t.Errorf("no path set for %s", what)
		return
	}
	for _, m := range c.VolumeMounts {
		rel, err := filepath.Rel(m.MountPath, path)
		if err != nil || strings.HasPrefix(rel, "..") || m.SubPath != "" {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && isVolume(v) {
				if !m.ReadOnly {
					t.Errorf("mount %s for %s is writable", m.MountPath, what)
				}
				return
			}
		}
	}
	t.Errorf("%s is not mounted at %s", what, path)
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func mapsKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// TestTokenSecret checks both ways docs/operating.md gives to provide the Jenkins token: the base
// itself ships no Secret (re-applying it must not overwrite the operator's token), and the
// commented-out secretGenerator, once uncommented as the comment says, yields the Secret that the
// Deployment mounts. The build runs on an in-memory copy, so no token file is ever written here.
func TestTokenSecret(t *testing.T) {
	if n := len(ofKind(buildOnDisk(t, "manifests"), "Secret")); n != 0 {
		t.Fatalf("the base ships %d Secrets; it must ship none", n)
	}
	mem := filesys.MakeFsInMemory()
	if err := copyTree(mem, "manifests", "manifests"); err != nil {
		t.Fatal(err)
	}
	kustomization, err := mem.ReadFile("manifests/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	enabled, err := uncommentSecretGenerator(string(kustomization))
	if err != nil {
		t.Fatal(err)
	}
	const token = "11aa22bb33cc44dd55ee66ff77889900aa"
	if err := mem.WriteFile("manifests/kustomization.yaml", []byte(enabled)); err != nil {
		t.Fatal(err)
	}
	if err := mem.WriteFile("manifests/jenkins-token", []byte(token)); err != nil {
		t.Fatal(err)
	}
	objs := build(t, mem, "manifests")
	secret := typed[corev1.Secret](t, one(t, objs, "Secret", provisionerNamespace, tokenSecretName))
	if got := string(secret.Data["token"]); got != token {
		t.Errorf("generated Secret's token = %q, want %q (data: %v)", got, token, secret.Data)
	}
	d := typed[appsv1.Deployment](t, one(t, objs, "Deployment", provisionerNamespace, "jenkins-agent-provisioner"))
	var mounted []string
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Secret != nil {
			mounted = append(mounted, v.Secret.SecretName)
		}
	}
	if diff := cmp.Diff([]string{tokenSecretName}, mounted); diff != "" {
		t.Errorf("Secrets mounted by the Deployment (-want +got):\n%s", diff)
	}
	// And the generated Secret is valid for the apiserver.
	a := newApplier(t)
	ctx := testContext(t)
	for _, u := range ofKind(objs, "Namespace") {
		if err := a.apply(ctx, u, false); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.apply(ctx, one(t, objs, "Secret", provisionerNamespace, tokenSecretName), true); err != nil {
		t.Error(err)
	}
}

// uncommentSecretGenerator does what the kustomization's comment tells the operator: remove the
// "# " in front of the lines from "# secretGenerator:" to the end of the file.
func uncommentSecretGenerator(s string) (string, error) {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	start := slices.Index(lines, "# secretGenerator:")
	if start < 0 {
		return "", errors.New(`kustomization.yaml has no "# secretGenerator:" line`)
	}
	for i := start; i < len(lines); i++ {
		line, ok := strings.CutPrefix(lines[i], "# ")
		if !ok {
			return "", fmt.Errorf("kustomization.yaml line %d %q: the commented generator must run to the end of the file", i+1, lines[i])
		}
		lines[i] = line
	}
	return strings.Join(lines, "\n") + "\n", nil
}

// copyTree copies the on-disk folder src (relative to this package) to dst in mem.
func copyTree(mem filesys.FileSystem, src, dst string) error {
	return filepath.WalkDir(src, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if de.IsDir() {
			return mem.MkdirAll(target)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return mem.WriteFile(target, data)
	})
}

// provisionerSettings reads the settings `provisioner run` takes from its source (the envconfig tags
// of runConfig in cmd/provisioner/config.go; package main cannot be imported): PROVISIONER_<name>
// → its default, "" when it has none.
func provisionerSettings(t *testing.T) map[string]string {
	t.Helper()
	const file = "../cmd/provisioner/config.go"
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatalf("reading the provisioner's settings: %v", err)
	}
	settings := map[string]string{}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "runConfig" {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, field := range st.Fields.List {
			if field.Tag == nil {
				continue
			}
			tag, err := strconv.Unquote(field.Tag.Value)
			if err != nil {
				t.Fatalf("%s: tag %s: %v", file, field.Tag.Value, err)
			}
			if name := reflect.StructTag(tag).Get("envconfig"); name != "" {
				settings["PROVISIONER_"+name] = reflect.StructTag(tag).Get("default")
			}
		}
		return false
	})
	// The settings this deployment sets must be among them, or the source moved.
	for _, name := range []string{"PROVISIONER_JENKINS_URL", "PROVISIONER_JENKINS_TOKEN_FILE", "PROVISIONER_TEMPLATES", "PROVISIONER_LISTEN", "PROVISIONER_LEADER_ELECT"} {
		if _, ok := settings[name]; !ok {
			t.Fatalf("%s: runConfig has no setting %s (found %d settings)", file, name, len(settings))
		}
	}
	return settings
}

var envLineRE = regexp.MustCompile(`^(#\s*)?(PROVISIONER_[A-Z0-9_]+)=(.*)$`)

// TestSettingsFile checks manifests/provisioner.env, the operator's settings: every variable it
// sets or shows commented out is one the provisioner reads, and a commented-out line shows the
// provisioner's actual default (so that the file does not lie after a default changes).
func TestSettingsFile(t *testing.T) {
	settings := provisionerSettings(t)
	data, err := os.ReadFile("manifests/provisioner.env")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for i, line := range strings.Split(string(data), "\n") {
		m := envLineRE.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			if strings.HasPrefix(line, "PROVISIONER_") {
				t.Errorf("provisioner.env:%d: %q is not NAME=value", i+1, line)
			}
			continue
		}
		seen++
		commented, name, value := m[1] != "", m[2], m[3]
		def, ok := settings[name]
		switch {
		case !ok:
			t.Errorf("provisioner.env:%d: %s is not a provisioner setting", i+1, name)
		case commented && def != "" && value != def:
			t.Errorf("provisioner.env:%d: %s shows %q, but the default is %q", i+1, name, value, def)
		case !commented && value == "":
			t.Errorf("provisioner.env:%d: %s is set empty, which overrides its default: comment it out", i+1, name)
		}
	}
	if seen == 0 {
		t.Fatal("provisioner.env names no setting")
	}
}

// TestTemplatesConfigMap checks the templates an operator gets by applying a kustomization: the
// ConfigMap carries a copy of deploy/examples/templates.yaml (kustomize may not read outside the
// base's folder, so it is a copy, kept equal here), the provisioner's own loader accepts it as
// mounted, and every selectable template's pod and Secret, rendered as the provisioner would, pass
// a server-side dry run in the namespace the provisioner is told to put agents in.
func TestTemplatesConfigMap(t *testing.T) {
	example, err := os.ReadFile("examples/templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range kustomizations {
		t.Run(k.name, func(t *testing.T) {
			ctx := testContext(t)
			objs := buildOnDisk(t, k.dir)
			cm := typed[corev1.ConfigMap](t, one(t, objs, "ConfigMap", provisionerNamespace, templatesConfigMap))
			data := cm.Data["templates.yaml"]
			if diff := cmp.Diff(string(example), data); diff != "" {
				t.Fatalf("manifests/templates.yaml differs from examples/templates.yaml; copy it over (-example +configmap):\n%s", diff)
			}
			set, err := podtemplate.Parse("templates.yaml", []byte(data))
			if err != nil {
				t.Fatalf("the provisioner would refuse the shipped templates: %v", err)
			}
			a := newApplier(t)
			for _, u := range ofKind(objs, "Namespace") {
				if err := a.apply(ctx, u, false); err != nil {
					t.Fatal(err)
				}
			}
			rendered := 0
			for _, tmpl := range set.Templates {
				if !tmpl.Selectable() {
					continue
				}
				pod, secret, err := podtemplate.Render(tmpl, podtemplate.Identity{
					Name:       podtemplate.NewAgentName(tmpl.Name),
					Namespace:  k.agentsNamespace,
					Secret:     strings.Repeat("ab", 32),
					JenkinsURL: "http://jenkins.jenkins.svc.cluster.local:8080/",
				})
				if err != nil {
					t.Errorf("template %s: render: %v", tmpl.Name, err)
					continue
				}
				opts := metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldValidation: "Strict"}
				if _, err := a.kube.CoreV1().Secrets(secret.Namespace).Create(ctx, secret, opts); err != nil {
					t.Errorf("template %s: Secret refused: %v", tmpl.Name, err)
				}
				if _, err := a.kube.CoreV1().Pods(pod.Namespace).Create(ctx, pod, opts); err != nil {
					t.Errorf("template %s: pod refused in namespace %s: %v", tmpl.Name, pod.Namespace, err)
				}
				rendered++
			}
			if rendered == 0 {
				t.Fatal("no selectable template in the shipped templates")
			}
			if w := a.warnings.take(); len(w) > 0 {
				t.Errorf("apiserver warnings: %q", w)
			}
		})
	}
}

// TestOperatorOverlay builds the overlay that docs/operating.md gives as the way to keep one's
// settings out of the base (taken from the document itself), and checks that it does what the
// document says: the settings are merged into the ConfigMap the Deployment reads, the templates
// are replaced under the same fixed name, the image is set, and the apiserver accepts the result.
func TestOperatorOverlay(t *testing.T) {
	doc, err := os.ReadFile("../docs/operating.md")
	if err != nil {
		t.Fatal(err)
	}
	const marker = "# my-provisioner/kustomization.yaml\n"
	_, after, ok := strings.Cut(string(doc), marker)
	if !ok {
		t.Fatalf("docs/operating.md has no block starting with %q", marker)
	}
	overlay, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("the overlay's code block does not end")
	}
	mem := filesys.MakeFsInMemory()
	if err := copyTree(mem, "manifests", "/repo/deploy/manifests"); err != nil {
		t.Fatal(err)
	}
	const templates = "templates:\n  - name: operators\n    labels: [ops]\n"
	for file, data := range map[string]string{
		"/repo/my-provisioner/kustomization.yaml": overlay,
		"/repo/my-provisioner/templates.yaml":     templates,
	} {
		if err := mem.WriteFile(file, []byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	objs := build(t, mem, "/repo/my-provisioner")

	d := typed[appsv1.Deployment](t, one(t, objs, "Deployment", provisionerNamespace, "jenkins-agent-provisioner"))
	c := d.Spec.Template.Spec.Containers[0]
	if got, want := c.Image, "registry.example.com/jenkins-agent-provisioner:v0.1.0"; got != want {
		t.Errorf("image = %q, want %q", got, want)
	}
	if len(c.EnvFrom) != 1 || c.EnvFrom[0].ConfigMapRef == nil {
		t.Fatalf("envFrom = %+v, want the settings ConfigMap", c.EnvFrom)
	}
	settings := typed[corev1.ConfigMap](t, one(t, objs, "ConfigMap", provisionerNamespace, c.EnvFrom[0].ConfigMapRef.Name))
	want := map[string]string{
		"PROVISIONER_JENKINS_URL":  "https://jenkins.example.com/",
		"PROVISIONER_JENKINS_USER": "jenkins-agent-provisioner",
		"PROVISIONER_MAX_AGENTS":   "50",
	}
	if diff := cmp.Diff(want, settings.Data); diff != "" {
		t.Errorf("settings the Deployment reads (-want +got):\n%s", diff)
	}
	if n := len(ofKind(objs, "ConfigMap")); n != 2 {
		t.Errorf("%d ConfigMaps, want 2 (settings and templates)", n)
	}
	cm := typed[corev1.ConfigMap](t, one(t, objs, "ConfigMap", provisionerNamespace, templatesConfigMap))
	if diff := cmp.Diff(map[string]string{"templates.yaml": templates}, cm.Data); diff != "" {
		t.Errorf("templates ConfigMap (-want +got):\n%s", diff)
	}

	ctx := testContext(t)
	a := newApplier(t)
	for _, u := range objs {
		if err := a.apply(ctx, u, u.GetKind() != "Namespace"); err != nil {
			t.Error(err)
		}
	}
	if w := a.warnings.take(); len(w) > 0 {
		t.Errorf("apiserver warnings: %q", w)
	}
}
