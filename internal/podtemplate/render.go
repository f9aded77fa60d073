package podtemplate

import (
	"errors"
	"fmt"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Render builds the Pod and the per-agent Secret for one agent of template t. The Secret has no
// ownerReference yet: the pod does not exist (and has no UID) when the Secret is created; call
// SetSecretOwner once it does.
func Render(t *Template, id Identity) (*corev1.Pod, *corev1.Secret, error) {
	if err := checkIdentity(id); err != nil {
		return nil, nil, fmt.Errorf("render template %s: %w", t.Name, err)
	}
	labels := map[string]string{
		LabelManagedBy: ManagedByValue,
		LabelName:      NameValue,
		LabelTemplate:  t.Name,
	}

	pod := &corev1.Pod{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: *t.Pod.ObjectMeta.DeepCopy(),
		Spec:       *t.Pod.Spec.DeepCopy(),
	}
	pod.Name, pod.Namespace = id.Name, id.Namespace
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	for k, v := range labels { // ours win: the reaper and the controller find pods by them
		pod.Labels[k] = v
	}
	if err := setQueueLabel(pod, t, id); err != nil {
		return nil, nil, fmt.Errorf("render template %s: %w", t.Name, err)
	}
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	pod.Annotations[AnnotationJenkinsURL] = id.JenkinsURL
	pod.Annotations[AnnotationNodeName] = id.Name
	keepFromDisruption(pod.Annotations)

	spec := &pod.Spec
	spec.RestartPolicy = corev1.RestartPolicyNever
	// An agent runs pipeline authors' code: it gets no Kubernetes credentials unless its template
	// asks for them, by setting automountServiceAccountToken or naming a service account (then the
	// administrator chose that account's rights for the agents).
	if spec.AutomountServiceAccountToken == nil && spec.ServiceAccountName == "" && spec.DeprecatedServiceAccount == "" {
		noToken := false
		spec.AutomountServiceAccountToken = &noToken
	}
	if t.ActiveDeadlineSeconds != nil {
		v := *t.ActiveDeadlineSeconds
		spec.ActiveDeadlineSeconds = &v
	}
	if !hasVolume(spec.Volumes, WorkspaceVolumeName) {
		spec.Volumes = append(spec.Volumes, workspaceVolume(t))
	}

	jnlp := -1
	for i := range spec.Containers {
		if spec.Containers[i].Name == JNLPContainerName {
			jnlp = i
		}
	}
	if jnlp < 0 {
		spec.Containers = append(spec.Containers, corev1.Container{
			Name: JNLPContainerName,
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse("100m"),
				corev1.ResourceMemory: resource.MustParse("256Mi"),
			}},
		})
		jnlp = len(spec.Containers) - 1
	}
	// Every container gets a working directory and the workspace mounted there, so build steps in
	// any container see the files the agent checked out.
	for i := range spec.Containers {
		c := &spec.Containers[i]
		if c.WorkingDir == "" {
			c.WorkingDir = t.Agent.WorkDir
			// A container that mounts the workspace itself works where it mounted it.
			for _, m := range c.VolumeMounts {
				if m.Name == WorkspaceVolumeName {
					c.WorkingDir = m.MountPath
				}
			}
		}
		if !hasMount(c.VolumeMounts, WorkspaceVolumeName, c.WorkingDir) {
			c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: WorkspaceVolumeName, MountPath: c.WorkingDir})
		}
	}
	agent := &spec.Containers[jnlp]
	if agent.Image == "" {
		agent.Image = t.Agent.Image
	}
	agent.Env = agentEnv(t, id, agent)

	secret := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: id.Name, Namespace: id.Namespace, Labels: labels},
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{SecretKey: []byte(id.Secret)},
	}
	return pod, secret, nil
}

// The annotations node autoscalers honour: a pod carrying them keeps its node from being drained or
// consolidated away, so a build running on the agent is not killed to save a node.
const (
	AnnotationSafeToEvict  = "cluster-autoscaler.kubernetes.io/safe-to-evict"
	AnnotationDoNotDisrupt = "karpenter.sh/do-not-disrupt"
)

// keepFromDisruption asks cluster-autoscaler and Karpenter not to evict the agent pod, unless the
// template says otherwise itself (a template for short, restartable builds may well allow it).
func keepFromDisruption(annotations map[string]string) {
	if _, set := annotations[AnnotationSafeToEvict]; !set {
		annotations[AnnotationSafeToEvict] = "false"
	}
	if _, set := annotations[AnnotationDoNotDisrupt]; !set {
		annotations[AnnotationDoNotDisrupt] = "true"
	}
}

func checkIdentity(id Identity) error {
	var errs []error
	if id.Name == "" {
		errs = append(errs, errors.New("identity: agent name is empty"))
	}
	for _, msg := range validation.IsDNS1123Label(id.Name) {
		errs = append(errs, fmt.Errorf("identity: agent name %q: %s", id.Name, msg))
	}
	if id.Secret == "" {
		errs = append(errs, errors.New("identity: agent secret is empty"))
	}
	if id.JenkinsURL == "" {
		errs = append(errs, errors.New("identity: Jenkins URL is empty"))
	}
	return errors.Join(errs...)
}

// DefaultNoReconnectAfter bounds how long a rendered agent tries to reconnect after losing Jenkins
// (remoting's -noReconnectAfter, counted from the disconnect: Engine.innerRun resets firstAttempt).
// Jenkins waits ExecutorPickle.timeoutForNodeMillis (5 minutes) for a resumed node block's agent,
// counted from when it is back up; the agent lost it when Jenkins went down, so it must outlast the
// restart as well: twice the Jenkins wait. An agent whose node is gone for good then ends by itself.
const DefaultNoReconnectAfter = 10 * time.Minute

// defaultRemotingOpts are the options the rendered agent passes to remoting (Launcher): it reconnects
// after a Jenkins restart or a dropped connection, as Pipeline's resumable node blocks need, for
// DefaultNoReconnectAfter at most. remoting parses "10m" with DurationStyle (unit suffix ms/s/m/h/d).
var defaultRemotingOpts = "-noReconnectAfter " + strconv.Itoa(int(DefaultNoReconnectAfter/time.Minute)) + "m"

// agentEnv is the inbound agent's environment (read by the jenkins/inbound-agent entrypoint): the
// defaults, with the template's own entries winning except JENKINS_SECRET (validation rejects it).
// A template's own REMOTING_OPTS replaces the default whole: it may say -noReconnect, which remoting
// refuses together with -noReconnectAfter.
func agentEnv(t *Template, id Identity, c *corev1.Container) []corev1.EnvVar {
	url := id.AgentJenkinsURL
	if url == "" {
		url = id.JenkinsURL
	}
	webSocket := t.Agent.WebSocket
	if id.WebSocket != nil {
		webSocket = *id.WebSocket
	}
	defaults := []corev1.EnvVar{
		{Name: "JENKINS_URL", Value: url},
		{Name: "JENKINS_SECRET", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: id.Name},
			Key:                  SecretKey,
		}}},
		{Name: "JENKINS_AGENT_NAME", Value: id.Name},
		{Name: "JENKINS_NAME", Value: id.Name},
		{Name: "JENKINS_AGENT_WORKDIR", Value: c.WorkingDir},
	}
	if webSocket {
		defaults = append(defaults, corev1.EnvVar{Name: "JENKINS_WEB_SOCKET", Value: strconv.FormatBool(true)})
	}
	if id.Tunnel != "" {
		defaults = append(defaults, corev1.EnvVar{Name: "JENKINS_TUNNEL", Value: id.Tunnel})
	}
	defaults = append(defaults, corev1.EnvVar{Name: "REMOTING_OPTS", Value: defaultRemotingOpts})

	own := map[string]bool{}
	out := make([]corev1.EnvVar, 0, len(defaults)+len(c.Env))
	for _, e := range c.Env {
		if e.Name == "JENKINS_SECRET" {
			continue
		}
		own[e.Name] = true
		out = append(out, e)
	}
	var result []corev1.EnvVar
	for _, d := range defaults {
		if !own[d.Name] {
			result = append(result, d)
		}
	}
	return append(result, out...)
}

func workspaceVolume(t *Template) corev1.Volume {
	v := corev1.Volume{Name: WorkspaceVolumeName}
	if e := t.Workspace.Ephemeral; e != nil {
		claim := corev1.PersistentVolumeClaimSpec{
			AccessModes: append([]corev1.PersistentVolumeAccessMode(nil), e.AccessModes...),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: e.Size.DeepCopy(),
			}},
		}
		if e.StorageClassName != "" {
			sc := e.StorageClassName
			claim.StorageClassName = &sc
		}
		v.Ephemeral = &corev1.EphemeralVolumeSource{VolumeClaimTemplate: &corev1.PersistentVolumeClaimTemplate{
			ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{
				LabelManagedBy: ManagedByValue,
				LabelTemplate:  t.Name,
			}},
			Spec: claim,
		}}
		return v
	}
	ed := corev1.EmptyDirVolumeSource{}
	if t.Workspace.EmptyDir != nil {
		ed = *t.Workspace.EmptyDir.DeepCopy()
	}
	v.EmptyDir = &ed
	return v
}

func hasVolume(vs []corev1.Volume, name string) bool {
	for _, v := range vs {
		if v.Name == name {
			return true
		}
	}
	return false
}

func hasMount(ms []corev1.VolumeMount, name, mountPath string) bool {
	for _, m := range ms {
		if m.Name == name || m.MountPath == mountPath {
			return true
		}
	}
	return false
}

// SetSecretOwner makes pod the owner of secret, so that Kubernetes' garbage collector deletes the
// Secret with its pod should the provisioner not do it itself. The pod must exist (have a UID).
func SetSecretOwner(secret *corev1.Secret, pod *corev1.Pod) {
	ref := metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}
	for i, r := range secret.OwnerReferences {
		if r.APIVersion == "v1" && r.Kind == "Pod" && r.Name == pod.Name {
			secret.OwnerReferences[i] = ref
			return
		}
	}
	secret.OwnerReferences = append(secret.OwnerReferences, ref)
}
