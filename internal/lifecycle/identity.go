package lifecycle

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Identity is this installation: what tells our Jenkins nodes and pods from everybody else's. Two
// provisioners on one Jenkins (other namespaces, other clusters) have different identities and never
// touch each other's nodes; a node or pod that merely copies our marker is not ours either, because
// the proof on it is a MAC of its name under a key only this installation holds.
type Identity struct {
	Namespace string
	// ID names the installation in node descriptions and creation records (not a secret).
	ID string
	// Key signs the name of every node and pod we create (a secret: it lives in the installation
	// Secret, which carries none of the agent labels and so is never in the agent caches).
	Key []byte
}

// InstallationSecretName is the Secret holding the installation's identity, created once by the
// first provisioner that runs in the namespace and read by every later one (restarts, standbys).
const InstallationSecretName = "jenkins-agent-provisioner-installation"

// annotationCreatedBy is the creation record on every pod we make: "ID/PROOF".
const annotationCreatedBy = "jenkins-agent-provisioner/created-by"

// proof is the MAC of one object we made: its kind ("node", "pod") and name, under the key.
func (id Identity) proof(kind, name string) string {
	m := hmac.New(sha256.New, id.Key)
	fmt.Fprintf(m, "%s\x00%s\x00%s\x00%s", kind, id.Namespace, id.ID, name)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// verify reports whether p is our proof for the object.
func (id Identity) verify(kind, name, p string) bool {
	if len(id.Key) == 0 {
		return false
	}
	return hmac.Equal([]byte(id.proof(kind, name)), []byte(p))
}

// creationRecord is the annotation value marking a pod as made by this installation.
func (id Identity) creationRecord(pod string) string { return id.ID + "/" + id.proof("pod", pod) }

// podRecord says what a pod's creation record makes of it.
type podRecord int

const (
	recordNone    podRecord = iota // no record: made before creation records existed, or not by us
	recordOurs                     // a record of this installation with a valid proof
	recordForeign                  // a record that is not ours (another installation, or forged)
)

func (id Identity) podRecord(pod *corev1.Pod) podRecord {
	v, ok := pod.Annotations[annotationCreatedBy]
	if !ok {
		return recordNone
	}
	gotID, p, _ := strings.Cut(v, "/")
	if gotID == id.ID && id.verify("pod", pod.Name, p) {
		return recordOurs
	}
	return recordForeign
}

var installationIDRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

// EnsureIdentity reads the installation Secret of namespace, creating it once when missing. id, when
// set (PROVISIONER_INSTALLATION_ID), names the installation instead of the Secret's generated id;
// the key always comes from the Secret.
func EnsureIdentity(ctx context.Context, kube kubernetes.Interface, namespace, id string) (Identity, error) {
	if id != "" && !installationIDRE.MatchString(id) {
		return Identity{}, fmt.Errorf("installation id %q: want 1 to 63 lower-case letters, digits and '-'", id)
	}
	secrets := kube.CoreV1().Secrets(namespace)
	s, err := secrets.Get(ctx, InstallationSecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		s, err = secrets.Create(ctx, newInstallationSecret(namespace), metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) { // a standby made it first
			s, err = secrets.Get(ctx, InstallationSecretName, metav1.GetOptions{})
		}
	}
	if err != nil {
		return Identity{}, fmt.Errorf("read installation Secret %s/%s: %w", namespace, InstallationSecretName, err)
	}
	gotID, key := string(s.Data["id"]), s.Data["key"]
	if !installationIDRE.MatchString(gotID) || len(key) < 16 {
		return Identity{}, fmt.Errorf("installation Secret %s/%s: want data id (1 to 63 of [a-z0-9-]) and key (16 bytes or more)", namespace, InstallationSecretName)
	}
	if id != "" {
		gotID = id
	}
	return Identity{Namespace: namespace, ID: gotID, Key: key}, nil
}

func newInstallationSecret(namespace string) *corev1.Secret {
	raw := make([]byte, 40)
	_, _ = rand.Read(raw) // crypto/rand.Read never fails (Go 1.24)
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: InstallationSecretName, Namespace: namespace,
			// Not the agent labels: this Secret must never be in the agent caches nor look like a stray.
			Labels: map[string]string{"app.kubernetes.io/name": "jenkins-agent-provisioner", "app.kubernetes.io/component": "installation"},
		},
		Data: map[string][]byte{"id": []byte(hex.EncodeToString(raw[:8])), "key": raw[8:]},
	}
}

// NodeDescription is the description this installation gives a Jenkins node it makes (for tools
// and tests that stage what a crashed provisioner left).
func (id Identity) NodeDescription(name, template string, created time.Time) string {
	return nodeDescription(id, name, template, created)
}

// CreationRecord is the value of AnnotationCreatedBy this installation writes on a pod it makes.
func (id Identity) CreationRecord(pod string) string { return id.creationRecord(pod) }

// AnnotationCreatedBy is the pod annotation holding the creation record.
const AnnotationCreatedBy = annotationCreatedBy
