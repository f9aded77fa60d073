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

var descriptionRE = regexp.MustCompile(`^\[jenkins-agent-provisioner\] template=([a-z0-9-]+) created=(\S+)(?: namespace=([a-z0-9-]+))?(?: installation=([a-z0-9-]+) proof=([0-9a-f]+))?:`)

// nodeDescription is what a restarted provisioner recognises its agents by: the marker, the template,
// the creation time (a node's age decides when a node without a pod is an orphan), and this
// installation's identity with the proof that we made the node of this name.
func nodeDescription(id Identity, name, template string, created time.Time) string {
	return fmt.Sprintf("%s template=%s created=%s namespace=%s installation=%s proof=%s: single-use Kubernetes agent, deleted when its build ends",
		nodeMarker, template, created.UTC().Format(time.RFC3339), id.Namespace, id.ID, id.proof("node", name))
}

// nodeDesc is what a node description with our marker says.
type nodeDesc struct {
	Template                       string
	Created                        time.Time
	Namespace, Installation, Proof string
}

// parseNodeDescription reads a description carrying our marker (not the placeholder's): ok is
// false for any other description. Whether the node is ours is nodeOwnership's question.
func parseNodeDescription(desc string) (nodeDesc, bool) {
	m := descriptionRE.FindStringSubmatch(desc)
	if m == nil {
		return nodeDesc{}, false
	}
	created, err := time.Parse(time.RFC3339, m[2])
	if err != nil {
		return nodeDesc{}, false
	}
	return nodeDesc{Template: m[1], Created: created, Namespace: m[3], Installation: m[4], Proof: m[5]}, true
}

// nodeOwner says whose a Jenkins node is.
type nodeOwner int

const (
	nodeNotMarked nodeOwner = iota // no marker: static agents, the built-in node, the placeholder
	nodeOurs                       // this installation's identity and a valid proof for its name
	nodeLegacy                     // the format before installation ids, naming our namespace: ours only with a pod of ours
	nodeForeign                    // our marker, but another installation's or a forged one: never touched
)

// nodeOwnership classifies a computer by its description.
func nodeOwnership(id Identity, c *jenkins.Computer) (nodeOwner, nodeDesc) {
	d, ok := parseNodeDescription(c.Description)
	switch {
	case !ok && strings.HasPrefix(c.Description, nodeMarker) && c.Description != placeholderDescription:
		return nodeForeign, d
	case !ok:
		return nodeNotMarked, d
	case d.Installation == "" && d.Proof == "" && d.Namespace == id.Namespace:
		return nodeLegacy, d
	case d.Namespace == id.Namespace && d.Installation == id.ID && id.verify("node", c.Name, d.Proof):
		return nodeOurs, d
	}
	return nodeForeign, d
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
