package lifecycle

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the controller's Prometheus series. Names are part of the operator's contract (the
// Grafana dashboard in deploy/grafana reads them).
type Metrics struct {
	buildsWaiting     *prometheus.GaugeVec
	agents            *prometheus.GaugeVec
	provisioned       *prometheus.CounterVec
	completed         *prometheus.CounterVec
	failed            *prometheus.CounterVec
	lost              *prometheus.CounterVec
	buildsLost        *prometheus.CounterVec
	queueToPod        *prometheus.HistogramVec
	queueToOnline     *prometheus.HistogramVec
	finishedToDeleted *prometheus.HistogramVec
	kubeErrors        *prometheus.CounterVec
	pollDuration      prometheus.Histogram
	warm              *warmMetrics
	foreign           *prometheus.GaugeVec

	mu      sync.Mutex
	waiting map[WaitKey]bool // the waiting series published last
}

// latencyBuckets span 50 ms to about 7 minutes: agents come in well under a second of provisioning
// but minutes of image pulls.
var latencyBuckets = prometheus.ExponentialBuckets(0.05, 2, 14)

// NewMetrics registers the controller's series with reg (nil: a private registry, for tests).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m := &Metrics{
		buildsWaiting: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "provisioner_builds_waiting", Help: "Builds waiting in the Jenkins queue, by label expression and why no agent is being made for them (reason).",
		}, []string{"label", "reason"}),
		agents: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "provisioner_agents", Help: "Agents of ours by template and state.",
		}, []string{"template", "state"}),
		provisioned: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provisioner_agents_provisioned_total", Help: "Agents whose node and pod were created.",
		}, []string{"template"}),
		completed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provisioner_agents_completed_total", Help: "Agents deleted after running their build.",
		}, []string{"template"}),
		lost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provisioner_agents_lost_total", Help: "Agents whose pod was killed in the middle of their build (OOMKilled, Evicted, DeletedExternally), or that did not reconnect within the reconnect grace (ReconnectTimeout), by reason.",
		}, []string{"template", "reason"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provisioner_agents_failed_total", Help: "Agents that failed before running a build, and creations the apiserver refused, by reason.",
		}, []string{"template", "reason"}),
		buildsLost: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provisioner_builds_lost_total", Help: "Builds whose agent was taken from under them, by reason (KueueEvicted: Kueue preempted or evicted the pod).",
		}, []string{"template", "reason"}),
		queueToPod: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "provisioner_queue_to_pod_created_seconds", Help: "From a build entering the queue to its agent pod being created.",
			Buckets: latencyBuckets,
		}, []string{"template"}),
		queueToOnline: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "provisioner_queue_to_agent_online_seconds", Help: "From a build entering the queue to its agent being seen online.",
			Buckets: latencyBuckets,
		}, []string{"template"}),
		finishedToDeleted: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "provisioner_build_finished_to_pod_deleted_seconds", Help: "From a build seen finished to its pod's deletion being accepted.",
			Buckets: latencyBuckets,
		}, []string{"template"}),
		kubeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "provisioner_kube_api_errors_total", Help: "Kubernetes API calls that failed, by verb, resource and HTTP code.",
		}, []string{"verb", "resource", "code"}),
		pollDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "provisioner_poll_duration_seconds", Help: "One poll: reading Jenkins and deciding.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12),
		}),
		foreign: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "provisioner_foreign_objects", Help: "Pods with the provisioner's labels and Jenkins nodes with its marker that this installation did not make (left alone), by kind.",
		}, []string{"kind"}),
		waiting: map[WaitKey]bool{},
	}
	reg.MustRegister(m.buildsWaiting, m.agents, m.provisioned, m.completed, m.failed, m.lost, m.buildsLost, m.queueToPod, m.queueToOnline,
		m.finishedToDeleted, m.kubeErrors, m.pollDuration, m.foreign)
	m.warm = newWarmMetrics(reg)
	return m
}

// setWaiting publishes one poll's waiting builds and deletes the series of labels (and reasons) no
// longer waiting, so a label that went away leaves no series behind.
func (m *Metrics) setWaiting(counts map[WaitKey]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for k := range m.waiting {
		if _, ok := counts[k]; !ok {
			m.buildsWaiting.DeleteLabelValues(k.Label, string(k.Reason))
			delete(m.waiting, k)
		}
	}
	for k, n := range counts {
		m.buildsWaiting.WithLabelValues(k.Label, string(k.Reason)).Set(float64(n))
		m.waiting[k] = true
	}
}

// setAgents publishes the count of agents per template and state.
func (m *Metrics) setAgents(counts map[AgentKey]int) {
	m.agents.Reset()
	for k, n := range counts {
		m.agents.WithLabelValues(k.Template, string(k.State)).Set(float64(n))
	}
}

// setForeign publishes the count of foreign objects (both kinds always, so a zero is visible).
func (m *Metrics) setForeign(counts map[string]int) {
	for _, kind := range []string{"pod", "node"} {
		m.foreign.WithLabelValues(kind).Set(float64(counts[kind]))
	}
}
