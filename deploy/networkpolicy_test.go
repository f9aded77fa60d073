package deploy

import (
	"net/netip"
	"os"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// peerPod is a pod as a NetworkPolicy peer sees it.
type peerPod struct {
	namespace string
	labels    labels.Set
	ip        string
}

func selects(t *testing.T, sel *metav1.LabelSelector, set labels.Set) bool {
	t.Helper()
	if sel == nil {
		return true
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return s.Matches(set)
}

// peerMatches is NetworkPolicyPeer semantics: a namespaceSelector and/or podSelector pair (a missing
// namespaceSelector means the policy's own namespace), or an ipBlock.
func peerMatches(t *testing.T, policyNS string, p networkingv1.NetworkPolicyPeer, pod peerPod) bool {
	t.Helper()
	if p.IPBlock != nil {
		ip := netip.MustParseAddr(pod.ip)
		if !netip.MustParsePrefix(p.IPBlock.CIDR).Contains(ip) {
			return false
		}
		for _, e := range p.IPBlock.Except {
			if netip.MustParsePrefix(e).Contains(ip) {
				return false
			}
		}
		return true
	}
	if p.NamespaceSelector == nil {
		if pod.namespace != policyNS {
			return false
		}
	} else if !selects(t, p.NamespaceSelector, labels.Set{"kubernetes.io/metadata.name": pod.namespace}) {
		return false
	}
	return selects(t, p.PodSelector, pod.labels)
}

func portMatches(ports []networkingv1.NetworkPolicyPort, named string, number int32, proto corev1.Protocol) bool {
	if len(ports) == 0 {
		return true
	}
	for _, p := range ports {
		if p.Protocol != nil && *p.Protocol != proto {
			continue
		}
		switch {
		case p.Port == nil:
			return true
		case p.Port.Type == intstr.String && p.Port.StrVal == named && named != "":
			return true
		case p.Port.Type == intstr.Int && p.Port.IntVal == number:
			return true
		}
	}
	return false
}

// netPolicies are the NetworkPolicies of one rendering, with the semantics a network plugin gives
// them: a pod selected by no policy of a type is open in that direction; otherwise a connection
// must match a rule of one of them.
type netPolicies []networkingv1.NetworkPolicy

func policiesOf(t *testing.T, objs []*unstructured.Unstructured) netPolicies {
	t.Helper()
	var ps netPolicies
	for _, u := range ofKind(objs, "NetworkPolicy") {
		ps = append(ps, *typed[networkingv1.NetworkPolicy](t, u))
	}
	return ps
}

// applying lists the policies that select pod and have the given type.
func (ps netPolicies) applying(t *testing.T, p peerPod, typ networkingv1.PolicyType) netPolicies {
	t.Helper()
	var out netPolicies
	for _, np := range ps {
		if np.Namespace == p.namespace && selects(t, &np.Spec.PodSelector, p.labels) && containsType(np.Spec.PolicyTypes, typ) {
			out = append(out, np)
		}
	}
	return out
}

func (ps netPolicies) ingressAllowed(t *testing.T, to, from peerPod, port string, number int32, proto corev1.Protocol) bool {
	t.Helper()
	nps := ps.applying(t, to, networkingv1.PolicyTypeIngress)
	if len(nps) == 0 {
		return true
	}
	for _, np := range nps {
		for _, rule := range np.Spec.Ingress {
			if !portMatches(rule.Ports, port, number, proto) {
				continue
			}
			if len(rule.From) == 0 {
				return true
			}
			for _, peer := range rule.From {
				if peerMatches(t, np.Namespace, peer, from) {
					return true
				}
			}
		}
	}
	return false
}

func (ps netPolicies) egressAllowed(t *testing.T, from, to peerPod, number int32, proto corev1.Protocol) bool {
	t.Helper()
	nps := ps.applying(t, from, networkingv1.PolicyTypeEgress)
	if len(nps) == 0 {
		return true
	}
	for _, np := range nps {
		for _, rule := range np.Spec.Egress {
			if !portMatches(rule.Ports, "", number, proto) {
				continue
			}
			if len(rule.To) == 0 {
				return true
			}
			for _, peer := range rule.To {
				if peerMatches(t, np.Namespace, peer, to) {
					return true
				}
			}
		}
	}
	return false
}

// The peers the isolation checks use, besides the agent and the provisioner.
var (
	scraperPod  = peerPod{namespace: "monitoring", labels: labels.Set{"app": "prometheus", "jenkins-agent-provisioner/metrics-scraper": "true"}, ip: "10.244.3.4"}
	otherPod    = peerPod{namespace: "default", labels: labels.Set{"app": "web"}, ip: "10.244.3.5"}
	jenkinsPod  = peerPod{namespace: "jenkins", labels: labels.Set{"app.kubernetes.io/component": "jenkins-controller"}, ip: "10.244.4.2"}
	dnsPod      = peerPod{namespace: "kube-system", labels: labels.Set{"k8s-app": "kube-dns"}, ip: "10.96.0.10"}
	internetPod = peerPod{ip: "140.82.112.3"}
	metadataPod = peerPod{ip: "169.254.169.254"}
)

// agentPeer is an agent pod of the example's default template as the provisioner renders it in
// namespace, wearing the scraper label too (a template may add any label).
func agentPeer(t *testing.T, namespace string) peerPod {
	t.Helper()
	example, err := os.ReadFile("examples/templates.yaml")
	if err != nil {
		t.Fatal(err)
	}
	set, err := podtemplate.Parse("templates.yaml", example)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, ok := set.Select("")
	if !ok {
		t.Fatal("no template for unlabelled builds")
	}
	pod, _, err := podtemplate.Render(tmpl, podtemplate.Identity{Name: podtemplate.NewAgentName(tmpl.Name), Namespace: namespace,
		Secret: "s", JenkinsURL: "http://jenkins.jenkins.svc.cluster.local:8080/"})
	if err != nil {
		t.Fatal(err)
	}
	agentLabels := labels.Set(pod.Labels)
	agentLabels["jenkins-agent-provisioner/metrics-scraper"] = "true"
	return peerPod{namespace: namespace, labels: agentLabels, ip: "10.244.1.7"}
}

// checkIsolation holds a rendering (kustomize or the chart) to the documented network exposure:
// agent pods in agentsNamespace are isolated for ingress, reach DNS and Jenkins but not the
// provisioner's port nor in-cluster addresses; the provisioner's port (of deployment, in
// namespace) takes connections only from the documented scraper label, and never from an agent
// pod wearing it.
func checkIsolation(t *testing.T, objs []*unstructured.Unstructured, namespace, deployment, agentsNamespace string) {
	t.Helper()
	d := typed[appsv1.Deployment](t, one(t, objs, "Deployment", namespace, deployment))
	agent := agentPeer(t, agentsNamespace)
	provisioner := peerPod{namespace: namespace, labels: labels.Set(d.Spec.Template.Labels), ip: "10.244.2.9"}
	ps := policiesOf(t, objs)
	port := containerPort(d.Spec.Template.Spec.Containers[0], "http")
	tcp, udp := corev1.ProtocolTCP, corev1.ProtocolUDP
	for _, c := range []struct {
		what string
		got  bool
		want bool
	}{
		{"agent -> provisioner port (ingress)", ps.ingressAllowed(t, provisioner, agent, "http", port, tcp), false},
		{"agent -> provisioner port (egress)", ps.egressAllowed(t, agent, provisioner, port, tcp), false},
		{"scraper -> provisioner /metrics", ps.ingressAllowed(t, provisioner, scraperPod, "http", port, tcp), true},
		{"unlabelled pod -> provisioner", ps.ingressAllowed(t, provisioner, otherPod, "http", port, tcp), false},
		{"anything -> agent", ps.ingressAllowed(t, agent, otherPod, "", 8080, tcp), false},
		{"agent -> DNS udp", ps.egressAllowed(t, agent, dnsPod, 53, udp), true},
		{"agent -> DNS tcp", ps.egressAllowed(t, agent, dnsPod, 53, tcp), true},
		{"agent -> Jenkins http", ps.egressAllowed(t, agent, jenkinsPod, 8080, tcp), true},
		{"agent -> Jenkins agent port", ps.egressAllowed(t, agent, jenkinsPod, 50000, tcp), true},
		{"agent -> other in-cluster pod", ps.egressAllowed(t, agent, otherPod, 80, tcp), false},
		{"agent -> cloud metadata", ps.egressAllowed(t, agent, metadataPod, 80, tcp), false},
		{"agent -> internet (artifact repositories)", ps.egressAllowed(t, agent, internetPod, 443, tcp), true},
	} {
		if c.got != c.want {
			t.Errorf("%s: allowed = %v, want %v", c.what, c.got, c.want)
		}
	}
}

// TestNetworkPolicies: each kustomization gives the documented network exposure (checkIsolation).
// The objects' server dry run is TestDryRun's.
func TestNetworkPolicies(t *testing.T) {
	for _, k := range kustomizations {
		t.Run(k.name, func(t *testing.T) {
			checkIsolation(t, buildOnDisk(t, k.dir), provisionerNamespace, "jenkins-agent-provisioner", k.agentsNamespace)
			// The documented scraper label is the one the policy names.
			doc, err := os.ReadFile("../docs/operating.md")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(doc), "jenkins-agent-provisioner/metrics-scraper") {
				t.Error("docs/operating.md does not document the metrics scraper label")
			}
		})
	}
}

func containsType(types []networkingv1.PolicyType, t networkingv1.PolicyType) bool {
	for _, x := range types {
		if x == t {
			return true
		}
	}
	return false
}
