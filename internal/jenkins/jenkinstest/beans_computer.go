package jenkinstest

import (
	"encoding/xml"
	"fmt"
	"strings"
	"time"
)

// The computers' beans: Executor, Computer (with its monitor data), ComputerSet and the JNLP file.
// Callers hold s.mu.

// executorBean is hudson.model.Executor.
func (s *Server) executorBean(e *executor, l lang) *bean {
	var cur any
	progress := -1
	if r := e.current; r != nil {
		// A pipeline shows its WorkflowRun on the built-in node's one-off executor (number -1) and a
		// PlaceholderExecutable on the agent executor running its node block.
		if r.job.kind == kindPipeline && e.number >= 0 {
			cur = func() any { return s.placeholderExecutableBean(r) }
		} else {
			cur = func() any { return s.runBean(r, l) }
		}
		if est := r.job.estimatedDuration(); est > 0 {
			progress = min(99, int(time.Since(e.since)*100/est))
		}
	}
	return &bean{props: []prop{
		p("currentExecutable", cur),
		p("idle", e.idle()),
		p("likelyStuck", false),
		p("number", e.number),
		p("progress", progress),
	}}
}

// computerBean is SlaveComputer or Hudson$MasterComputer, as pr sees it.
func (s *Server) computerBean(n *node, l lang, pr principal) *bean {
	class := "hudson.slaves.SlaveComputer"
	desc := n.description
	if n.builtIn {
		class, desc = "hudson.model.Hudson$MasterComputer", msg(l, "Hudson.NodeDescription")
	}
	execs := []any{}
	for _, e := range n.executors {
		execs = append(execs, s.executorBean(e, l))
	}
	oneOff := []any{}
	for _, e := range n.oneOff {
		oneOff = append(oneOff, s.executorBean(e, l))
	}
	icon := "symbol-computer"
	switch {
	case n.tempOffline:
		icon = "symbol-computer-paused"
	case n.offline():
		icon = "symbol-computer-offline"
	}
	var cause any
	reason := ""
	if c := n.cause; c != nil {
		cause = &bean{class: c.class, props: []prop{p("description", c.reason), p("timestamp", ms(c.timestamp))}}
		reason = c.reason
	}
	props := []prop{
		p("actions", []any{}),
		p("assignedLabels", s.labelRefs(n)),
		p("description", desc),
		p("displayName", n.displayName(l)),
		p("executors", execs),
		p("icon", icon),
		p("iconClassName", icon),
		p("idle", !n.busy()),
		p("jnlpAgent", !n.builtIn),
		p("launchSupported", n.builtIn),
		p("loadStatistics", &bean{class: "hudson.model.Label$1"}),
		p("manualLaunchAllowed", true),
		pi("monitorData", func() any { return s.monitorData(n) }), // built only when shown
		p("numExecutors", n.numExecutors),
		p("offline", n.offline()),
		p("offlineCause", cause),
		p("offlineCauseReason", reason),
		p("oneOffExecutors", oneOff),
		p("temporarilyOffline", n.tempOffline),
	}
	if !n.builtIn {
		// SlaveComputer#getAbsoluteRemotePath (@Exported, 2.125+): getAbsoluteRemoteFs, which is
		// null while there is no channel, and null for a user without Computer/CONNECT
		// (hasPermission(CONNECT)). The agent reports its remote FS root made absolute
		// (AbsolutePath callable in setChannel); our agents' remoteFS is already absolute.
		var abs any
		if n.conn != nil && pr.user.has(AgentConnect) {
			abs = n.remoteFS
		}
		props = append(props, p("absoluteRemotePath", abs))
	}
	return &bean{class: class, props: props}
}

// monitorData is what the node monitors last reported: real-looking figures for a connected
// computer, nulls (and the response-time monitor's timeout) for one without a channel.
func (s *Server) monitorData(n *node) *entries {
	e := &entries{}
	// Jenkins keeps the monitors' last results for a computer that lost its channel; one that
	// never had a channel has none.
	if !n.builtIn && !n.everLaunched {
		e.add("hudson.node_monitors.SwapSpaceMonitor", nil)
		e.add("hudson.node_monitors.TemporarySpaceMonitor", nil)
		e.add("hudson.node_monitors.DiskSpaceMonitor", nil)
		e.add("hudson.node_monitors.ArchitectureMonitor", nil)
		e.add("hudson.node_monitors.ResponseTimeMonitor", &bean{class: "hudson.node_monitors.ResponseTimeMonitor$Data", props: []prop{
			p("timestamp", ms(n.created)), p("average", 5000)}})
		e.add("hudson.node_monitors.ClockMonitor", nil)
		return e
	}
	ts := ms(n.connectedAt)
	if n.builtIn {
		ts = ms(n.created)
	}
	disk := func(path string) *bean {
		return &bean{class: "hudson.node_monitors.DiskSpaceMonitorDescriptor$DiskSpace", props: []prop{
			p("timestamp", ts), p("path", path), p("size", int64(53687091200))}}
	}
	e.add("hudson.node_monitors.SwapSpaceMonitor", &bean{class: "hudson.node_monitors.SwapSpaceMonitor$MemoryUsage2", props: []prop{
		p("availablePhysicalMemory", int64(6442450944)), p("availableSwapSpace", int64(0)),
		p("totalPhysicalMemory", int64(8589934592)), p("totalSwapSpace", int64(0))}})
	e.add("hudson.node_monitors.TemporarySpaceMonitor", disk("/tmp"))
	e.add("hudson.node_monitors.DiskSpaceMonitor", disk(n.remoteFS))
	e.add("hudson.node_monitors.ArchitectureMonitor", "Linux (amd64)")
	e.add("hudson.node_monitors.ResponseTimeMonitor", &bean{class: "hudson.node_monitors.ResponseTimeMonitor$Data", props: []prop{
		p("timestamp", ts), p("average", 12)}})
	e.add("hudson.node_monitors.ClockMonitor", &bean{class: "hudson.util.ClockDifference", props: []prop{p("diff", 0)}})
	return e
}

// computerSetBean is hudson.model.ComputerSet at /computer/api/json.
func (s *Server) computerSetBean(l lang, pr principal) *bean {
	comps := []any{}
	busy, total := 0, 0
	for _, n := range s.computers() {
		comps = append(comps, s.computerBean(n, l, pr))
		if !n.offline() {
			total += len(n.executors)
			busy += len(n.executors) - n.idleCount()
		}
	}
	display := "Nodes"
	if l == langDE {
		display = "Knoten"
	}
	return &bean{class: "hudson.model.ComputerSet", props: []prop{
		p("busyExecutors", busy),
		pi("computer", comps),
		p("displayName", display),
		p("totalExecutors", total),
	}}
}

// jnlp is the jenkins-agent.jnlp file of Jenkins 2.344 and later: only the agent's arguments,
// one token per <argument>, the secret first.
func (s *Server) jnlp(n *node) string {
	args := []string{agentSecret(s.key, n.name), n.name}
	if n.webSocket {
		args = append(args, "-webSocket")
	}
	if n.tunnel != "" {
		args = append(args, "-tunnel", n.tunnel)
	}
	if n.remoteFS != "" {
		args = append(args, "-workDir", n.remoteFS, "-internalDir", "remoting")
	}
	args = append(args, "-url", s.url)
	out := "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<jnlp>\n  <application-desc>\n"
	for _, a := range args {
		out += fmt.Sprintf("    <argument>%s</argument>\n", xmlEscape(a))
	}
	return out + "  </application-desc>\n</jnlp>\n"
}

func xmlEscape(v string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(v)) // writing to a strings.Builder cannot fail
	return b.String()
}
