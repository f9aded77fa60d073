package nodesim

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// What remoting (hudson.remoting.Launcher and Engine) does once Jenkins drops a connected agent,
// as the simulated agent plays it:
//
//   - -noReconnect: Engine returns as soon as the channel ends, Launcher.main returns, the JVM exits
//     0 (the inbound-agent entrypoint execs java, so that is the container's exit code).
//   - WebSocket (-webSocket, JENKINS_WEB_SOCKET=true): Engine.runWebSocket tries again at once and
//     then backs off (Engine.ExponentialRetry: delay' = min(10 s, 2·delay + 1 s), so 0, 1, 3, 7,
//     10, 10 ... s) until it is connected.
//   - TCP: JnlpAgentEndpointResolver.waitForReady sleeps 10 s before each probe of Jenkins, then
//     Engine.innerRun connects; a failed handshake sleeps 10 s too (onConnectionRejected).
//   - -noReconnectAfter D: each wait checks Util.shouldBailOut against the time of the disconnect
//     (Engine.innerRun resets firstAttempt; ExponentialRetry starts its clock at the first retry):
//     past D the engine gives up and the JVM exits 0.
//
// Launcher refuses -noReconnectAfter together with -noReconnect (args4j `forbids`) and a duration
// DurationStyle cannot parse: main prints the error and the usage and returns, so the agent exits
// 0 without ever connecting.

// reconnectDelay is how long remoting waits before reconnect attempt n (0-based) after a
// disconnect, at real speed.
func reconnectDelay(webSocket bool, attempt int) time.Duration {
	if !webSocket {
		return 10 * time.Second
	}
	d := time.Duration(0)
	for range attempt {
		d = min(10*time.Second, 2*d+time.Second)
	}
	return d
}

// scaled multiplies a remoting interval by the simulator's RemotingTimeScale.
func (s *Simulator) scaled(d time.Duration) time.Duration {
	return time.Duration(float64(d) * s.cfg.RemotingTimeScale)
}

var (
	simpleDuration = regexp.MustCompile(`^([+-]?\d+)([a-zA-Z]{0,2})$`)
	isoDuration    = regexp.MustCompile(`^(?i)([+-])?P(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d{1,9})?)S)?)?$`)
	durationUnits  = map[string]time.Duration{
		"ns": time.Nanosecond, "us": time.Microsecond, "ms": time.Millisecond,
		"s": time.Second, "m": time.Minute, "h": time.Hour, "d": 24 * time.Hour,
	}
)

// parseRemotingDuration is DurationStyle.detectAndParse, as Launcher's DurationOptionHandler reads
// -noReconnectAfter: "10m", "30s", "500" (no unit: milliseconds), or ISO-8601 ("PT5M", "P1DT2H").
// Values beyond what a time.Duration holds are an error here (Java would take them).
func parseRemotingDuration(v string) (time.Duration, error) {
	if m := simpleDuration.FindStringSubmatch(v); m != nil {
		unit := time.Millisecond
		if m[2] != "" {
			u, ok := durationUnits[strings.ToLower(m[2])]
			if !ok {
				return 0, fmt.Errorf("'%s' is not a valid simple duration: unknown unit '%s'", v, m[2])
			}
			unit = u
		}
		n, err := strconv.ParseInt(m[1], 10, 64)
		if err != nil || n > math.MaxInt64/int64(unit) || n < math.MinInt64/int64(unit) {
			return 0, fmt.Errorf("'%s' is not a valid simple duration: out of range", v)
		}
		return time.Duration(n) * unit, nil
	}
	if strings.HasPrefix(strings.TrimLeft(v, "+-"), "P") || strings.HasPrefix(strings.TrimLeft(v, "+-"), "p") {
		m := isoDuration.FindStringSubmatch(v)
		if m == nil || strings.EqualFold(strings.TrimLeft(v, "+-"), "P") || strings.HasSuffix(strings.ToUpper(v), "T") {
			return 0, fmt.Errorf("'%s' is not a valid ISO-8601 duration", v)
		}
		var total float64
		for i, unit := range []time.Duration{24 * time.Hour, time.Hour, time.Minute} {
			if m[i+2] != "" {
				n, err := strconv.ParseFloat(m[i+2], 64)
				if err != nil {
					return 0, fmt.Errorf("'%s' is not a valid ISO-8601 duration", v)
				}
				total += n * float64(unit)
			}
		}
		if m[5] != "" {
			sec, err := strconv.ParseFloat(m[5], 64)
			if err != nil {
				return 0, fmt.Errorf("'%s' is not a valid ISO-8601 duration", v)
			}
			total += sec * float64(time.Second)
		}
		if total > math.MaxInt64 {
			return 0, fmt.Errorf("'%s' is not a valid ISO-8601 duration: out of range", v)
		}
		if m[1] == "-" {
			total = -total
		}
		return time.Duration(total), nil
	}
	return 0, fmt.Errorf("'%s' is not a valid duration", v)
}
