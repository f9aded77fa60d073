package nodesim

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"go.uber.org/zap"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/jenkins-agent-provisioner/provisioner/internal/jenkins/jenkinstest"
	"github.com/jenkins-agent-provisioner/provisioner/internal/waitfor"
)

// resolveEnv builds a container's environment as the kubelet does before it starts the container:
// envFrom first, then env in order (a later name wins), $(VAR) references expanded against what is
// defined so far. A Secret or ConfigMap that is missing (and not optional) is an error with the
// kubelet's own wording, which becomes the CreateContainerConfigError message.
func (s *Simulator) resolveEnv(ctx context.Context, pod *corev1.Pod, c *corev1.Container, st *corev1.PodStatus) (map[string]string, error) {
	env := map[string]string{}
	secrets := map[string]*corev1.Secret{}
	configMaps := map[string]*corev1.ConfigMap{}
	secret := func(name string) (*corev1.Secret, error) {
		if sec, ok := secrets[name]; ok {
			return sec, nil
		}
		sec, err := s.cfg.Client.CoreV1().Secrets(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "secret"}, name)
		}
		if err != nil {
			return nil, fmt.Errorf("get secret %s/%s: %w", pod.Namespace, name, err)
		}
		secrets[name] = sec
		return sec, nil
	}
	configMap := func(name string) (*corev1.ConfigMap, error) {
		if cm, ok := configMaps[name]; ok {
			return cm, nil
		}
		cm, err := s.cfg.Client.CoreV1().ConfigMaps(pod.Namespace).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil, apierrors.NewNotFound(schema.GroupResource{Resource: "configmap"}, name)
		}
		if err != nil {
			return nil, fmt.Errorf("get configmap %s/%s: %w", pod.Namespace, name, err)
		}
		configMaps[name] = cm
		return cm, nil
	}
	optional := func(p *bool) bool { return p != nil && *p }

	for _, from := range c.EnvFrom {
		switch {
		case from.SecretRef != nil:
			sec, err := secret(from.SecretRef.Name)
			if apierrors.IsNotFound(err) && optional(from.SecretRef.Optional) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for k, v := range sec.Data {
				env[from.Prefix+k] = string(v)
			}
		case from.ConfigMapRef != nil:
			cm, err := configMap(from.ConfigMapRef.Name)
			if apierrors.IsNotFound(err) && optional(from.ConfigMapRef.Optional) {
				continue
			}
			if err != nil {
				return nil, err
			}
			for k, v := range cm.Data {
				env[from.Prefix+k] = v
			}
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = expand(e.Value, env)
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			sec, err := secret(ref.Name)
			if apierrors.IsNotFound(err) && optional(ref.Optional) {
				continue
			}
			if err != nil {
				return nil, err
			}
			v, ok := sec.Data[ref.Key]
			if !ok {
				if optional(ref.Optional) {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %v in Secret %v/%v", ref.Key, pod.Namespace, ref.Name)
			}
			env[e.Name] = string(v)
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, err := configMap(ref.Name)
			if apierrors.IsNotFound(err) && optional(ref.Optional) {
				continue
			}
			if err != nil {
				return nil, err
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if optional(ref.Optional) {
					continue
				}
				return nil, fmt.Errorf("couldn't find key %v in ConfigMap %v/%v", ref.Key, pod.Namespace, ref.Name)
			}
			env[e.Name] = v
		case e.ValueFrom.FieldRef != nil:
			v, err := fieldValue(pod, st, e.ValueFrom.FieldRef.FieldPath, s.cfg.NodeName)
			if err != nil {
				return nil, err
			}
			env[e.Name] = v
		default:
			// resourceFieldRef and fileKeyRef would need a real container runtime's view; saying so in
			// the status is better than starting the agent with a value silently missing.
			return nil, fmt.Errorf("nodesim: env %s: only value, secretKeyRef, configMapKeyRef and fieldRef are simulated", e.Name)
		}
	}
	return env, nil
}

var fieldSubscript = regexp.MustCompile(`^metadata\.(labels|annotations)\['(.*)'\]$`)

// fieldValue answers the downward-API field paths the kubelet supports for env.
func fieldValue(pod *corev1.Pod, st *corev1.PodStatus, path string, nodeName string) (string, error) {
	switch path {
	case "metadata.name":
		return pod.Name, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.uid":
		return string(pod.UID), nil
	case "spec.nodeName":
		return nodeName, nil
	case "spec.serviceAccountName":
		return pod.Spec.ServiceAccountName, nil
	case "status.hostIP":
		return st.HostIP, nil
	case "status.podIP":
		return st.PodIP, nil
	}
	if m := fieldSubscript.FindStringSubmatch(path); m != nil {
		if m[1] == "labels" {
			return pod.Labels[m[2]], nil
		}
		return pod.Annotations[m[2]], nil
	}
	return "", fmt.Errorf("unsupported fieldPath %q", path)
}

// expand replaces $(NAME) with an already defined variable, leaves unknown references as written and
// turns $$ into $, as Kubernetes' env expansion does.
func expand(s string, env map[string]string) string {
	if !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' || i+1 >= len(s) {
			b.WriteByte(s[i])
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '(':
			end := strings.IndexByte(s[i+2:], ')')
			if end < 0 {
				b.WriteString(s[i:])
				return b.String()
			}
			name := s[i+2 : i+2+end]
			if v, ok := env[name]; ok {
				b.WriteString(v)
			} else {
				b.WriteString(s[i : i+3+end])
			}
			i += 2 + end
		default:
			b.WriteByte('$')
		}
	}
	return b.String()
}

// remotingArgs is what the inbound-agent entrypoint would pass to remoting, read from the container.
type remotingArgs struct {
	URL, Name, Secret string
	NoReconnect       bool
	WebSocket         bool
	// NoReconnectAfter bounds the reconnect attempts after a disconnect (-noReconnectAfter); 0 (not
	// given) retries for ever.
	NoReconnectAfter    time.Duration
	HasNoReconnectAfter bool
	// Invalid is what Launcher's option parser would reject (the agent then exits 0 at once).
	Invalid string
}

// agentArgs maps the container's environment and arguments the way the jenkins/inbound-agent
// entrypoint does: JENKINS_URL, JENKINS_SECRET, JENKINS_AGENT_NAME (or JENKINS_NAME),
// JENKINS_WEB_SOCKET=true (-webSocket), and REMOTING_OPTS plus the container args as extra remoting
// options, of which -noReconnect, -noReconnectAfter and -webSocket change what the simulated agent
// does. Tunnel and direct-connection settings are accepted and ignored: the emulator has one way in.
func agentArgs(env map[string]string, args []string) remotingArgs {
	a := remotingArgs{URL: env["JENKINS_URL"], Secret: env["JENKINS_SECRET"], Name: env["JENKINS_AGENT_NAME"],
		WebSocket: env["JENKINS_WEB_SOCKET"] == "true"}
	if a.Name == "" {
		a.Name = env["JENKINS_NAME"]
	}
	opts := append(strings.Fields(env["REMOTING_OPTS"]), args...)
	for i := 0; i < len(opts); i++ {
		switch strings.Trim(opts[i], `"'`) {
		case "-noReconnect", "-noreconnect":
			a.NoReconnect = true
		case "-webSocket":
			a.WebSocket = true
		case "-noReconnectAfter":
			a.HasNoReconnectAfter = true
			if i+1 >= len(opts) {
				a.Invalid = `option "-noReconnectAfter" takes an operand`
				continue
			}
			i++
			d, err := parseRemotingDuration(strings.Trim(opts[i], `"'`))
			if err != nil {
				a.Invalid = err.Error()
				continue
			}
			a.NoReconnectAfter = d
		}
	}
	if a.NoReconnect && a.HasNoReconnectAfter && a.Invalid == "" {
		a.Invalid = `option "-noReconnectAfter" cannot be used with the option(s) [-noReconnect]`
	}
	return a
}

// playAgent is the agent process: connect to Jenkins, stay connected until Jenkins lets go, and then
// exit (with -noReconnect) or try again every RetryInterval as remoting does. A refused connection
// ends the process with code 1 under -noReconnect.
func (s *Simulator) playAgent(ctx context.Context, pod string, a remotingArgs, events chan<- agentEvent, gen int) {
	log := s.log.With(zap.String("agent", pod), zap.String("jenkinsURL", a.URL), zap.String("nodeName", a.Name))
	send := func(ev agentEvent) bool {
		ev.gen = gen
		select {
		case events <- ev:
			return true
		case <-ctx.Done():
			return false
		}
	}
	if a.URL == "" || a.Name == "" || a.Secret == "" {
		err := errors.New("JENKINS_URL, JENKINS_SECRET and JENKINS_AGENT_NAME must all be set")
		log.Warn("agent cannot start", zap.Error(err))
		send(agentEvent{kind: agentExited, code: 1, err: err})
		return
	}
	if a.Invalid != "" {
		// Launcher.main prints the option error and the usage, and returns: exit 0, never connected.
		err := fmt.Errorf("remoting refused its options: %s", a.Invalid)
		log.Warn("agent cannot start", zap.Error(err))
		send(agentEvent{kind: agentExited, code: 0, err: err})
		return
	}
	url := a.URL
	if !strings.HasSuffix(url, "/") {
		// The entrypoint passes -url as given; remoting appends the slash before building its endpoints.
		url += "/"
	}
	var sess *jenkinstest.AgentSession
	for {
		var err error
		if sess == nil {
			sess, err = jenkinstest.ConnectAgent(ctx, url, a.Name, a.Secret)
		}
		if ctx.Err() != nil {
			if sess != nil {
				sess.Close()
			}
			return
		}
		if err != nil {
			log.Info("agent connection refused", zap.Bool("noReconnect", a.NoReconnect), zap.Error(err))
			if !send(agentEvent{kind: agentRefused, err: err}) {
				return
			}
			if a.NoReconnect {
				send(agentEvent{kind: agentExited, code: 1, err: err})
				return
			}
			if !waitfor.Duration(ctx, s.cfg.RetryInterval) {
				return
			}
			continue
		}
		log.Info("agent connected")
		if !send(agentEvent{kind: agentConnected}) {
			sess.Close()
			return
		}
		select {
		case <-ctx.Done():
			// The container is being stopped: the agent process goes away.
			sess.Close()
			return
		case <-sess.Done():
		}
		log.Info("Jenkins disconnected the agent", zap.Bool("noReconnect", a.NoReconnect))
		if !send(agentEvent{kind: agentDisconnected}) {
			return
		}
		if a.NoReconnect {
			send(agentEvent{kind: agentExited, code: 0})
			return
		}
		var ok bool
		if sess, ok = s.reconnect(ctx, log, url, a, send); !ok {
			return
		}
	}
}

// reconnect plays remoting's retries after a disconnect (see remoting.go) until a connection is
// made, and returns it. It returns false when the agent is done: remoting gave up
// (-noReconnectAfter; the agent has then exited 0) or the container is being stopped.
func (s *Simulator) reconnect(ctx context.Context, log *zap.Logger, url string, a remotingArgs, send func(agentEvent) bool) (*jenkinstest.AgentSession, bool) {
	lost := time.Now()
	bound := s.scaled(a.NoReconnectAfter)
	for attempt := 0; ; attempt++ {
		if a.HasNoReconnectAfter && time.Since(lost) > bound {
			log.Info("agent gave up reconnecting", zap.Duration("noReconnectAfter", a.NoReconnectAfter))
			send(agentEvent{kind: agentExited, code: 0, err: fmt.Errorf("bailing out after %s", a.NoReconnectAfter)})
			return nil, false
		}
		if !waitfor.Duration(ctx, s.scaled(reconnectDelay(a.WebSocket, attempt))) {
			return nil, false
		}
		sess, err := jenkinstest.ConnectAgent(ctx, url, a.Name, a.Secret)
		if ctx.Err() != nil {
			if sess != nil {
				sess.Close()
			}
			return nil, false
		}
		if err == nil {
			return sess, true
		}
		log.Info("agent reconnect failed", zap.Int("attempt", attempt+1), zap.Error(err))
		if !send(agentEvent{kind: agentRefused, err: err}) {
			return nil, false
		}
	}
}
