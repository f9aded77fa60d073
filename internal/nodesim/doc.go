// Package nodesim is a node simulator for end-to-end tests and the demo. The machines these run on have
// no kubelet and no container runtime, yet the provisioner reads everything about an agent from its pod
// (phase, container statuses, conditions) and from Jenkins (did the agent connect). nodesim stands in for
// the missing parts against a real kube-apiserver, so the controller meets the same objects it would
// meet in a cluster:
//
//   - kube-scheduler: every unbound pod it watches (one namespace, optionally a label selector) is bound
//     to its fake node with the pods/binding subresource, or marked PodScheduled=False, reason
//     Unschedulable, with a scheduler-like "0/1 nodes are available: ..." message (chosen by behaviour,
//     a nodeSelector the node's labels do not satisfy, or a request beyond the node's allocatable).
//     Unschedulable pods are looked at again every RetryInterval, as the scheduler retries them.
//     A pod with scheduling gates (Kueue's kueue.x-k8s.io/admission, say) is left alone until its last
//     gate is removed, as kube-scheduler leaves it: not bound, no condition or event written (the
//     apiserver itself sets PodScheduled=False, reason SchedulingGated, on such a pod).
//   - kubelet: it registers a Ready v1.Node (64 CPU, 256Gi, 1000 pods unless configured) and renews its
//     Lease in kube-node-lease; for each pod bound to it, one goroutine writes the statuses a kubelet
//     writes through UpdateStatus: Pending with ContainerCreating (PodInitializing with init containers),
//     then Running with state.running, ready and started for every container, podIP, hostIP, startTime
//     and the PodScheduled, PodReadyToStartContainers, Initialized, ContainersReady and Ready conditions.
//     The phase follows the kubelet's getPhase rules. Environment variables are resolved as the kubelet
//     does (value with $(VAR) expansion, secretKeyRef, configMapKeyRef, envFrom, fieldRef); a missing
//     Secret or key gives CreateContainerConfigError with the kubelet's message (secret "x" not found),
//     retried until it appears. activeDeadlineSeconds ends a pod Failed with reason DeadlineExceeded.
//     Graceful deletion is finished as a kubelet does: the containers are stopped and reported
//     terminated, then the pod is deleted with grace period 0 and a UID precondition. (The apiserver
//     itself deletes unbound and finished pods at once, so those never wait for the node.)
//     Events a kubelet and scheduler post (Scheduled, FailedScheduling, Pulling, Failed, BackOff,
//     Created, Started, Killing) are posted as Kubernetes Events too, and kept in Simulator.Events.
//   - the inbound agent: the agent container is the one named "jnlp", else the first one that sets
//     JENKINS_URL. Once it "starts", one goroutine reads JENKINS_URL, JENKINS_SECRET and
//     JENKINS_AGENT_NAME (or JENKINS_NAME) from its resolved environment and connects with
//     jenkinstest.ConnectAgent, the emulator's stand-in for remoting's WebSocket handshake. A refused
//     connection (wrong secret, unknown node) ends the container with exit code 1 (reason Error) when
//     REMOTING_OPTS or the container args hold -noReconnect; without it the agent retries every
//     RetryInterval. When Jenkins drops the connection (a restart, the node deleted, the channel
//     closed) the agent plays remoting's rules (remoting.go, after hudson.remoting.Engine, Launcher
//     and JnlpAgentEndpointResolver): with -noReconnect it exits 0; without, it reconnects, a
//     WebSocket agent (-webSocket or JENKINS_WEB_SOCKET=true) after 0, 1, 3, 7, then every 10 s, a
//     TCP agent every 10 s; -noReconnectAfter D (10m, 30s, PT5M...) makes it exit 0 once D has
//     passed since the disconnect without success. Options Launcher refuses (-noReconnectAfter with
//     -noReconnect, a duration it cannot parse) end the agent with 0 before it connects, as
//     Launcher.main returns after printing the usage. Config.RemotingTimeScale scales those
//     intervals and the -noReconnectAfter bound (default 1, remoting's real times; tests use 0.01).
//
// One simplification: a real pod whose agent exited keeps running its other containers (a
// "sleep infinity" sidecar, say) until someone deletes it. Here, with restartPolicy Never (the
// Kubernetes plugin's and this project's choice), the agent's exit ends the pod: on exit 0 the other
// containers end with 0 too, so the pod is Succeeded; on a failure they are reported killed (137) and
// the pod is Failed. With restartPolicy Always or OnFailure the agent container is restarted after a
// CrashLoopBackOff wait (RetryInterval doubling, at most 5 minutes) instead, and the pod keeps running.
//
// It does not run anything: no images are pulled, no processes start, no volumes are mounted, no
// probes run (a running container is ready at once), init containers finish at once with exit 0,
// resource use is not accounted across pods, affinity, taints and tolerations are ignored, and only
// the agent container can end on its own.
//
// # Behaviours
//
// Each pod's behaviour comes from Simulator.SetBehaviour (per pod name) if set, else Config.Behaviour
// (replaceable at run time with SetBehaviourFunc), by default DefaultBehaviour, which reads the pod:
//
//   - An image whose registry host is nonexistent.invalid or whose tag is does-not-exist cannot be
//     pulled (PullError): that container waits with ErrImagePull, then ImagePullBackOff, alternating
//     every RetryInterval, with containerd's error text as the message (the "Failed to pull image"
//     wording is the Event's, as in a real cluster); the pod stays Pending. Other containers start.
//     The behaviour is read again at every retry, so a fix lets the pull succeed.
//   - The annotation nodesim.jenkins-agent-provisioner/behaviour holds a comma-separated list:
//     "crash" (the agent container exits 1, reason Error, CrashAfter after it started; the pod goes
//     Failed), "unschedulable" (never bound; PodScheduled=False, reason Unschedulable), "no-connect"
//     (the agent container runs but never reaches Jenkins), "pull-error" (as a bad image, applied to
//     the agent container) and "slow-start=DURATION" (the time between binding and the containers
//     starting, e.g. slow-start=3s), "slow-schedule=DURATION" (the time before the pod is bound) and
//     "slow-connect=DURATION" (the time between the agent container starting and its first
//     connection). A value that does not parse is logged and ignored.
//
// Config.StartUp gives every pod a start-up time split the way a real cluster spends it
// (scheduling, starting the containers, the agent connecting), for tests and benchmarks that model
// a real cluster instead of an instant start; a pod's own delays win where it sets them.
package nodesim
