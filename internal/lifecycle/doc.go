// Package lifecycle turns Jenkins build demand into agent pods, and finished agents into nothing.
//
// It is the only package that knows both Jenkins (through internal/jenkins) and Kubernetes pods
// (through internal/podtemplate and client-go). Everything it decides is decided again on every poll
// from what the world says, never from memory:
//
//   - Jenkins says, in one poll of two requests, which builds wait for which label (the queue) and
//     what every agent is doing (the computer list).
//   - Kubernetes says, through a label-selected informer, which agent pods and Secrets exist, their
//     phase and container states, and the annotations written when each pod was made (its template,
//     connect timeout, pod retention), so in-flight agents keep the template they were made from.
//
// From those two views every agent of ours gets a state (see classify): Starting, Idle, Busy, Done,
// Failed, Released or an orphan. The plan (see plan) compares the agents that are not yet busy with the
// builds waiting per template and creates the missing ones within the per-template and global caps,
// counted from live pods plus the creations still on their way into the informer cache (the
// ReplicaSet controller's "expectations", the only in-memory count, and one that a restart may drop
// because a re-list then shows the truth).
//
// The only memory kept across polls that changes a decision is per-template failure backoff and the
// release grace; a restart forgets both, which costs at most one early retry or one grace period.
//
// Provisioning order, so that a crash between any two steps leaves only things the reaper recognises:
// Jenkins node (description carries a marker and its creation time) → agent secret (read from
// jenkins-agent.jnlp) → Pod (labelled, annotated) → Secret (labelled, owned by the pod). A node
// without a pod, a Secret without a pod, and a pod without a node are each removed once older than a
// grace period; a pod whose Secret never came fails with CreateContainerConfigError and is removed.
//
// One build per agent: the moment an agent is seen busy it is marked temporarily offline in Jenkins, so
// no second build lands on it; once its executors are idle again it is done and deleted. While any agent
// of ours is online, idle and unmarked (the only window in which Jenkins may hand it a build), a busy
// watch polls the computer list alone at BusyPollInterval, which bounds the shortest build guaranteed
// its own pod without adding requests to the regular poll.
package lifecycle
