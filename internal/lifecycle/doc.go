// Package lifecycle turns Jenkins build demand into agent pods, and finished agents into nothing.
//
// It is the only package that knows both Jenkins (through internal/jenkins) and Kubernetes pods
// (through internal/podtemplate and client-go). Every poll is three stages, one file each:
//
//   - observe (observe.go) does every read: Jenkins' computer list, then its queue (two requests with
//     one deadline), node-named demand resolved against the computers, the label expressions of
//     freestyle jobs whose queue items name none (a few at a time, within the poll's deadline,
//     failures cached briefly), and the label-selected informer caches of our pods and Secrets. It
//     returns one immutable Snapshot.
//   - decide (decide.go, decide_demand.go, state.go's classify) is a pure function of the snapshot,
//     the Memory that must survive polls (per-template backoff, release grace, one-shot event keys,
//     recent failures), the DecideConfig and the time. It returns a Decision: the actions, the
//     notices (Events, log lines, metrics to report), the next memory, and the status and gauges.
//     It does no I/O, takes no lock, reads no clock and logs nothing, so each rule is a table test.
//   - act (act.go) performs the actions through client-go's typed rate-limited work queues keyed by
//     agent name (busy marks in a lane of their own), so two steps on one agent never race; the
//     steps are in provision.go and teardown.go. busywatch.go is the fast path for busy marks.
//
// From the two views every agent gets a state (classify): Starting, Idle, Busy, Done, Failed,
// Released, Terminating, Retained or Orphan, with a typed Reason (reason.go) whose Kind metrics and
// Events use. The plan compares the agents not yet busy with the builds waiting per template and
// creates the missing ones within the per-template and global caps, counted from live pods plus the
// creations in flight (expectations.go: an expectation ends only with its step, and when the informer
// shows the pod). For every waiting label decide says why no agent is being made for it (waiting.go).
//
// Provisioning order, so that a crash between any two steps leaves only things the reaper recognises:
// Jenkins node (description carries a marker and its creation time, nodedesc.go) → agent secret (read
// from jenkins-agent.jnlp) → Pod (labelled, annotated) → Secret (labelled, owned by the pod). A node
// without a pod, a Secret without a pod, and a pod without a node are each removed once older than a
// grace period; a pod whose Secret never came fails with CreateContainerConfigError and is removed.
// Every delete names the cached object's UID as a precondition.
//
// One build per agent: the moment an agent is seen busy it is marked temporarily offline in Jenkins, so
// no second build lands on it; once its executors are idle again it is done and deleted. While any agent
// of ours is online, idle and unmarked (the only window in which Jenkins may hand it a build), the busy
// watch polls the computer list alone at BusyPollInterval, which bounds the shortest build guaranteed
// its own pod without adding requests to the regular poll.
//
// Restarts, dropped connections, killed pods (decide_resume.go, gone.go): a marked agent without its
// connection (Computer.Connected, from Jenkins' absoluteRemotePath), or an unmarked one that was
// online, is Suspended and kept for ReconnectGrace; a queue item Jenkins binds to one of our agents by
// name whose task is the run our busy mark names (a node block resumed after a restart) makes it
// Resuming: its mark is cleared for exactly that item (SetOnline) and set again at once, and no
// agent is made for the item. While Jenkins is down or starting (Snapshot.JenkinsFresh false) decide
// holds everything and Memory records the outage, whose length then never counts against connect
// timeouts or orphan graces; for ResumeSettle after Jenkins is back a reconnected marked agent is held,
// since Jenkins queues resumed blocks in the background. An agent whose pod is deleted, evicted or
// OOM-killed under its build is Lost: node and pod go at once, with an AgentLost Event.
//
// Seams for what comes next (not implemented here):
//
//   - A new agent state (Queued: a pod held by a Kueue scheduling gate; Ready: a warm idle agent) is
//     one more State
//     constant in state.go, one more case in classify placed before the cases it must win against,
//     and one more case in Decision.agent (decide.go) saying what the state asks for; plan counting
//     (world.loads in decide_demand.go) decides whether it serves waiting builds.
//   - Snapshot.JenkinsFresh is false when either Jenkins read failed; Decide then holds every decision
//     (Decision.Hold). A rule that should act while Jenkins is down starts from that flag.
//   - A new reason a build waits is one WaitKind in waiting.go, set in planCreates or templateFor.
package lifecycle
