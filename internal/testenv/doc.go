// Package testenv runs a real Kubernetes control plane for integration tests: etcd and
// kube-apiserver through controller-runtime's envtest, and optionally kube-controller-manager
// with its garbage collector, so ownerReference cascades happen as they do in a cluster.
//
// Why it exists: the provisioner's correctness lives in its conversation with the apiserver
// (creates that race deletes, watches that drop, Secrets that must go with their pod). A fake
// clientset answers none of that truthfully, so the controller's tests run against the real
// thing. This machine reaches only the Go module proxy, so envtest's usual download of prebuilt
// binaries cannot work; hack/build-control-plane.sh (make control-plane) builds kube-apiserver,
// kube-controller-manager and etcd from their Go modules into
// <module root>/.cache/control-plane/<version>/bin once, and this package finds them there
// (or wherever $KUBEBUILDER_ASSETS points). Start fails with that instruction when they are
// missing; it never skips, since an integration suite that silently skips looks green.
//
// How to use it: one control plane per test package, shared by its tests, each test working in
// a namespace of its own:
//
//	var env *testenv.Env
//
//	func TestMain(m *testing.M) { testenv.Main(m, testenv.Options{GarbageCollector: true}, &env) }
//
//	func TestSomething(t *testing.T) {
//		ns, err := env.Client.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{...}, metav1.CreateOptions{})
//		...
//	}
//
// env.Config and env.Client are cluster-admin; env.Kubeconfig is a file for a separate process
// (the provisioner binary, kubectl). Nothing else runs: there is no scheduler and no kubelet, so
// pods stay Pending and unbound unless a test (or internal/nodesim) plays those parts, and pods
// with no node are deleted at once rather than gracefully. Namespaces cannot be deleted (the
// namespace controller is not running): use a fresh one per test instead.
//
// With Options.Kueue, Start also runs a real Kueue (KueueVersion, built by hack/build-kueue.sh into
// <module root>/.cache/kueue/<version>, or wherever $KUEUE_ASSETS points): its CRDs and webhook
// configurations are installed (webhooks served on 127.0.0.1 with envtest's certificates, names
// prefixed kueue-, kube-system and KueueNamespace left alone as Kueue's release manifests leave
// them) and the manager runs with the pod integration only. CreateResourceFlavor,
// CreateClusterQueue, CreateLocalQueue, ApplyKueueObjects and WaitLocalQueueActive set up quota;
// pods labelled kueue.x-k8s.io/queue-name are then gated until admitted. Kueue's objects are
// unstructured (see kueue_queues.go for why not Kueue's Go types). Kueue insists on a metrics
// certificate at /etc/kueue/metrics/certs when its cert rotator is off, so Start writes one there
// if none is valid (it fails, saying so, when it cannot).
//
// Chaos tests can take the apiserver away with StopAPIServer and bring it back with
// StartAPIServer (or both with RestartAPIServer): same port, data and certificates, so existing
// clients reconnect on their own.
//
// Start-up costs several seconds (more with the garbage collector); on the shared 2-core machine
// timeouts are generous (2 minutes per component, $KUBEBUILDER_CONTROLPLANE_START_TIMEOUT to
// change it) and apiserver features nobody here needs are off. Each component's output goes to a
// log file; a failed start prints the tail and keeps the files, and $TESTENV_KEEP_LOGS keeps them
// after a normal Stop too.
package testenv
