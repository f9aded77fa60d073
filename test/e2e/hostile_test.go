package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
	"github.com/jenkins-agent-provisioner/provisioner/internal/lifecycle"
	"github.com/jenkins-agent-provisioner/provisioner/internal/podtemplate"
)

// Objects that look like the provisioner's but that this installation did not make, on the real
// apiserver and the Jenkins emulator (issue 12 item 1): a pod with our labels named after the
// Jenkins token Secret, a pod with a creation record copied from another pod, another installation's
// node and a node with a forged proof. Past every grace they are all still there, reported, and the
// builds are served as if they were not.
func TestObjectsWeDidNotMakeAreLeftAlone(t *testing.T) {
	r := newRig(t, rigOptions{noController: true, maxAgents: 2})
	ctx := context.Background()
	id, err := lifecycle.EnsureIdentity(ctx, env.Client, r.ns, "")
	mustDo(t, err)
	ourLabels := map[string]string{podtemplate.LabelManagedBy: podtemplate.ManagedByValue,
		podtemplate.LabelName: podtemplate.NameValue, podtemplate.LabelTemplate: "maven"}

	_, err = env.Client.CoreV1().Secrets(r.ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "jenkins-token"},
		StringData: map[string]string{"token": "the provisioner's own credentials"}}, metav1.CreateOptions{})
	mustDo(t, err)
	pod := func(name string, annotations map[string]string) {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: ourLabels, Annotations: annotations},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "jnlp", Image: "jenkins/inbound-agent:x",
				Env: []corev1.EnvVar{{Name: "JENKINS_URL", Value: r.jenkins.URL()}}}}}}
		_, err := env.Client.CoreV1().Pods(r.ns).Create(ctx, p, metav1.CreateOptions{})
		mustDo(t, err)
	}
	pod("jenkins-token", nil)
	pod("maven-copied", map[string]string{lifecycle.AnnotationCreatedBy: id.CreationRecord("maven-elsewhere")})

	other := lifecycle.Identity{Namespace: r.ns, ID: "other-installation", Key: []byte("another installation's key")}
	old := time.Now().Add(-time.Hour)
	mustDo(t, r.client.CreateNode(ctx, jenkins.NodeSpec{Name: "maven-theirs", Description: other.NodeDescription("maven-theirs", "maven", old), Labels: []string{"maven"}}))
	forged := strings.Replace(id.NodeDescription("maven-forged", "maven", old), "proof=", "proof=0", 1)
	mustDo(t, r.client.CreateNode(ctx, jenkins.NodeSpec{Name: "maven-forged", Description: forged, Labels: []string{"maven"}}))

	maven, _, _ := createJobs(r.jenkins, 2, 500*time.Millisecond)
	r.startController() // OrphanGrace 5s in the rig
	r.queue(2, maven...)
	// Two builds on maxAgents 2: the two foreign pods take no room.
	r.waitBuilds(2, 2*time.Minute)
	// Let the pods grow past the rig's 5 s orphan grace (the nodes say they are an hour old) and a
	// few polls judge them there: a pod taken for ours would now be deleted as one without a node.
	time.Sleep(7 * time.Second)

	for _, name := range []string{"jenkins-token", "maven-copied"} {
		if _, err := env.Client.CoreV1().Pods(r.ns).Get(ctx, name, metav1.GetOptions{}); err != nil {
			t.Errorf("foreign pod %s: %v", name, err)
		}
	}
	if _, err := env.Client.CoreV1().Secrets(r.ns).Get(ctx, "jenkins-token", metav1.GetOptions{}); err != nil {
		t.Errorf("the Jenkins token Secret: %v", err)
	}
	var nodes []string
	for _, n := range r.jenkins.Nodes() {
		nodes = append(nodes, n.Name)
		if (n.Name == "maven-theirs" || n.Name == "maven-forged") && n.TemporarilyOffline {
			t.Errorf("foreign node %s was marked: %q", n.Name, n.OfflineReason)
		}
	}
	for _, name := range []string{"maven-theirs", "maven-forged"} {
		if !slices.Contains(nodes, name) {
			t.Errorf("foreign node %s deleted; nodes now %v", name, nodes)
		}
	}
	eventually(t, 10*time.Second, func() (bool, string) {
		n := len(events(t, r.ns, "ForeignAgentPod"))
		return n == 2, fmt.Sprintf("%d ForeignAgentPod events, want one per foreign pod (2)", n)
	})
}

// A pipeline asking for a label of 1 MB of "(" (Jenkins passes pipeline authors' text on in `why`)
// is one unreadable queue item: shown as such on the status, and the rest of the queue is served
// (issue 12 item 2; on main before the bounds it ended the process with a stack overflow).
func TestAHostileLabelIsReportedAndTheRestServed(t *testing.T) {
	r := newRig(t, rigOptions{})
	r.jenkins.CreatePipelineJob("hostile", strings.Repeat("(", 1<<20), time.Second)
	maven, _, _ := createJobs(r.jenkins, 2, 500*time.Millisecond)
	r.queue(1, "hostile")
	r.queue(2, maven...)
	r.waitBuilds(2, 2*time.Minute)
	eventually(t, 30*time.Second, func() (bool, string) {
		var rows []string
		for _, w := range r.ctrl.Status().Waiting {
			rows = append(rows, w.Label+" "+string(w.Why.Kind))
			if w.Why.Kind == lifecycle.WaitUnreadable && w.Builds == 1 && len(w.Why.Detail) < 1000 {
				return true, ""
			}
		}
		return false, fmt.Sprintf("waiting rows %q, want the hostile build shown as %s", rows, lifecycle.WaitUnreadable)
	})
}
