package jenkins

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// JNLP is what a node's jenkins-agent.jnlp tells an inbound agent: the arguments of
// hudson.remoting.jnlp.Main.
type JNLP struct {
	Secret, Name, URL, Tunnel, WorkDir string
	WebSocket                          bool
}

// maxJNLP bounds the file ParseJNLP reads: the real one is well under 2 KB.
const maxJNLP = 1 << 20

// Options of hudson.remoting.jnlp.Main / Launcher that take a value; knowing them keeps a value
// that starts with '-' from being read as a flag, and a flag from being read as a value.
var jnlpValueOptions = map[string]bool{
	"-url": true, "-tunnel": true, "-workDir": true, "-internalDir": true, "-credentials": true,
	"-proxyCredentials": true, "-jar-cache": true, "-cert": true, "-agentLog": true,
	"-loggingConfig": true, "-protocols": true, "-direct": true, "-instanceIdentity": true,
	"-secret": true, "-name": true,
}

// Its errors never quote the input: a file that is not the expected one may still hold the secret.
//
// ParseJNLP reads both shapes Jenkins has served: since 2.344 a bare <jnlp><application-desc> with one
// <argument> per token; before, a Java Web Start file with the same arguments under
// <application-desc main-class="hudson.remoting.jnlp.Main">. The first argument is the secret (64
// hex characters), the second the node name; options follow. The first -url is Jenkins' configured
// root URL (a second one, from the browser's request, may follow and is ignored).
func ParseJNLP(data []byte) (JNLP, error) {
	if len(data) > maxJNLP {
		return JNLP{}, fmt.Errorf("jenkins: jnlp: %d bytes, more than an agent file can be", len(data))
	}
	args, err := jnlpArguments(data)
	if err != nil {
		return JNLP{}, err
	}
	if len(args) < 2 {
		return JNLP{}, fmt.Errorf("jenkins: jnlp: %d arguments, want at least the secret and the node name", len(args))
	}
	j := JNLP{Secret: args[0], Name: args[1]}
	if !isHex64(j.Secret) {
		return JNLP{}, fmt.Errorf("jenkins: jnlp: first argument is not a 64-hex-character secret (%d characters)", len(j.Secret))
	}
	if j.Name == "" || strings.HasPrefix(j.Name, "-") {
		return JNLP{}, errors.New("jenkins: jnlp: second argument is not a node name")
	}
	for i := 2; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-webSocket":
			j.WebSocket = true
		case jnlpValueOptions[a]:
			if i+1 >= len(args) {
				return JNLP{}, fmt.Errorf("jenkins: jnlp: option %s has no value", a)
			}
			v := args[i+1]
			i++
			switch a {
			case "-url":
				if j.URL == "" {
					j.URL = v
				}
			case "-tunnel":
				j.Tunnel = v
			case "-workDir":
				j.WorkDir = v
			}
		}
		// Other flags (-failIfWorkDirIsMissing, -headless, -noReconnect, ...) carry nothing we use.
	}
	if j.URL == "" {
		return JNLP{}, errors.New("jenkins: jnlp: no -url argument")
	}
	return j, nil
}

// jnlpArguments collects the text of every <argument> directly under <jnlp><application-desc>.
// A streaming decoder is used so the two shapes need no separate schema, and so entities are never
// expanded (encoding/xml knows only the five predefined ones).
func jnlpArguments(data []byte) ([]string, error) {
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	var (
		path    []string
		args    []string
		sawJNLP bool
		inArg   bool
		text    strings.Builder
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			// encoding/xml's messages quote names and entities from the input, which may be the
			// secret: say only where.
			var se *xml.SyntaxError
			if errors.As(err, &se) {
				return nil, fmt.Errorf("jenkins: jnlp: not well-formed XML at line %d", se.Line)
			}
			return nil, errors.New("jenkins: jnlp: not well-formed XML")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			path = append(path, t.Name.Local)
			if len(path) == 1 {
				if t.Name.Local != "jnlp" {
					// A short all-letter name (html, hudson) tells what came; a secret is 64 hex
					// characters with digits and is never one.
					if isShortWord(t.Name.Local) {
						return nil, fmt.Errorf("jenkins: jnlp: root element is <%s>, want <jnlp>", t.Name.Local)
					}
					return nil, fmt.Errorf("jenkins: jnlp: root element is not <jnlp> (a %d-character name)", len(t.Name.Local))
				}
				sawJNLP = true
			}
			if len(path) == 3 && path[1] == "application-desc" && t.Name.Local == "argument" {
				inArg = true
				text.Reset()
			}
		case xml.EndElement:
			if inArg && len(path) == 3 {
				args = append(args, strings.TrimSpace(text.String()))
				inArg = false
			}
			if len(path) > 0 {
				path = path[:len(path)-1]
			}
		case xml.CharData:
			if inArg {
				text.Write(t)
			}
		}
	}
	if !sawJNLP {
		return nil, errors.New("jenkins: jnlp: no <jnlp> element")
	}
	return args, nil
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// isShortWord: at most 16 ASCII letters.
func isShortWord(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'z' {
			return false
		}
	}
	return true
}
