package lifecycle

import "time"

// WaitKind says, in a word, why no agent is being made for a waiting build right now.
type WaitKind string

// Kinds of wait.
const (
	// WaitStarting: agents are starting (or being created this poll) for every waiting build.
	WaitStarting WaitKind = "AgentStarting"
	// WaitQueued: agents exist for the builds, and Kueue has not admitted some of them yet (their
	// ClusterQueue has no quota for them); Detail names the queue.
	WaitQueued WaitKind = "WaitingForQuota"
	// WaitTemplateCap: the template's maxAgents is reached.
	WaitTemplateCap WaitKind = "TemplateCap"
	// WaitGlobalCap: the provisioner's maxAgents is reached.
	WaitGlobalCap WaitKind = "GlobalCap"
	// WaitBackoff: the template backs off until Until after the failure in Detail.
	WaitBackoff WaitKind = "Backoff"
	// WaitRefused: the template backs off because the API server refused its last pod (Detail says why).
	WaitRefused WaitKind = "Refused"
	// WaitProbing: after a failure one agent at a time finds out whether the cause is gone.
	WaitProbing WaitKind = "Probing"
	// WaitNoTemplate: no template serves the label.
	WaitNoTemplate WaitKind = "NoTemplate"
	// WaitLabelUnknown: the freestyle job's label expression could not be read.
	WaitLabelUnknown WaitKind = "LabelUnknown"
	// WaitResuming: the item is bound to an agent of ours by name (a node block resumed after a
	// restart); that agent, not a new one, serves it.
	WaitResuming WaitKind = "Resuming"
	// WaitUnreadable: the build's label is too long or too deeply nested to read (Detail says which).
	WaitUnreadable WaitKind = "LabelUnreadable"
)

// WaitReason is why builds of one label wait: Kind for metrics, Detail and Until for people.
type WaitReason struct {
	Kind   WaitKind
	Detail string
	Until  time.Time
}

// backoffWait is the wait reason of a template backing off.
func backoffWait(b Backoff) WaitReason {
	kind := WaitBackoff
	if b.Last.Refusal() {
		kind = WaitRefused
	}
	return WaitReason{Kind: kind, Detail: b.Last.Detail, Until: b.Until}
}

// maxLabelValue bounds a metric label value: label expressions are user input.
const maxLabelValue = 100

func truncateLabel(s string) string {
	n := 0
	for i := range s {
		if n == maxLabelValue-1 {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
