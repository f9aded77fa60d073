package lifecycle

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins"
)

// nodeMarker starts the description of every Jenkins node we create.
const nodeMarker = "[jenkins-agent-provisioner]"

var descriptionRE = regexp.MustCompile(`^\[jenkins-agent-provisioner\] template=([a-z0-9-]+) created=(\S+)`)

// nodeDescription is what a restarted provisioner recognises its agents by: the marker, the template
// and the creation time (a node's age decides when a node without a pod is an orphan).
func nodeDescription(template, namespace string, created time.Time) string {
	return fmt.Sprintf("%s template=%s created=%s namespace=%s: single-use Kubernetes agent, deleted when its build ends",
		nodeMarker, template, created.UTC().Format(time.RFC3339), namespace)
}

// parseNodeDescription recognises our agent nodes (not the placeholder) and reads their template and
// creation time.
func parseNodeDescription(desc string) (template string, created time.Time, ok bool) {
	m := descriptionRE.FindStringSubmatch(desc)
	if m == nil {
		return "", time.Time{}, false
	}
	created, err := time.Parse(time.RFC3339, m[2])
	if err != nil {
		return "", time.Time{}, false
	}
	return m[1], created, true
}

// Offline reasons we write on Jenkins nodes. They all start with reasonPrefix, which is how a
// restarted provisioner recognises its own marks.
const (
	reasonPrefix   = "jenkins-agent-provisioner: "
	reasonBusy     = reasonPrefix + "single-use agent, build running"
	reasonReleased = reasonPrefix + "released, no build is waiting for it"
	reasonFailed   = reasonPrefix + "failed: "
)

// carriesOurMark is the one predicate for "this Jenkins node carries one of our temporarily-offline
// marks" (busy, released or failed).
func carriesOurMark(c *jenkins.Computer) bool {
	return c != nil && c.TemporarilyOffline && strings.HasPrefix(c.OfflineReason, reasonPrefix)
}

// busyMark is the offline message of an agent running build (its URL, when known).
func busyMark(build string) string {
	if build == "" {
		return reasonBusy
	}
	return reasonBusy + " (" + build + ")"
}
