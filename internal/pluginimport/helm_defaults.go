package pluginimport

import (
	yaml "go.yaml.in/yaml/v3"
)

// helmDefaultsName names the chart's defaults in the report (findings about them are not shown:
// the user did not write them).
const helmDefaultsName = "(jenkinsci/jenkins chart defaults)"

// defaultsLineBase is added to the defaults' lines.
const defaultsLineBase = 1 << 30

// helmAgentDefaults are the agent: values of the jenkinsci/jenkins chart's values.yaml (chart
// 5.8.x, helm-charts commit 22055414e808) that shape a pod template. A values file overrides the
// chart's defaults, so an import of the values alone must fill them in as Helm does.
const helmAgentDefaults = `
image:
  registry: ""
  repository: "jenkins/inbound-agent"
  tag: "3385.vf1123fb_515da_-1"
workingDir: "/home/jenkins/agent"
nodeUsageMode: "NORMAL"
componentName: "jenkins-agent"
websocket: false
directConnection: false
privileged: false
hostNetworking: false
resources:
  requests:
    cpu: "512m"
    memory: "512Mi"
  limits:
    cpu: "512m"
    memory: "512Mi"
alwaysPullImage: false
podRetention: "Never"
showRawYaml: true
args: "${computer.jnlpmac} ${computer.name}"
sideContainerName: "jnlp"
TTYEnabled: false
containerCap: 10
instanceCap: 2147483647
podName: "default"
idleMinutes: 0
yamlMergeStrategy: "override"
inheritYamlMergeStrategy: false
connectTimeout: 100
enabled: true
`

func (im *importer) helmDefaults() *obj {
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(helmAgentDefaults), &n); err != nil {
		panic(err) // a constant
	}
	// The defaults' nodes end up in templates built for the user's file; their lines are moved
	// out of any file's range so that findings about them can be told apart and left out.
	shiftLines(&n, defaultsLineBase)
	o := im.obj(helmDefaultsName, n.Content[0], "chart defaults")
	o.done = true // nothing to report about keys the user did not write
	return o
}
