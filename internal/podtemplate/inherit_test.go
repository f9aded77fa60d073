package podtemplate

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Three levels plus a second parent: base <- java <- maven, and maven also inherits from cache.
const inheritDoc = `templates:
  - name: base
    maxAgents: 3
    connectTimeout: 2m
    agent: {image: registry.example.com/inbound-agent:1, webSocket: true}
    pod:
      metadata:
        labels: {team: platform, tier: ci}
        annotations: {owner: platform}
      spec:
        serviceAccountName: builder
        nodeSelector: {kubernetes.io/os: linux}
        containers:
          - name: jnlp
            env:
              - {name: JAVA_OPTS, value: -Xmx256m}
              - {name: LANG, value: C.UTF-8}
  - name: java
    labels: [java]
    inheritFrom: [base]
    mode: normal
    podRetention: always
    pod:
      spec:
        containers:
          - name: jdk
            image: eclipse-temurin:17
            command: [sleep, infinity]
            env:
              - {name: JAVA_HOME, value: /opt/java/openjdk}
  - name: cache
    pod:
      spec:
        volumes:
          - name: m2
            persistentVolumeClaim: {claimName: m2-cache}
        containers:
          - name: jdk
            volumeMounts:
              - {name: m2, mountPath: /root/.m2}
  - name: maven
    labels: [maven]
    inheritFrom: [java, cache]
    connectTimeout: 10m
    agent: {webSocket: false}
    pod:
      metadata:
        labels: {team: payments}
      spec:
        nodeSelector: {pool: builds}
        containers:
          - name: jdk
            image: eclipse-temurin:21
            env:
              - {name: JAVA_HOME, value: /opt/java/21}
          - name: jnlp
            env:
              - {name: JAVA_OPTS, value: -Xmx512m}
          - name: maven
            image: maven:3.9
            command: [sleep, infinity]
`

func TestInheritance(t *testing.T) {
	set, err := Parse("inherit.yaml", []byte(inheritDoc))
	if err != nil {
		t.Fatal(err)
	}
	maven, ok := set.Get("maven")
	if !ok {
		t.Fatal("no template maven")
	}

	t.Run("template fields", func(t *testing.T) {
		type fields struct {
			Labels         []string
			Mode           Mode
			MaxAgents      int
			ConnectTimeout time.Duration
			PodRetention   Retention
			Agent          AgentSpec
		}
		got := fields{maven.Labels, maven.Mode, maven.MaxAgents, maven.ConnectTimeout, maven.PodRetention, maven.Agent}
		want := fields{
			Labels:         []string{"maven"}, // own, never inherited
			Mode:           ModeExclusive,     // java's normal is not inherited
			MaxAgents:      3,                 // from base, two levels up
			ConnectTimeout: 10 * time.Minute,  // child wins over base's 2m
			PodRetention:   RetentionAlways,   // from java
			Agent: AgentSpec{
				Image:     "registry.example.com/inbound-agent:1", // from base
				WebSocket: false,                                  // child wins field by field
				WorkDir:   DefaultWorkDir,
			},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("metadata", func(t *testing.T) {
		want := map[string]string{"team": "payments", "tier": "ci"}
		if diff := cmp.Diff(want, maven.Pod.Labels); diff != "" {
			t.Errorf("labels mismatch (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(map[string]string{"owner": "platform"}, maven.Pod.Annotations); diff != "" {
			t.Errorf("annotations mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("scalars and maps", func(t *testing.T) {
		if got := maven.Pod.Spec.ServiceAccountName; got != "builder" {
			t.Errorf("serviceAccountName = %q, want builder (inherited)", got)
		}
		want := map[string]string{"kubernetes.io/os": "linux", "pool": "builds"}
		if diff := cmp.Diff(want, maven.Pod.Spec.NodeSelector); diff != "" {
			t.Errorf("nodeSelector mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("containers merged by name", func(t *testing.T) {
		type c struct {
			Name, Image string
			Env         []string
			Mounts      []string
		}
		var got []c
		for _, x := range maven.Pod.Spec.Containers {
			cc := c{Name: x.Name, Image: x.Image}
			for _, e := range x.Env {
				cc.Env = append(cc.Env, e.Name+"="+e.Value)
			}
			for _, m := range x.VolumeMounts {
				cc.Mounts = append(cc.Mounts, m.Name+":"+m.MountPath)
			}
			got = append(got, cc)
		}
		// Strategic merge keeps the patch's order for the elements it names and appends the
		// rest, exactly as kubectl does.
		want := []c{
			{Name: "jdk", Image: "eclipse-temurin:21", Env: []string{"JAVA_HOME=/opt/java/21"}, Mounts: []string{"m2:/root/.m2"}},
			{Name: "jnlp", Env: []string{"JAVA_OPTS=-Xmx512m", "LANG=C.UTF-8"}},
			{Name: "maven", Image: "maven:3.9"},
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("containers mismatch (-want +got):\n%s", diff)
		}
		if got := maven.Pod.Spec.Containers[0].Command; !cmp.Equal(got, []string{"sleep", "infinity"}) {
			t.Errorf("jdk command = %q, want it inherited from java", got)
		}
	})

	t.Run("volumes", func(t *testing.T) {
		want := []corev1.Volume{{Name: "m2", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "m2-cache"}}}}
		if diff := cmp.Diff(want, maven.Pod.Spec.Volumes); diff != "" {
			t.Errorf("volumes mismatch (-want +got):\n%s", diff)
		}
	})

	t.Run("parents unchanged", func(t *testing.T) {
		java, _ := set.Get("java")
		if got := len(java.Pod.Spec.Containers); got != 2 {
			t.Errorf("java has %d containers, want 2 (jnlp from base, jdk)", got)
		}
		if java.Pod.Spec.Containers[1].Image != "eclipse-temurin:17" && java.Pod.Spec.Containers[0].Image != "eclipse-temurin:17" {
			t.Errorf("java's jdk image was changed by its child: %+v", java.Pod.Spec.Containers)
		}
		if java.Mode != ModeNormal {
			t.Errorf("java mode = %s, want normal", java.Mode)
		}
	})
}

func TestInheritanceWorkspaceAndQuantities(t *testing.T) {
	doc := `templates:
  - name: big
    workspace: {ephemeral: {storageClassName: fast, size: 20Gi}}
    pod:
      spec:
        containers:
          - name: build
            image: busybox
            resources: {requests: {cpu: 500m, memory: 1Gi}, limits: {memory: 2Gi}}
  - name: bigger
    labels: [bigger]
    inheritFrom: [big]
    pod:
      spec:
        containers:
          - name: build
            resources: {requests: {cpu: "2"}}
`
	set, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := set.Get("bigger")
	if b.Workspace.Ephemeral == nil || b.Workspace.Ephemeral.Size.String() != "20Gi" || b.Workspace.Ephemeral.StorageClassName != "fast" {
		t.Errorf("workspace = %+v, want the parent's ephemeral 20Gi on fast", b.Workspace)
	}
	got := b.Pod.Spec.Containers[0].Resources
	want := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"), corev1.ResourceMemory: resource.MustParse("1Gi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")},
	}
	if diff := cmp.Diff(want.Requests.Cpu().String(), got.Requests.Cpu().String()); diff != "" {
		t.Errorf("cpu request mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.Requests.Memory().String(), got.Requests.Memory().String()); diff != "" {
		t.Errorf("memory request mismatch (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want.Limits.Memory().String(), got.Limits.Memory().String()); diff != "" {
		t.Errorf("memory limit mismatch (-want +got):\n%s", diff)
	}
}
