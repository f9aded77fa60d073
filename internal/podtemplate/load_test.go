package podtemplate

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// minimal is a valid template others in the table start from.
const minimal = `templates:
  - name: maven
    labels: [maven]
`

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want string
	}{
		{
			name: "unknown top-level field",
			yaml: "templates: []\ntemplate: []\n",
			want: "t.yaml:2: template: unknown field \"template\"",
		},
		{
			name: "empty templates list",
			yaml: "templates: []\n",
			want: "t.yaml:1: no templates defined",
		},
		{
			name: "no templates list",
			yaml: "{}\n",
			want: "t.yaml:1: templates: required: the list of templates",
		},
		{
			name: "templates is not a list",
			yaml: "templates: {name: x}\n",
			want: "t.yaml:1: templates: expected a list, got a mapping",
		},
		{
			name: "invalid YAML",
			yaml: "templates:\n  - name: a\n    labels: x: y\n",
			want: "t.yaml:3: invalid YAML: mapping values are not allowed in this context",
		},
		{
			name: "empty file",
			yaml: "",
			want: "t.yaml:1: empty file: want a mapping with a templates list",
		},
		{
			name: "two documents",
			yaml: minimal + "---\ntemplates: []\n",
			want: "t.yaml:4: more than one YAML document; put all templates in one list",
		},
		{
			name: "unknown template field",
			yaml: minimal + "    maxAgnts: 3\n",
			want: "t.yaml:4: templates[0].maxAgnts: unknown field \"maxAgnts\"",
		},
		{
			name: "wrong case suggests the field",
			yaml: minimal + "    MaxAgents: 3\n",
			want: "t.yaml:4: templates[0].MaxAgents: unknown field \"MaxAgents\" (did you mean \"maxAgents\"?)",
		},
		{
			name: "wrong type",
			yaml: minimal + "    maxAgents: many\n",
			want: "t.yaml:4: templates[0].maxAgents: expected an integer, got string \"many\"",
		},
		{
			name: "duplicate key",
			yaml: minimal + "    labels: [x]\n",
			want: "t.yaml:4: templates[0].labels: duplicate key (first at line 3)",
		},
		{
			name: "maxAgents zero",
			yaml: minimal + "  - name: node\n    labels: [node]\n    maxAgents: 0\n",
			want: "t.yaml:6: templates[1].maxAgents: must be at least 1, got 0",
		},
		{
			name: "bad duration",
			yaml: minimal + "    connectTimeout: 5 minutes\n",
			want: "t.yaml:4: templates[0].connectTimeout: invalid value \"5 minutes\": want a duration such as \"5m\" or \"1h30m\"",
		},
		{
			name: "number for duration",
			yaml: minimal + "    connectTimeout: 300\n",
			want: "t.yaml:4: templates[0].connectTimeout: invalid value 300: want a duration such as \"5m\" or \"1h30m\"",
		},
		{
			name: "negative duration",
			yaml: minimal + "    retentionTimeout: -1m\n",
			want: "t.yaml:4: templates[0].retentionTimeout: must be positive, got -1m0s",
		},
		{
			name: "mode",
			yaml: minimal + "    mode: shared\n",
			want: "t.yaml:4: templates[0].mode: unsupported value \"shared\" (supported: exclusive, normal)",
		},
		{
			name: "podRetention",
			yaml: minimal + "    podRetention: sometimes\n",
			want: "t.yaml:4: templates[0].podRetention: unsupported value \"sometimes\" (supported: never, onFailure, always)",
		},
		{
			name: "activeDeadlineSeconds",
			yaml: minimal + "    activeDeadlineSeconds: 0\n",
			want: "t.yaml:4: templates[0].activeDeadlineSeconds: must be at least 1, got 0",
		},
		{
			name: "missing name",
			yaml: "templates:\n  - labels: [x]\n",
			want: "t.yaml:2: templates[0].name: required",
		},
		{
			name: "name not DNS-1123",
			yaml: "templates:\n  - name: Maven_3\n    labels: [x]\n",
			want: "t.yaml:2: templates[0].name: \"Maven_3\" is not a valid name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
		},
		{
			name: "name too long for agent names",
			yaml: "templates:\n  - name: " + strings.Repeat("a", 58) + "\n    labels: [x]\n",
			want: "t.yaml:2: templates[0].name: \"" + strings.Repeat("a", 58) + "\" is 58 characters, at most 57 allowed (agent names are <name>-<5 chars>, a DNS-1123 label of at most 63)",
		},
		{
			name: "duplicate template names",
			yaml: minimal + "  - name: maven\n    labels: [other]\n",
			want: "t.yaml:4: templates[1].name: duplicate template name \"maven\" (first defined at t.yaml:2)",
		},
		{
			name: "label with a space",
			yaml: "templates:\n  - name: a\n    labels: [ok, \"not ok\"]\n",
			want: "t.yaml:3: templates[0].labels[1]: \"not ok\" is not a plain Jenkins label: no spaces, no trailing dot, none of ?*/\\%!@#$^&|<>[]:;()\"' and no control characters",
		},
		{
			name: "label that is an expression",
			yaml: "templates:\n  - name: a\n    labels: [\"linux&&docker\"]\n",
			want: "t.yaml:3: templates[0].labels[0]: \"linux&&docker\" is not a plain Jenkins label: no spaces, no trailing dot, none of ?*/\\%!@#$^&|<>[]:;()\"' and no control characters",
		},
		{
			name: "label is a number",
			yaml: "templates:\n  - name: a\n    labels: [17]\n",
			want: "t.yaml:3: templates[0].labels[0]: expected a string, got number 17 (quote it)",
		},
		{
			name: "unknown parent",
			yaml: minimal + "    inheritFrom: [base]\n",
			want: "t.yaml:4: templates[0].inheritFrom[0]: unknown template \"base\"",
		},
		{
			name: "inherit from itself",
			yaml: minimal + "    inheritFrom: [maven]\n",
			want: "t.yaml:4: templates[0].inheritFrom[0]: a template cannot inherit from itself",
		},
		{
			name: "inheritance cycle",
			yaml: "templates:\n  - name: a\n    inheritFrom: [b]\n  - name: b\n    inheritFrom: [c]\n  - name: c\n    inheritFrom: [a]\n",
			want: "t.yaml:3: templates[0].inheritFrom[0]: inheritance cycle: a -> b -> c -> a\n" +
				"t.yaml:5: templates[1].inheritFrom[0]: inheritance cycle: a -> b -> c -> a\n" +
				"t.yaml:7: templates[2].inheritFrom[0]: inheritance cycle: a -> b -> c -> a",
		},
		{
			name: "unknown pod field",
			yaml: minimal + "    pod:\n      spec:\n        containers:\n          - name: maven\n            image: maven:3\n            imagePullPolicyy: Always\n",
			want: "t.yaml:9: templates[0].pod.spec.containers[0].imagePullPolicyy: unknown field \"imagePullPolicyy\"",
		},
		{
			name: "invalid imagePullPolicy",
			yaml: minimal + "    pod:\n      spec:\n        containers:\n          - name: maven\n            image: maven:3\n          - name: helper\n            image: busybox\n            imagePullPolicy: Sometimes\n",
			want: "t.yaml:11: templates[0].pod.spec.containers[1].imagePullPolicy: unsupported value \"Sometimes\" (supported: Always, IfNotPresent, Never)",
		},
		{
			name: "pod field of the wrong type",
			yaml: minimal + "    pod:\n      spec:\n        containers:\n          - name: maven\n            image: maven:3\n            command: sleep infinity\n",
			want: "t.yaml:9: templates[0].pod.spec.containers[0].command: expected a list, got string \"sleep infinity\"",
		},
		{
			name: "number where Kubernetes wants a string",
			yaml: minimal + "    pod:\n      spec:\n        containers:\n          - name: maven\n            image: maven:3\n            env: [{name: PORT, value: 8080}]\n",
			want: "t.yaml:9: templates[0].pod.spec.containers[0].env[0].value: expected a string, got number 8080 (quote it)",
		},
		{
			name: "bad quantity",
			yaml: minimal + "    pod:\n      spec:\n        containers:\n          - name: maven\n            image: maven:3\n            resources: {requests: {cpu: lots}}\n",
			want: "t.yaml:9: templates[0].pod.spec.containers[0].resources.requests.cpu: invalid value \"lots\": quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'",
		},
		{
			name: "container without image",
			yaml: minimal + "    pod:\n      spec:\n        containers:\n          - name: maven\n",
			want: "t.yaml:7: templates[0].pod.spec.containers[0].image: required: container \"maven\" has no image",
		},
		{
			name: "container name not DNS-1123",
			yaml: minimal + "    pod:\n      spec:\n        containers:\n          - name: Maven\n            image: maven:3\n",
			want: "t.yaml:7: templates[0].pod.spec.containers[0].name: invalid container name \"Maven\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
		},
		{
			name: "restartPolicy",
			yaml: minimal + "    pod:\n      spec:\n        restartPolicy: Always\n",
			want: "t.yaml:6: templates[0].pod.spec.restartPolicy: unsupported value \"Always\": an agent pod runs once (leave it out, or Never)",
		},
		{
			name: "pod name set",
			yaml: minimal + "    pod:\n      metadata: {name: fixed}\n",
			want: "t.yaml:5: templates[0].pod.metadata.name: set by the provisioner; leave it out",
		},
		{
			name: "secret as a literal",
			yaml: minimal + "    pod:\n      spec:\n        containers:\n          - name: jnlp\n            env: [{name: JENKINS_SECRET, value: abc}]\n",
			want: "t.yaml:8: templates[0].pod.spec.containers[0].env: JENKINS_SECRET is set by the provisioner from the agent's Secret; remove it",
		},
		{
			name: "mount of an unknown volume",
			yaml: minimal + "    pod:\n      spec:\n        containers:\n          - name: maven\n            image: maven:3\n            volumeMounts: [{name: cache, mountPath: /root/.m2}]\n",
			want: "t.yaml:9: templates[0].pod.spec.containers[0].volumeMounts: mounts volume \"cache\", which the pod does not define",
		},
		{
			name: "both workspaces",
			yaml: minimal + "    workspace: {emptyDir: {}, ephemeral: {size: 1Gi}}\n",
			want: "t.yaml:4: templates[0].workspace: set either emptyDir or ephemeral, not both",
		},
		{
			name: "ephemeral without size",
			yaml: minimal + "    workspace: {ephemeral: {storageClassName: fast}}\n",
			want: "t.yaml:4: templates[0].workspace.ephemeral.size: required: a positive size such as 10Gi",
		},
		{
			name: "relative workDir",
			yaml: minimal + "    agent: {workDir: agent}\n",
			want: "t.yaml:4: templates[0].agent.workDir: must be an absolute path, got \"agent\"",
		},
		{
			name: "problem in an inherited container",
			yaml: "templates:\n  - name: base\n    pod:\n      spec:\n        containers: [{name: tools}]\n  - name: maven\n    labels: [maven]\n    inheritFrom: [base]\n",
			want: "t.yaml:8: templates[1].inheritFrom: required: container \"tools\" has no image (inherited)",
		},
		{
			name: "alias inside its own anchor",
			yaml: "templates:\n  - &a\n    name: a\n    <<: *a\n",
			want: "t.yaml:4: templates[0]: alias *a refers to a node that contains it",
		},
		{
			name: "alias bomb",
			yaml: aliasBomb(8),
			want: "t.yaml:5: templates[6].pod.metadata.labels: document too large: more than 500000 nodes after expanding aliases",
		},
		{
			name: "several problems reported together, in line order",
			yaml: "templates:\n  - name: a\n    labels: [a]\n    maxAgents: -1\n  - name: b\n    mode: sometimes\n",
			want: "t.yaml:4: templates[0].maxAgents: must be at least 1, got -1\n" +
				"t.yaml:6: templates[1].mode: unsupported value \"sometimes\" (supported: exclusive, normal)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte(tt.yaml))
			if err == nil {
				t.Fatalf("Parse: no error, want %q", tt.want)
			}
			if diff := cmp.Diff(tt.want, err.Error()); diff != "" {
				t.Errorf("error mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	set, err := Parse("t.yaml", []byte(minimal))
	if err != nil {
		t.Fatal(err)
	}
	got := set.Templates[0]
	want := &Template{
		Name:             "maven",
		Labels:           []string{"maven"},
		Mode:             ModeExclusive,
		MaxAgents:        10,
		ConnectTimeout:   5 * time.Minute,
		PodRetention:     RetentionNever,
		RetentionTimeout: time.Hour,
		Workspace:        Workspace{EmptyDir: got.Workspace.EmptyDir},
		Agent:            AgentSpec{Image: DefaultAgentImage, WorkDir: "/home/jenkins/agent"},
		Source:           "t.yaml:2",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("defaults mismatch (-want +got):\n%s", diff)
	}
	if got.Workspace.EmptyDir == nil {
		t.Errorf("default workspace is not an emptyDir")
	}
}

func TestParseAcceptsYAMLFeatures(t *testing.T) {
	// Anchors, aliases and merge keys are ordinary YAML an administrator may use to share pieces.
	doc := `templates:
  - name: maven
    labels: [maven]
    pod:
      spec:
        containers:
          - &tool
            name: maven
            image: maven:3
            resources: {requests: {cpu: "1", memory: 1Gi}}
          - <<: *tool
            name: gradle
            image: gradle:8
`
	set, err := Parse("t.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	cs := set.Templates[0].Pod.Spec.Containers
	var got []string
	for _, c := range cs {
		got = append(got, c.Name+"="+c.Image+"/"+c.Resources.Requests.Memory().String())
	}
	if diff := cmp.Diff([]string{"maven=maven:3/1Gi", "gradle=gradle:8/1Gi"}, got); diff != "" {
		t.Errorf("containers mismatch (-want +got):\n%s", diff)
	}
}

// aliasBomb writes templates whose pod labels each merge ten copies of the previous template's:
// a valid document whose merge keys stand for 10^levels mappings.
func aliasBomb(levels int) string {
	var b strings.Builder
	b.WriteString("templates:\n  - name: t0\n    pod: {metadata: {labels: &l0 {a: b}}}\n")
	for i := 1; i <= levels; i++ {
		fmt.Fprintf(&b, "  - name: t%d\n    pod: {metadata: {labels: &l%d {<<: [", i, i)
		for j := 0; j < 10; j++ {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "*l%d", i-1)
		}
		b.WriteString("]}}}\n")
	}
	return b.String()
}
