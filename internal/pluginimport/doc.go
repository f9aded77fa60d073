// Package pluginimport converts the Jenkins Kubernetes plugin's configuration into the
// provisioner's templates YAML (docs/templates.md, package podtemplate).
//
// It reads the three shapes the plugin's configuration comes in: a Configuration-as-Code (JCasC)
// document with jenkins.clouds[].kubernetes (also inside a ConfigMap's data, inside a string of
// YAML, or one of several documents in a file), the jenkinsci Helm chart's values (agent:,
// additionalAgents:, additionalClouds:, agent.podTemplates), and a plain list of pod templates.
// Field by field it follows the plugin's own semantics (PodTemplateBuilder, ContainerTemplate,
// the volume classes, PodTemplateUtils), and every field it does not carry over is reported with
// its file:line and the reason, so nothing is lost silently.
package pluginimport
