{{/* The chart's name. */}}
{{- define "jap.name" -}}
{{- default "jenkins-agent-provisioner" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Object names: the release name when it already holds the chart's name, as in deploy/manifests. */}}
{{- define "jap.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "jap.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "jap.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/*
Selector labels. Never app.kubernetes.io/managed-by: jenkins-agent-provisioner: the provisioner's
reaper takes objects with that label for agent pods and Secrets of its own.
*/}}
{{- define "jap.selectorLabels" -}}
app.kubernetes.io/name: {{ include "jap.name" . }}
app.kubernetes.io/component: controller
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "jap.labels" -}}
{{ include "jap.selectorLabels" . }}
{{ include "jap.releaseLabels" . }}
{{- end -}}

{{/* The labels of objects that are not the controller's (the agents' NetworkPolicy). */}}
{{- define "jap.commonLabels" -}}
app.kubernetes.io/name: {{ include "jap.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "jap.releaseLabels" . }}
{{- end -}}

{{- define "jap.releaseLabels" -}}
app.kubernetes.io/part-of: jenkins-agent-provisioner
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
The agents' NetworkPolicy: jenkins-agents for the release jenkins-agent-provisioner, as in
deploy/manifests; <fullname>-agents when the full name does not hold the chart's name.
*/}}
{{- define "jap.agentsPolicyName" -}}
{{- $full := include "jap.fullname" . -}}
{{- if contains "jenkins-agent-provisioner" $full -}}
{{- replace "jenkins-agent-provisioner" "jenkins-agents" $full -}}
{{- else -}}
{{- printf "%s-agents" $full | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "jap.tokenSecret" -}}
{{- .Values.jenkinsToken.existingSecret | default (printf "%s-jenkins-token" (include "jap.fullname" .)) -}}
{{- end -}}

{{- define "jap.templatesConfigMap" -}}
{{- .Values.templates.existingConfigMap | default (printf "%s-templates" (include "jap.fullname" .)) -}}
{{- end -}}

{{/* The settings: value name -> PROVISIONER_* variable. */}}
{{- define "jap.settingsEnv" -}}
jenkinsUrl: PROVISIONER_JENKINS_URL
jenkinsUser: PROVISIONER_JENKINS_USER
jenkinsCaFile: PROVISIONER_JENKINS_CA_FILE
agentJenkinsUrl: PROVISIONER_AGENT_JENKINS_URL
agentTunnel: PROVISIONER_AGENT_TUNNEL
kubeconfig: PROVISIONER_KUBECONFIG
pollInterval: PROVISIONER_POLL_INTERVAL
busyPollInterval: PROVISIONER_BUSY_POLL_INTERVAL
maxAgents: PROVISIONER_MAX_AGENTS
kubeQps: PROVISIONER_KUBE_QPS
kubeBurst: PROVISIONER_KUBE_BURST
leaderElectionId: PROVISIONER_LEADER_ELECTION_ID
leaseDuration: PROVISIONER_LEASE_DURATION
releaseGrace: PROVISIONER_RELEASE_GRACE
orphanGrace: PROVISIONER_ORPHAN_GRACE
reconnectGrace: PROVISIONER_RECONNECT_GRACE
kueueQueue: PROVISIONER_KUEUE_QUEUE
unschedulableGrace: PROVISIONER_UNSCHEDULABLE_GRACE
backoffBase: PROVISIONER_BACKOFF_BASE
backoffMax: PROVISIONER_BACKOFF_MAX
logLevel: PROVISIONER_LOG_LEVEL
logFormat: PROVISIONER_LOG_FORMAT
statusListen: PROVISIONER_STATUS_LISTEN
maxUnauthorized: PROVISIONER_MAX_UNAUTHORIZED
installationId: PROVISIONER_INSTALLATION_ID
{{- end -}}
