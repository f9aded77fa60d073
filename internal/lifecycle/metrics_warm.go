package lifecycle

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// warmMetrics are the ready-agent series: the desired count per template by source, and the
// adaptive estimate it may come from.
type warmMetrics struct {
	desired  *prometheus.GaugeVec
	estimate *prometheus.GaugeVec
	rate     *prometheus.GaugeVec
	startup  *prometheus.GaugeVec

	mu        sync.Mutex
	published map[string]string // template → source published last
}

func newWarmMetrics(reg prometheus.Registerer) *warmMetrics {
	m := &warmMetrics{
		desired: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "provisioner_ready_agents_desired", Help: "Ready agents a warm template wants, by the source that set the number (idle, schedule, adaptive; none when 0).",
		}, []string{"template", "source"}),
		estimate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "provisioner_ready_agents_adaptive_estimate", Help: "The adaptive estimate of ready agents (arrival rate × start-up time plus a margin), before maxIdle.",
		}, []string{"template"}),
		rate: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "provisioner_build_arrival_rate", Help: "Builds arriving per second for a warm template, over the estimate's window.",
		}, []string{"template"}),
		startup: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "provisioner_agent_startup_seconds", Help: "Median measured start-up (pod created to agent online) of a warm template's recent agents.",
		}, []string{"template"}),
		published: map[string]string{},
	}
	reg.MustRegister(m.desired, m.estimate, m.rate, m.startup)
	return m
}

// set publishes one poll's warm templates and removes the series of templates no longer warm.
func (m *warmMetrics) set(list []WarmStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	for _, s := range list {
		seen[s.Template] = true
		src := string(s.Source)
		if src == "" {
			src = "none"
		}
		if old, ok := m.published[s.Template]; ok && old != src {
			m.desired.DeleteLabelValues(s.Template, old)
		}
		m.published[s.Template] = src
		m.desired.WithLabelValues(s.Template, src).Set(float64(s.Desired))
		m.estimate.WithLabelValues(s.Template).Set(float64(s.Estimate.Count))
		m.rate.WithLabelValues(s.Template).Set(s.Estimate.Rate)
		m.startup.WithLabelValues(s.Template).Set(s.Estimate.Startup.Seconds())
	}
	for t, src := range m.published {
		if !seen[t] {
			m.desired.DeleteLabelValues(t, src)
			m.estimate.DeleteLabelValues(t)
			m.rate.DeleteLabelValues(t)
			m.startup.DeleteLabelValues(t)
			delete(m.published, t)
		}
	}
}
