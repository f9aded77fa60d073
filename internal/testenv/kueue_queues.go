package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/dynamic"
)

// Kueue's objects are handled as unstructured objects through the dynamic client rather than with
// Kueue's Go types: importing sigs.k8s.io/kueue into this module would pull in its whole
// dependency set (cert-manager, cluster-autoscaler's APIs, Kueue's own pins of k8s.io at v0.35 and
// controller-runtime at v0.23, which the module's v0.37 / v0.25 would override under Kueue's feet)
// for four small object shapes. The field names below are Kueue v1beta2's (apis/kueue/v1beta2).

const kueueAPIVersion = "kueue.x-k8s.io/v1beta2"

// The resources of Kueue's objects at the version the helpers write.
var (
	ResourceFlavorResource = schema.GroupVersionResource{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: "resourceflavors"}
	ClusterQueueResource   = schema.GroupVersionResource{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: "clusterqueues"}
	LocalQueueResource     = schema.GroupVersionResource{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: "localqueues"}
	WorkloadResource       = schema.GroupVersionResource{Group: "kueue.x-k8s.io", Version: "v1beta2", Resource: "workloads"}
)

// ClusterQueue describes a ClusterQueue with one resource group and one flavor, the shape a
// cluster sharing agents between teams needs.
type ClusterQueue struct {
	Name string
	// Cohort is the cohort the queue lends to and borrows from; "" for none.
	Cohort string
	// Flavor is the ResourceFlavor the quota is in (see CreateResourceFlavor).
	Flavor string
	// Quota is the nominal quota per covered resource (cpu, memory, ...). Pods requesting a
	// resource not listed here are never admitted.
	Quota corev1.ResourceList
	// BorrowingLimit caps, per resource, what the queue may borrow from its cohort beyond Quota;
	// a resource absent here may borrow all the cohort has unused.
	BorrowingLimit corev1.ResourceList
	// WithinClusterQueue and ReclaimWithinCohort are the preemption policies (Never,
	// LowerPriority, ...); "" leaves Kueue's default, Never.
	WithinClusterQueue  string
	ReclaimWithinCohort string
}

// object renders the ClusterQueue. namespaceSelector {} takes workloads from every namespace:
// Kueue's default (nil) matches none.
func (cq ClusterQueue) object() *unstructured.Unstructured {
	var covered []any
	var resources []any
	for _, name := range sortedResourceNames(cq.Quota) {
		covered = append(covered, string(name))
		r := map[string]any{"name": string(name), "nominalQuota": quantityString(cq.Quota, name)}
		if _, ok := cq.BorrowingLimit[name]; ok {
			r["borrowingLimit"] = quantityString(cq.BorrowingLimit, name)
		}
		resources = append(resources, r)
	}
	spec := map[string]any{
		"namespaceSelector": map[string]any{},
		"resourceGroups": []any{map[string]any{
			"coveredResources": covered,
			"flavors":          []any{map[string]any{"name": cq.Flavor, "resources": resources}},
		}},
	}
	if cq.Cohort != "" {
		spec["cohortName"] = cq.Cohort
	}
	preemption := map[string]any{}
	if cq.WithinClusterQueue != "" {
		preemption["withinClusterQueue"] = cq.WithinClusterQueue
	}
	if cq.ReclaimWithinCohort != "" {
		preemption["reclaimWithinCohort"] = cq.ReclaimWithinCohort
	}
	if len(preemption) > 0 {
		spec["preemption"] = preemption
	}
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": kueueAPIVersion, "kind": "ClusterQueue",
		"metadata": map[string]any{"name": cq.Name},
		"spec":     spec,
	}}
}

// sortedResourceNames gives the resources in a stable order, so that the same ClusterQueue renders
// the same object every time.
func sortedResourceNames(l corev1.ResourceList) []corev1.ResourceName {
	names := make([]corev1.ResourceName, 0, len(l))
	for name := range l {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

func quantityString(l corev1.ResourceList, name corev1.ResourceName) string {
	q := l[name]
	return q.String()
}

// CreateResourceFlavor creates a ResourceFlavor with no node labels: every node (here, none or
// nodesim's one) offers it.
func (e *Env) CreateResourceFlavor(ctx context.Context, name string) error {
	return e.createKueueObject(ctx, "", &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": kueueAPIVersion, "kind": "ResourceFlavor",
		"metadata": map[string]any{"name": name},
	}})
}

// CreateClusterQueue creates cq.
func (e *Env) CreateClusterQueue(ctx context.Context, cq ClusterQueue) error {
	return e.createKueueObject(ctx, "", cq.object())
}

// CreateLocalQueue creates the LocalQueue namespace/name feeding clusterQueue; pods join it with
// the label kueue.x-k8s.io/queue-name: name.
func (e *Env) CreateLocalQueue(ctx context.Context, namespace, name, clusterQueue string) error {
	return e.createKueueObject(ctx, namespace, &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": kueueAPIVersion, "kind": "LocalQueue",
		"metadata": map[string]any{"name": name, "namespace": namespace},
		"spec":     map[string]any{"clusterQueue": clusterQueue},
	}})
}

// WaitLocalQueueActive waits until the LocalQueue reports condition Active=True: its
// ClusterQueue exists, is active (its flavors exist) and Kueue admits into it. Before that,
// workloads queue but are never admitted. On timeout the error carries the last conditions seen.
func (e *Env) WaitLocalQueueActive(ctx context.Context, namespace, name string) error {
	dyn, err := e.dynamicClient()
	if err != nil {
		return err
	}
	last := "not found"
	err = wait.PollUntilContextCancel(ctx, pollInterval, true, func(ctx context.Context) (bool, error) {
		lq, err := dyn.Resource(LocalQueueResource).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			last = err.Error()
			return false, nil
		}
		conds, _, _ := unstructured.NestedSlice(lq.Object, "status", "conditions")
		last = fmt.Sprint(conds)
		for _, c := range conds {
			m, _ := c.(map[string]any)
			if m["type"] == "Active" && m["status"] == string(metav1.ConditionTrue) {
				return true, nil
			}
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("LocalQueue %s/%s not Active: %w (last: %s)", namespace, name, err, last)
	}
	return nil
}

// ApplyKueueObjects creates every object of a multi-document YAML stream (ResourceFlavors,
// ClusterQueues, LocalQueues, WorkloadPriorityClasses: kueue.x-k8s.io kinds), in order, and
// returns them as created. A namespaced object is created in namespaces[its namespace], so that a
// test can apply a documented example into namespaces of its own; one in a namespace the map does
// not name is refused, so a test never writes outside the namespaces it made.
func (e *Env) ApplyKueueObjects(ctx context.Context, data []byte, namespaces map[string]string) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var created []*unstructured.Unstructured
	for i := 0; ; i++ {
		obj := &unstructured.Unstructured{}
		if err := dec.Decode(&obj.Object); err != nil {
			if errors.Is(err, io.EOF) {
				return created, nil
			}
			return created, fmt.Errorf("kueue objects: document %d: %w", i, err)
		}
		if len(obj.Object) == 0 {
			continue // an empty document between separators
		}
		ns := ""
		if written := obj.GetNamespace(); written != "" {
			var ok bool
			if ns, ok = namespaces[written]; !ok {
				return created, fmt.Errorf("kueue objects: document %d: %s %q in namespace %q, which the namespace map does not name",
					i, obj.GetKind(), obj.GetName(), written)
			}
		}
		if err := e.createKueueObject(ctx, ns, obj); err != nil {
			return created, fmt.Errorf("kueue objects: document %d: %w", i, err)
		}
		created = append(created, obj)
	}
}

// createKueueObject creates obj (a Kueue kind) through the dynamic client, namespaced kinds in
// namespace.
func (e *Env) createKueueObject(ctx context.Context, namespace string, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	if gvk.Group != "kueue.x-k8s.io" {
		return fmt.Errorf("%s %q: not a kueue.x-k8s.io object", gvk.Kind, obj.GetName())
	}
	res, namespaced, err := kueueResource(gvk)
	if err != nil {
		return err
	}
	dyn, err := e.dynamicClient()
	if err != nil {
		return err
	}
	var ri dynamic.ResourceInterface = dyn.Resource(res)
	if namespaced {
		if namespace == "" {
			return fmt.Errorf("%s %q: namespaced, and no namespace given", gvk.Kind, obj.GetName())
		}
		obj.SetNamespace(namespace)
		ri = dyn.Resource(res).Namespace(namespace)
	}
	got, err := ri.Create(ctx, obj, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating %s %q: %w", gvk.Kind, obj.GetName(), err)
	}
	obj.Object = got.Object
	return nil
}

// kueueResource maps the Kueue kinds the helpers create to their resource, without a discovery
// round trip per object.
func kueueResource(gvk schema.GroupVersionKind) (schema.GroupVersionResource, bool, error) {
	kinds := map[string]bool{ // kind: namespaced
		"ResourceFlavor": false, "ClusterQueue": false, "Cohort": false, "WorkloadPriorityClass": false,
		"LocalQueue": true, "Workload": true,
	}
	namespaced, ok := kinds[gvk.Kind]
	if !ok {
		return schema.GroupVersionResource{}, false, fmt.Errorf("kind %s of %s: not one the test helpers create", gvk.Kind, gvk.GroupVersion())
	}
	plural, _ := meta.UnsafeGuessKindToResource(gvk)
	return plural, namespaced, nil
}

// dynamicClient returns the Env's dynamic client, built on first use.
func (e *Env) dynamicClient() (dynamic.Interface, error) {
	e.dynOnce.Do(func() {
		e.dyn, e.dynErr = dynamic.NewForConfig(e.Config)
	})
	if e.dynErr != nil {
		return nil, fmt.Errorf("building the dynamic client: %w", e.dynErr)
	}
	return e.dyn, nil
}

// KueueDynamic returns a dynamic client for reading Kueue's objects (Workloads, queue status).
func (e *Env) KueueDynamic() (dynamic.Interface, error) { return e.dynamicClient() }
