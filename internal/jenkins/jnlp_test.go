package jenkins

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const testSecret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

// The two shapes Jenkins serves, written as its views render them (no public capture of either
// exists; see SOURCES.md): jenkins-agent.jnlp.jelly since 2.344, slave-agent.jnlp.jelly before.
const (
	jnlpNew = `<jnlp><application-desc><argument>` + testSecret + `</argument><argument>linux-x7k2p</argument>` +
		`<argument>-webSocket</argument><argument>-workDir</argument><argument>/home/jenkins/agent</argument>` +
		`<argument>-internalDir</argument><argument>remoting</argument>` +
		`<argument>-url</argument><argument>https://jenkins.example.com/</argument></application-desc></jnlp>`
	jnlpNewTunnel = `<jnlp><application-desc><argument>` + testSecret + `</argument><argument>linux-x7k2p</argument>` +
		`<argument>-tunnel</argument><argument>jenkins-agent:50000</argument>` +
		`<argument>-url</argument><argument>http://jenkins:8080/</argument></application-desc></jnlp>`
	jnlpOld = `<?xml version="1.0" encoding="UTF-8"?>
<jnlp spec="1.0+" codebase="https://jenkins.example.com/computer/linux-x7k2p/">
  <information>
    <title>Agent for linux-x7k2p</title>
    <vendor>Jenkins project</vendor>
    <homepage href="https://jenkins-ci.org/"/>
  </information>
  <security>
    <all-permissions/>
  </security>
  <resources>
    <j2se version="1.8+" java-vm-args=""/>
    <jar href="https://jenkins.example.com/jnlpJars/remoting.jar"/>
  </resources>
  <application-desc main-class="hudson.remoting.jnlp.Main">
    <argument>` + testSecret + `</argument>
    <argument>linux-x7k2p</argument>
    <argument>-workDir</argument>
    <argument>/home/jenkins/agent</argument>
    <argument>-internalDir</argument>
    <argument>remoting</argument>
    <argument>-failIfWorkDirIsMissing</argument>
    <argument>-url</argument>
    <argument>https://jenkins.example.com/</argument>
    <argument>-url</argument>
    <argument>http://10.0.0.5:8080/</argument>
  </application-desc>
</jnlp>`
)

func TestParseJNLP(t *testing.T) {
	tests := []struct {
		name    string
		data    string
		want    JNLP
		wantErr string
	}{
		{"2.344+ with WebSocket", jnlpNew, JNLP{Secret: testSecret, Name: "linux-x7k2p", URL: "https://jenkins.example.com/",
			WorkDir: "/home/jenkins/agent", WebSocket: true}, ""},
		{"2.344+ with tunnel, work dir disabled", jnlpNewTunnel, JNLP{Secret: testSecret, Name: "linux-x7k2p",
			URL: "http://jenkins:8080/", Tunnel: "jenkins-agent:50000"}, ""},
		// The first -url is the configured root URL; the second is the browser's and is ignored.
		{"Java Web Start, before 2.344", jnlpOld, JNLP{Secret: testSecret, Name: "linux-x7k2p",
			URL: "https://jenkins.example.com/", WorkDir: "/home/jenkins/agent"}, ""},
		{"html page", `<html><head><title>Jenkins</title></head><body>Sign in</body></html>`, JNLP{}, "root element is <html>"},
		{"short secret", strings.Replace(jnlpNew, testSecret, "abc", 1), JNLP{}, "64-hex-character secret"},
		{"no url", `<jnlp><application-desc><argument>` + testSecret + `</argument><argument>n</argument></application-desc></jnlp>`,
			JNLP{}, "no -url"},
		{"url without value", `<jnlp><application-desc><argument>` + testSecret + `</argument><argument>n</argument><argument>-url</argument></application-desc></jnlp>`,
			JNLP{}, "has no value"},
		{"one argument", `<jnlp><application-desc><argument>` + testSecret + `</argument></application-desc></jnlp>`, JNLP{}, "at least"},
		{"arguments elsewhere are not arguments", `<jnlp><resources><argument>` + testSecret + `</argument><argument>n</argument></resources></jnlp>`,
			JNLP{}, "0 arguments"},
		{"not xml", "secret=abc", JNLP{}, "jnlp"},
		{"truncated", jnlpNew[:len(jnlpNew)-20], JNLP{}, "jnlp"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseJNLP([]byte(tt.data))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseJNLP error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseJNLP: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("ParseJNLP (-want +got):\n%s", diff)
			}
		})
	}
}

func FuzzParseJNLP(f *testing.F) {
	for _, s := range []string{jnlpNew, jnlpNewTunnel, jnlpOld} {
		f.Add([]byte(s))
	}
	// The recorded node config is XML of another shape: a parser must reject it, not crash.
	f.Add(readFixture(f, "node-config_dumbslave_jnlp_minimal_jenkins-core-test.xml"))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := ParseJNLP(data)
		if err != nil {
			return
		}
		if !isHex64(j.Secret) || j.Name == "" || strings.HasPrefix(j.Name, "-") || j.URL == "" {
			t.Fatalf("ParseJNLP(%q) = %+v without error, but the result is not usable", data, j)
		}
	})
}
