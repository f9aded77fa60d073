// Package jenkinstest is an emulated Jenkins controller for tests: an HTTP server whose answers
// have the shape of a current Jenkins (2.4xx), so that the provisioner's client, a third-party
// client (gojenkins) and the node simulator can be tested against it without a JVM. It is shaped
// after Jenkins core's source and the recorded payloads in ../testdata/fixtures, never after
// a client; TestConformance checks every recording against the emulator's own answers.
//
// What it models:
//   - Authentication as BasicHeaderProcessor and CrumbFilter do it: API-token users need no crumb;
//     password users need the crumb of /crumbIssuer/api/json and the JSESSIONID.* session it was
//     issued in. Wrong credentials are 401 (WWW-Authenticate: Basic, "Invalid password/token for
//     user: X"), anonymous is 403 "Authentication required" (X-You-Are-Authenticated-As:
//     anonymous), a missing permission 403 "X is missing the P permission". X-Jenkins is on every
//     answer.
//   - The export API (Stapler): keys in Jenkins' order (superclass first, each class's sorted),
//     `_class` where the runtime class differs from the declared type, `depth` pruning by each
//     property's visibility, `tree=` with nested lists, `*` and `{m,n}` ranges, Stapler's
//     `pretty=true` layout, compact JSON otherwise, dates in epoch milliseconds. Errors are HTML:
//     Jetty's error page, Jenkins' "Error" (400), access-denied, "Oops!" (500) and startup (503)
//     pages.
//   - The queue (hudson.model.Queue): waiting (quiet period), blocked (a build of a project without
//     concurrent builds in progress), buildable, pending and left items (kept five minutes);
//     maintain() offers every buildable item each idle executor and runs on every state change, so
//     an idle agent gets a build at once. `why` is computed as BuildableItem.getCauseOfBlockage
//     does, including the composite of the executors' refusals, in English, or in German for
//     Accept-Language: de (texts of Messages_de.properties, English where that has none).
//   - Nodes: DumbSlave with a JNLPLauncher created through POST /computer/doCreateItem, the 2.344+
//     jenkins-agent.jnlp (and slave-agent.jnlp) with a per-node HMAC secret, toggleOffline,
//     changeOfflineCause, doDisconnect, doDelete (which disconnects the agent and aborts its
//     builds). A node's labels are its label string's words and its own name. absoluteRemotePath
//     (SlaveComputer#getAbsoluteRemotePath, 2.125+) is the remote FS while the agent is connected,
//     null without a channel or for a user without Agent/Connect; the recordings predate 2.125 and
//     lack the key, so TestAbsoluteRemotePath holds it to core's source instead.
//   - Jobs: freestyle projects with a label expression, and pipeline jobs whose run (a flyweight
//     on a one-off executor of the built-in node) asks for one node('label') PlaceholderTask.
//   - Agents: GET {root}wsagents/ with Node-Name and Secret-Key, held open while connected (see
//     ConnectAgent); the remoting handshake's answers (400 "no such agent", 403, 409).
//   - Restarts (Restart, see restart.go): Jenkins.cleanUp aborts freestyle builds and disconnects
//     every agent; pipeline node blocks survive, are queued again on start-up as new items bound to
//     their node by name (PlaceholderTask.EnforceSelfLabel), hold other items off that node
//     (ContinuedTask.Scheduler) and are aborted after Options.ResumeTimeout (default 5 minutes);
//     connections are refused while down, then every path answers HudsonIsLoading's 503; marks,
//     nodes and the queue survive, left items and sessions do not.
//   - A dropped agent connection (DisconnectAgent, or the agent going away): ChannelTermination, a
//     freestyle build on it fails, a node block waits for the agent to come back.
//   - Test hooks: Builds, Nodes, Stats (requests and bytes per endpoint) and Faults (latency, 5xx
//     HTML pages, connection resets, outage windows; deterministic for a seed).
//
// Scale: the provisioner's benchmarks run it with a thousand queued builds and a thousand agents,
// so a queue pass handles items per label rather than per item and executor (refusals are shared
// by the items of one label), nodes remember which labels they satisfy, the computer list stays
// sorted, and one /api/json answer computes each label's node counts once (view.go). The
// Benchmark* functions in scale_test.go pin the costs; the answers are those of the plain
// per-item computation, byte for byte.
//
// Where it differs from a real Jenkins:
//   - The agent channel is a held-open HTTP response with keepalive lines, not a WebSocket carrying
//     remoting; there is no TCP agent port (slaveAgentPort is -1).
//   - Only DumbSlave with JNLPLauncher can be created; other launchers are refused with 400, and
//     POST /computer/createItem (config.xml, 2.539+) is not offered.
//   - Among executors that can take an item the first in computer order wins; Jenkins' default
//     load balancer picks by consistent hash.
//   - The default quiet period is 0 (Jenkins: 5 s); Options.QuietPeriod sets one, and POST
//     /job/NAME/build honours `delay`.
//   - Deleting a node aborts a node block running on it at once; Jenkins' RemovedNodeListener waits
//     TIMEOUT_WAITING_FOR_NODE_MILLIS for a node that is not one-shot. A restart is never a safe
//     restart (no quiet-down waiting for freestyle builds; core's /safeRestart is not offered).
//   - Texts exist in English and German only; other languages get English. The German texts are
//     those of the newest Messages_de.properties available here, which may predate core's latest.
//   - Only the properties clients use are exported (no views beyond "all", plugins, users, build
//     logs, parameters or upstream causes); monitor data is invented; `pending` lasts only until
//     the executor's goroutine starts the build.
//   - Permissions are one flat set per user (no project or agent matrix); Overall/Administer
//     implies all others. Queue items and jobs are hidden from users without Job/Read.
package jenkinstest
