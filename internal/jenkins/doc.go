// Package jenkins is the provisioner's view of Jenkins: demand read from the build queue, agent state
// read from the computer list, and the few writes that manage inbound agent nodes. It knows HTTP and
// Jenkins' shapes and nothing of Kubernetes.
//
// # Cost
//
// A poll is exactly two requests whatever the size of the queue or the number of agents: Queue is one
// GET of /queue/api/json and Computers one GET of /computer/api/json, both with tree= naming only the
// fields used (tree= also reaches nested fields that depth= would collapse to {}). Nothing is fetched
// per item or per node during a poll. JobLabelExpression (one GET per job, cached) is only for
// freestyle items whose `why` names no label.
//
// # Reading demand
//
// Jenkins exports no label for a queue item; the label shows only in the English `why` text
// (ParseWhy, which is why every request sends Accept-Language: en). While Jenkins has no agent node
// at all it names no label for any item, so the controller keeps one placeholder node
// (EnsurePlaceholderNode): never connected, EXCLUSIVE, temporarily offline, with a label no build
// uses. When exactly one node carries a label Jenkins names the node instead of the label (Demand.Node;
// ResolveNodes settles the "Waiting for next available executor on X" case, which reads alike for both).
//
// # Transport
//
// github.com/hashicorp/go-retryablehttp runs every request. Reads and idempotent writes (delete,
// changeOfflineCause) are retried on connection errors, 429 and 5xx, with exponential backoff and full
// jitter, honouring Retry-After up to Config.MaxRetryAfter. Creating a node is retried only when it
// certainly never reached Jenkins (a failed dial, a 429): after a reset or a 5xx the node may exist,
// and the next CreateNode call, idempotent by name and description, settles it. Each attempt has
// Config.Timeout; the caller's context bounds the whole. Redirects are never followed: a 302 is
// Jenkins' answer to a form POST that worked, and a redirect on a read is a login page. Errors are
// *HTTPError values that unwrap to ErrUnauthorized, ErrForbidden (naming the missing permission when
// Jenkins does), ErrNotFound, ErrUnavailable, ErrNodeExists or ErrUnexpectedResponse; an HTML page
// where JSON was expected is reported with its status and title. Credentials are sent as HTTP Basic
// auth and never logged. With a password (not an API token) POSTs carry a crumb from
// /crumbIssuer/api/json and the session cookie it was issued with; an API token needs neither.
//
// # gojenkins
//
// The project uses github.com/bndr/gojenkins (v1.2.0, the newest). Its Jenkins and Requester take an
// *http.Client, so the retrying transport goes under it, and Ping (the start-up check of URL,
// credentials and version) is gojenkins' Jenkins.Init. The transport under gojenkins turns error
// statuses, redirects and HTML pages into typed errors before gojenkins' decoder sees them, because
// Requester.Do decodes every body as JSON whatever its status. Everything else goes around gojenkins,
// for these reasons (all at v1.2.0):
//   - Requester.Post follows Jenkins' normal 302 and decodes the HTML page it lands on: a successful
//     POST fails with "invalid character '<'" (issue #342).
//   - Requester.SetCrumb, run before every POST, fetches a crumb even with an API token (one more
//     request per write) and dereferences a nil response on a network error (PR #300).
//   - CreateNode cannot set the launcher's WebSocket or work directory or the node's mode (always
//     NORMAL, which would let unlabelled builds land on agents made for a label), and sends
//     "retentionsStrategy", which Jenkins ignores.
//   - GetQueue and GetAllNodes send no tree= (GetAllNodes asks depth=1, monitor data included), and
//     their types drop `_class`, assignedLabels and the executors' current builds, which demand and
//     agent state are read from.
//   - GetAllNodes and GetNode build URLs from names without escaping them.
//   - Requester.Do appends "/" to every GET path, so jenkins-agent.jnlp cannot be fetched through it.
package jenkins
