package jenkins

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jenkins-agent-provisioner/provisioner/internal/labelexpr"
)

// Why is what a queue item's English `why` text says about the agent it waits for.
//
// Jenkins exports no label for a queue item (getAssignedLabel is not @Exported, for jobs or pipeline
// placeholders), so this text is the only place the label of a pipeline `node('x')` step shows. The
// forms come from Jenkins core (hudson.model.Messages, CauseOfBlockage, Node.canTake,
// jenkins.model.queue.CompositeCauseOfBlockage); names are quoted with ‘ ’ since 2.125 and bare before.
type Why struct {
	// Label is the normalised label expression the item waits for ("" when none is named).
	Label string
	// Node is set instead of Label when the text names the one node that can run the item: Jenkins
	// names the node, not the label, when exactly one node carries the label.
	Node string
	// NotDemand: the item waits for something no new agent can give (quiet period, a build already
	// running, an upstream build, Jenkins shutting down).
	NotDemand bool
	// Ambiguous: the text names neither a label nor a node: the bare "Waiting for next available
	// executor" (Jenkins has no agent node at all, or the item has no label), or a composite of
	// per-node refusals none of which names the label.
	Ambiguous bool

	// MaybeNode: Label is a single plain name from "Waiting for next available executor on X", which
	// Jenkins prints alike for a label (0 or 2+ nodes) and for the one node carrying it. ResolveNodes
	// tells them apart with the computer list.
	MaybeNode bool
	// Unlabelled: a node refused the item because the node is EXCLUSIVE and the item has no label
	// ("‘n’ is reserved for jobs with matching label expression" is only ever said for label == null),
	// so the item wants any NORMAL-mode agent. Ambiguous stays true: no label is named.
	Unlabelled bool

	// Err: the text names a label too long or too deeply nested to read (it wraps
	// labelexpr.ErrTooLong or labelexpr.ErrTooDeep). Label, Node and Ambiguous are empty: the item
	// is shown as unreadable and served by no template, while the rest of the queue goes on.
	Err error
}

const (
	lquote = "\u2018" // ‘
	rquote = "\u2019" // ’
)

// Texts whose item waits for something an agent cannot give. Prefixes of the English messages.
var notDemandPrefixes = []string{
	"In the quiet period.",           // Queue.InQuietPeriod: a WaitingItem, not yet buildable
	"Finished waiting",               // Queue.FinishedWaiting: leaving the quiet period
	"Jenkins is about to shut down",  // Queue.HudsonIsAboutToShutDown
	"A build is already in progress", // Queue.InProgress
	"Upstream project ",              // AbstractProject.UpstreamBuildInProgress
	"Downstream project ",            // AbstractProject.DownstreamBuildInProgress
	"Blocked by ",                    // Queue.BlockedBy
	"Waiting for the completion of ", // "Block build when upstream/downstream is building" plugins
	"Restoring the build queue",      // Queue.init: Jenkins starting
}

// Forms that name a label (or the single node carrying it) and are never part of a composite: they
// come straight from BuildableItem.getCauseOfBlockage.
const (
	busyOnPrefix      = "Waiting for next available executor on "
	busyBare          = "Waiting for next available executor"
	noNodesPrefix     = "There are no nodes with the label "
	allOfflinePrefix  = "All nodes of label "
	allOfflineSuffix  = " are offline"
	offlineSuffix     = " is offline"
	notAcceptSuffix   = " is not accepting tasks"
	reservedSuffix    = " is reserved for jobs with matching label expression"
	lacksPermission   = " lacks permission to run on "
	oldLacksPerm      = " have a permission to run on " // before 2.125: "{0} doesn’t have a permission to run on {1}"
	compositeSep      = "; "
	compositeMoreHead = "... and "
)

// labelMissing separators: "‘n’ doesn’t have label ‘x’" (curly apostrophe in every version seen, the
// ASCII one accepted too).
var labelMissingSeps = []string{" doesn\u2019t have label ", " doesn't have label "}

// ParseWhy reads an English `why` into the demand it describes. Text it does not recognise is
// Ambiguous demand, so an unknown message costs a label lookup, never a lost build; only a label
// past labelexpr's bounds gives Why.Err.
func ParseWhy(why string) Why {
	s := strings.TrimSpace(why)
	if s == "" {
		return Why{Ambiguous: true}
	}
	for _, p := range notDemandPrefixes {
		if strings.HasPrefix(s, p) {
			return Why{NotDemand: true}
		}
	}
	// AbstractProject.BuildInProgress: "Build #66 is already in progress (ETA:2 hr 25 min)".
	if strings.HasPrefix(s, "Build #") && strings.Contains(s, " is already in progress") {
		return Why{NotDemand: true}
	}

	switch {
	case s == busyBare:
		return Why{Ambiguous: true}
	case strings.HasPrefix(s, busyOnPrefix):
		label, atom, err := normalizeLabel(unquote(s[len(busyOnPrefix):]))
		if err != nil {
			return Why{Err: err}
		}
		if label == "" {
			return Why{Ambiguous: true}
		}
		return Why{Label: label, MaybeNode: atom}
	case strings.HasPrefix(s, noNodesPrefix):
		return labelWhy(unquote(s[len(noNodesPrefix):]))
	case strings.HasPrefix(s, allOfflinePrefix) && strings.HasSuffix(s, allOfflineSuffix) &&
		len(s) >= len(allOfflinePrefix)+len(allOfflineSuffix):
		return labelWhy(unquote(s[len(allOfflinePrefix) : len(s)-len(allOfflineSuffix)]))
	}

	// Everything else is one or more per-node reasons: CompositeCauseOfBlockage joins the distinct
	// ones, sorted, with "; " and cuts the list to "; ... and N more" after five.
	parts := strings.Split(s, compositeSep)
	if len(parts) == 1 {
		p := parsePart(parts[0])
		switch p.kind {
		case partLabelMissing:
			return labelWhy(p.label)
		case partNode:
			if p.node == "" {
				return Why{Ambiguous: true}
			}
			return Why{Node: p.node}
		case partReserved:
			return Why{Ambiguous: true, Unlabelled: true}
		default:
			return Why{Ambiguous: true}
		}
	}
	w := Why{Ambiguous: true}
	for _, part := range parts {
		if strings.HasPrefix(part, compositeMoreHead) {
			continue
		}
		p := parsePart(part)
		switch p.kind {
		case partLabelMissing:
			// A node without the label says which label the item wants: the answer, whatever the
			// other nodes said.
			if lw := labelWhy(p.label); lw.Label != "" || lw.Err != nil {
				return lw
			}
		case partReserved:
			w.Unlabelled = true
		}
	}
	return w
}

type partKind int

const (
	partUnknown      partKind = iota
	partNode                  // "‘n’ is offline", "‘n’ is not accepting tasks"
	partLabelMissing          // "‘n’ doesn’t have label ‘x’"
	partReserved              // "‘n’ is reserved for jobs with matching label expression"
	partPermission            // "‘user’ lacks permission to run on ‘n’": names a user and a node, no label
)

type part struct {
	kind        partKind
	node, label string
}

// parsePart reads one per-node reason.
func parsePart(s string) part {
	s = strings.TrimSpace(s)
	for _, sep := range labelMissingSeps {
		if i := strings.Index(s, sep); i >= 0 {
			return part{kind: partLabelMissing, node: unquote(s[:i]), label: unquote(s[i+len(sep):])}
		}
	}
	switch {
	case strings.Contains(s, lacksPermission) || strings.Contains(s, oldLacksPerm):
		// Node.LackingBuildPermission(identity.getName(), node): the first name is the user the
		// build runs as, the second the node. Neither is the item's label.
		return part{kind: partPermission}
	case strings.HasSuffix(s, reservedSuffix):
		return part{kind: partReserved, node: unquote(strings.TrimSuffix(s, reservedSuffix))}
	case strings.HasSuffix(s, notAcceptSuffix):
		return part{kind: partNode, node: unquote(strings.TrimSuffix(s, notAcceptSuffix))}
	case strings.HasSuffix(s, offlineSuffix):
		return part{kind: partNode, node: unquote(strings.TrimSuffix(s, offlineSuffix))}
	}
	return part{kind: partUnknown}
}

// labelWhy is the Why for a text that names a label.
func labelWhy(raw string) Why {
	label, _, err := normalizeLabel(raw)
	if err != nil {
		return Why{Err: err}
	}
	if label == "" {
		return Why{Ambiguous: true}
	}
	return Why{Label: label}
}

// unquote strips the ‘ ’ Jenkins puts around names since 2.125 (or ASCII ' ', seen in some
// translations); older texts have bare names. Double quotes are left alone: they belong to the label
// expression (a quoted atom).
func unquote(s string) string {
	s = strings.TrimSpace(s)
	if len(s) >= len(lquote)+len(rquote) && strings.HasPrefix(s, lquote) && strings.HasSuffix(s, rquote) {
		return s[len(lquote) : len(s)-len(rquote)]
	}
	if len(s) >= 2 && s[0] == '\'' && s[len(s)-1] == '\'' {
		return s[1 : len(s)-1]
	}
	return s
}

// normalizeLabel puts a label expression in Jenkins' normalised form (no spaces). Jenkins prints a
// single label with Label.getName(), which for an atom is the raw name, unescaped: a name that is
// not a valid expression on its own (one with a space, say) is such an atom, and is quoted as Jenkins
// would quote it in an expression. atom reports a single plain name, which may also be a node's name.
// A label past labelexpr's bounds is an error (wrapping labelexpr.ErrTooLong or ErrTooDeep), not an
// atom: no template could serve it, and a megabyte "label" would travel on into logs and metrics.
func normalizeLabel(raw string) (label string, atom bool, err error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return "", false, nil
	}
	n, err := labelexpr.Normalize(raw)
	switch {
	case errors.Is(err, labelexpr.ErrTooLong), errors.Is(err, labelexpr.ErrTooDeep):
		return "", false, fmt.Errorf("jenkins: queue item's label: %w", err)
	case err != nil:
		q := labelexpr.QuoteAtom(raw)
		if len(q) > labelexpr.MaxLength {
			return "", false, fmt.Errorf("jenkins: queue item's label: %d bytes quoted: %w", len(q), labelexpr.ErrTooLong)
		}
		return q, true, nil
	}
	return n, n == labelexpr.QuoteAtom(raw), nil
}
