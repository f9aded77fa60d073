package deploy

// hadolint is not packaged for Debian nor published as a Go module, and this machine has no
// container engine, so the repository's Dockerfile is checked here instead: its essentials read
// from the file (TestDockerfile), and its build step run for real on a build context assembled by
// the .dockerignore rules (TestDockerBuildContext). The parser below reads the subset of the
// Dockerfile syntax that this repository uses (no escape directive, no heredocs) and says so when
// it meets anything else.

import (
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// instruction is one Dockerfile instruction, its continuation lines joined.
type instruction struct {
	Line  int      // 1-based line where it starts
	Cmd   string   // upper case: FROM, RUN, ...
	Flags []string // leading --name=value options of FROM, RUN, COPY and ADD, in order
	Args  string   // the rest, trimmed
	Exec  []string // Args as a JSON array (exec form); nil for shell form
}

// flagged are the instructions whose leading --options are flags rather than part of the command.
var flagged = []string{"FROM", "RUN", "COPY", "ADD"}

var cmdRE = regexp.MustCompile(`^[A-Za-z]+$`)

// parseDockerfile splits src into instructions as BuildKit does for this subset: a line starting
// with # is a comment (also between continuation lines), a trailing backslash continues the line,
// and blank lines are skipped.
func parseDockerfile(src string) ([]instruction, error) {
	var out []instruction
	var cur strings.Builder
	start := 0 // line of the instruction being continued; 0 when none is
	lines := strings.Split(strings.ReplaceAll(src, "\r\n", "\n"), "\n")
	for i, raw := range lines {
		trimmed := strings.TrimSpace(raw)
		if strings.HasPrefix(trimmed, "#") {
			if i < 10 && start == 0 && strings.HasPrefix(strings.ToLower(strings.ReplaceAll(trimmed, " ", "")), "#escape=") {
				return nil, fmt.Errorf("line %d: the escape directive is not supported by this parser", i+1)
			}
			continue
		}
		// Blank lines are skipped, inside a continued instruction too (BuildKit warns there).
		if trimmed == "" {
			continue
		}
		if start == 0 {
			start = i + 1
		}
		text := strings.TrimRight(raw, " \t")
		if cont, ok := strings.CutSuffix(text, `\`); ok {
			cur.WriteString(cont)
			continue
		}
		cur.WriteString(text)
		in, err := parseInstruction(start, cur.String())
		if err != nil {
			return nil, err
		}
		out = append(out, in)
		cur.Reset()
		start = 0
	}
	// A continuation at the end of the file ends the instruction, as in BuildKit.
	if start != 0 && strings.TrimSpace(cur.String()) != "" {
		in, err := parseInstruction(start, cur.String())
		if err != nil {
			return nil, err
		}
		out = append(out, in)
	}
	return out, nil
}

func parseInstruction(line int, text string) (instruction, error) {
	cmd, rest, _ := strings.Cut(strings.TrimSpace(text), " ")
	if !cmdRE.MatchString(cmd) {
		return instruction{}, fmt.Errorf("line %d: %q is not an instruction", line, cmd)
	}
	in := instruction{Line: line, Cmd: strings.ToUpper(cmd)}
	rest = strings.TrimSpace(rest)
	if slices.Contains(flagged, in.Cmd) {
		for strings.HasPrefix(rest, "--") {
			flag, after, _ := strings.Cut(rest, " ")
			in.Flags = append(in.Flags, flag)
			rest = strings.TrimSpace(after)
		}
	}
	if strings.HasPrefix(rest, "<<") {
		return instruction{}, fmt.Errorf("line %d: heredocs are not supported by this parser", line)
	}
	in.Args = rest
	if strings.HasPrefix(rest, "[") {
		var exec []string
		if err := json.Unmarshal([]byte(rest), &exec); err == nil {
			in.Exec = exec
		}
	}
	return in, nil
}

// stage is one FROM and the instructions up to the next.
type stage struct {
	From         instruction
	Image, Name  string
	Instructions []instruction
}

func stages(ins []instruction) ([]stage, error) {
	var out []stage
	for _, in := range ins {
		if in.Cmd == "FROM" {
			f := strings.Fields(in.Args)
			s := stage{From: in}
			switch {
			case len(f) == 1:
				s.Image = f[0]
			case len(f) == 3 && strings.EqualFold(f[1], "AS"):
				s.Image, s.Name = f[0], f[2]
			default:
				return nil, fmt.Errorf("line %d: FROM %q: want IMAGE [AS NAME]", in.Line, in.Args)
			}
			out = append(out, s)
			continue
		}
		if len(out) == 0 {
			if in.Cmd == "ARG" {
				continue // global build argument
			}
			return nil, fmt.Errorf("line %d: %s before the first FROM", in.Line, in.Cmd)
		}
		out[len(out)-1].Instructions = append(out[len(out)-1].Instructions, in)
	}
	return out, nil
}

func (s stage) last(cmd string) (instruction, bool) {
	for i := len(s.Instructions) - 1; i >= 0; i-- {
		if s.Instructions[i].Cmd == cmd {
			return s.Instructions[i], true
		}
	}
	return instruction{}, false
}

// imageTag splits an image reference into its name and its tag or digest ("" when neither).
func imageTag(ref string) (name, tag string) {
	if n, d, ok := strings.Cut(ref, "@"); ok {
		return n, "@" + d
	}
	slash := strings.LastIndex(ref, "/")
	if colon := strings.LastIndex(ref, ":"); colon > slash {
		return ref[:colon], ref[colon+1:]
	}
	return ref, ""
}

func readDockerfile(t *testing.T) []stage {
	t.Helper()
	src, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	ins, err := parseDockerfile(string(src))
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	st, err := stages(ins)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	if len(st) < 2 {
		t.Fatalf("Dockerfile has %d stages, want a builder and a runtime stage", len(st))
	}
	return st
}

// buildRun returns the RUN instruction of the builder stage that runs go build.
func buildRun(t *testing.T, st []stage) instruction {
	t.Helper()
	for _, in := range st[0].Instructions {
		if in.Cmd == "RUN" && strings.Contains(in.Args, "go build") {
			return in
		}
	}
	t.Fatal("the first stage has no RUN with go build")
	return instruction{}
}

// TestDockerfile checks what a reviewer (or hadolint's DL3006/DL3007/DL3002 rules) would: a
// multi-stage build whose base images are all tagged and none "latest", a Go toolchain matching
// go.mod, a static and stamped build, and a runtime stage that runs the binary as the numeric
// non-root user with the documented entry point.
func TestDockerfile(t *testing.T) {
	st := readDockerfile(t)
	names := map[string]bool{}
	for _, s := range st {
		if !names[s.Image] && s.Image != "scratch" {
			_, tag := imageTag(s.Image)
			if tag == "" || tag == "latest" || strings.Contains(s.Image, "$") {
				t.Errorf("line %d: base image %q is not pinned (want name:tag or name@sha256:..., never latest or a variable)", s.From.Line, s.Image)
			}
		}
		if s.Name != "" {
			names[s.Name] = true
		}
	}

	builder, final := st[0], st[len(st)-1]
	gomod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	toolchain := regexp.MustCompile(`(?m)^toolchain go(\S+)$`).FindSubmatch(gomod)
	if toolchain == nil {
		t.Fatal("go.mod has no toolchain line")
	}
	if got, want := builder.Image, "golang:"+string(toolchain[1]); got != want {
		t.Errorf("builder image = %q, want %q (go.mod's toolchain: an older image would download the toolchain at build time)", got, want)
	}

	run := buildRun(t, st)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags "-s -w -X main.version=${VERSION}"`, "./cmd/provisioner"} {
		if !strings.Contains(run.Args, want) {
			t.Errorf("line %d: go build step lacks %s", run.Line, want)
		}
	}
	if !slices.ContainsFunc(builder.Instructions, func(in instruction) bool { return in.Cmd == "ARG" && strings.HasPrefix(in.Args, "VERSION") }) {
		t.Error("builder stage declares no ARG VERSION")
	}

	if got, want := final.Image, "gcr.io/distroless/static-debian12:nonroot"; got != want {
		t.Errorf("runtime image = %q, want %q", got, want)
	}
	user, ok := final.last("USER")
	if !ok || user.Args != "65532:65532" {
		t.Errorf("runtime stage USER = %q, want 65532:65532 (numeric, so that runAsNonRoot can be verified)", user.Args)
	}
	for cmd, want := range map[string][]string{"ENTRYPOINT": {"/provisioner"}, "CMD": {"run"}} {
		in, ok := final.last(cmd)
		if !ok {
			t.Errorf("runtime stage has no %s", cmd)
			continue
		}
		if diff := cmp.Diff(want, in.Exec); diff != "" {
			t.Errorf("line %d: %s in exec form (-want +got):\n%s", in.Line, cmd, diff)
		}
	}
	for _, in := range final.Instructions {
		if in.Cmd == "RUN" {
			t.Errorf("line %d: RUN in the runtime stage: distroless has no shell", in.Line)
		}
	}
}

func TestParseDockerfile(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		want    []instruction
		wantErr string
	}{
		{
			name: "comments, continuation, flags, exec form",
			src: "# syntax=docker/dockerfile:1\nFROM --platform=$BUILDPLATFORM golang:1.26 AS build\n\n" +
				"RUN --mount=type=cache,target=/x \\\n    # a comment inside\n    go build \\\n    ./cmd\nentrypoint [\"/p\"]\n",
			want: []instruction{
				{Line: 2, Cmd: "FROM", Flags: []string{"--platform=$BUILDPLATFORM"}, Args: "golang:1.26 AS build"},
				{Line: 4, Cmd: "RUN", Flags: []string{"--mount=type=cache,target=/x"}, Args: "go build     ./cmd"},
				{Line: 8, Cmd: "ENTRYPOINT", Args: `["/p"]`, Exec: []string{"/p"}},
			},
		},
		{name: "shell form that looks like JSON", src: "CMD [not json\n", want: []instruction{{Line: 1, Cmd: "CMD", Args: "[not json"}}},
		{name: "flags only where Docker has them", src: "USER --x\n", want: []instruction{{Line: 1, Cmd: "USER", Args: "--x"}}},
		{name: "continuation at the end", src: "RUN a \\\n", want: []instruction{{Line: 1, Cmd: "RUN", Args: "a"}}},
		{name: "blank line inside a continuation", src: "RUN a \\\n\n  b\n", want: []instruction{{Line: 1, Cmd: "RUN", Args: "a   b"}}},
		{name: "not an instruction", src: "FROM a\n1RUN b\n", wantErr: "line 2"},
		{name: "escape directive", src: "# escape=`\nFROM a\n", wantErr: "escape directive"},
		{name: "heredoc", src: "RUN <<EOF\n", wantErr: "heredocs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseDockerfile(tt.src)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzParseDockerfile: the parser never panics, and what it returns reads back the same when
// written one instruction a line.
func FuzzParseDockerfile(f *testing.F) {
	if src, err := os.ReadFile("../Dockerfile"); err == nil {
		f.Add(string(src))
	}
	f.Add("FROM a AS b\nRUN --mount=x y \\\n z\nCMD [\"run\"]\n")
	f.Add("# c\n\n\\\nUSER 1\n")
	f.Fuzz(func(t *testing.T, src string) {
		ins, err := parseDockerfile(src)
		if err != nil {
			return
		}
		var b strings.Builder
		for _, in := range ins {
			if in.Cmd == "" || strings.ToUpper(in.Cmd) != in.Cmd || strings.ContainsAny(in.Args, "\n") {
				t.Fatalf("malformed instruction %+v", in)
			}
			line := strings.Join(slices.Concat([]string{in.Cmd}, in.Flags, []string{in.Args}), " ")
			if strings.HasSuffix(strings.TrimRight(line, " \t"), `\`) {
				return // would continue onto the next line: not a round trip
			}
			b.WriteString(line + "\n")
		}
		again, err := parseDockerfile(b.String())
		if err != nil {
			t.Fatalf("re-parsing %q: %v", b.String(), err)
		}
		strip := func(ins []instruction) []instruction {
			out := slices.Clone(ins)
			for i := range out {
				out[i].Line = 0
			}
			return out
		}
		if diff := cmp.Diff(strip(ins), strip(again)); diff != "" {
			t.Fatalf("round trip of %q (-first +second):\n%s", src, diff)
		}
	})
}

// ignorePattern is one .dockerignore line, compiled as moby/patternmatcher does for the syntax
// used here: * and ? within a path segment, ** across segments, ! to re-include. A pattern also
// matches everything under a folder it matches.
type ignorePattern struct {
	text    string // cleaned, without the leading !
	negate  bool
	literal bool // no wildcard: can only match itself and what lies below it
	re      *regexp.Regexp
}

func parseIgnore(src string) ([]ignorePattern, error) {
	var out []ignorePattern
	for i, line := range strings.Split(src, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		p := ignorePattern{}
		if rest, ok := strings.CutPrefix(line, "!"); ok {
			p.negate, line = true, strings.TrimSpace(rest)
		}
		if !utf8.ValidString(line) {
			return nil, fmt.Errorf("line %d: not UTF-8", i+1)
		}
		if strings.ContainsAny(line, `[\`) {
			return nil, fmt.Errorf("line %d: %q: character classes and escapes are not supported by this matcher", i+1, line)
		}
		p.text = strings.TrimPrefix(path.Clean("/"+line), "/")
		if p.text == "" {
			return nil, fmt.Errorf("line %d: %q matches the whole context", i+1, line)
		}
		p.literal = !strings.ContainsAny(p.text, "*?")
		var re strings.Builder
		re.WriteString("^")
		for j := 0; j < len(p.text); j++ {
			switch c := p.text[j]; {
			case strings.HasPrefix(p.text[j:], "**/"):
				re.WriteString("(.*/)?")
				j += 2
			case strings.HasPrefix(p.text[j:], "**"):
				re.WriteString(".*")
				j++
			case c == '*':
				re.WriteString("[^/]*")
			case c == '?':
				re.WriteString("[^/]")
			default:
				re.WriteString(regexp.QuoteMeta(p.text[j : j+1]))
			}
		}
		re.WriteString("$")
		p.re = regexp.MustCompile(re.String())
		out = append(out, p)
	}
	return out, nil
}

// ignored reports whether the context path rel (slash-separated) is left out: the last pattern
// matching it or one of its parent folders decides.
func ignored(patterns []ignorePattern, rel string) bool {
	out := false
	for _, p := range patterns {
		match := false
		for prefix := rel; prefix != "." && prefix != "/" && prefix != ""; prefix = path.Dir(prefix) {
			if p.re.MatchString(prefix) {
				match = true
				break
			}
		}
		if match {
			out = !p.negate
		}
	}
	return out
}

// mayReinclude reports whether anything below the ignored folder dir could be re-included, so
// that the walk can skip .git and .cache instead of reading them.
func mayReinclude(patterns []ignorePattern, dir string) bool {
	for _, p := range patterns {
		if p.negate && (!p.literal || strings.HasPrefix(p.text, dir+"/")) {
			return true
		}
	}
	return false
}

func TestDockerignoreMatcher(t *testing.T) {
	patterns, err := parseIgnore("*\n!go.mod\n!cmd/\n**/*_test.go\n**/testdata\n# comment\n!cmd/keep_test.go\n")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want bool
	}{
		{"go.mod", false},
		{"go.sum", true},
		{".git/HEAD", true},
		{"cmd", false},
		{"cmd/provisioner/main.go", false},
		{"cmd/provisioner/main_test.go", true},
		{"cmd/keep_test.go", false},
		{"cmd/provisioner/testdata/fuzz/x", true},
		{"internal/x.go", true},
	}
	for _, tt := range tests {
		if got := ignored(patterns, tt.path); got != tt.want {
			t.Errorf("ignored(%q) = %t, want %t", tt.path, got, tt.want)
		}
	}
	if _, err := parseIgnore("[a-z]*\n"); err == nil {
		t.Error("character class accepted")
	}
}

// FuzzParseIgnore: any .dockerignore text either is refused or compiles (the regexp built from
// it never panics), and a pattern without wildcards matches its own path and what lies below it.
func FuzzParseIgnore(f *testing.F) {
	if src, err := os.ReadFile("../.dockerignore"); err == nil {
		f.Add(string(src))
	}
	f.Add("a/**/b?c\n!d.go\n")
	f.Fuzz(func(t *testing.T, src string) {
		patterns, err := parseIgnore(src)
		if err != nil {
			return
		}
		for _, p := range patterns {
			if !p.literal {
				continue
			}
			for _, rel := range []string{p.text, p.text + "/x"} {
				if got := ignored([]ignorePattern{p}, rel); got == p.negate {
					t.Fatalf("pattern %q (negate %t): ignored(%q) = %t", p.text, p.negate, rel, got)
				}
			}
		}
	})
}

// TestDockerBuildContext runs the Dockerfile's go build step as the image build would: on a copy
// of only the files .dockerignore lets into the build context, with the same arguments. It proves
// the context holds everything the binary needs, that the binary is static and stripped with no
// build paths in it, and that VERSION reaches `provisioner version`. It compiles the whole program
// with -trimpath (its own build cache entries), so -short skips it.
func TestDockerBuildContext(t *testing.T) {
	if testing.Short() {
		t.Skip("compiles the provisioner; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("checks an ELF binary")
	}
	st := readDockerfile(t)
	run := buildRun(t, st)
	src, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := parseIgnore(string(src))
	if err != nil {
		t.Fatalf(".dockerignore: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	ctxDir := filepath.Join(t.TempDir(), "context")
	copied := 0
	err = filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil || rel == "." {
			return err
		}
		rel = filepath.ToSlash(rel)
		if ignored(patterns, rel) {
			if de.IsDir() && !mayReinclude(patterns, rel) {
				return filepath.SkipDir
			}
			return nil
		}
		if de.IsDir() {
			return nil
		}
		if !de.Type().IsRegular() {
			return fmt.Errorf("%s: only regular files expected in the build context", rel)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		dst := filepath.Join(ctxDir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		copied++
		return os.WriteFile(dst, data, 0o644)
	})
	if err != nil {
		t.Fatalf("assembling the build context: %v", err)
	}
	t.Logf("build context: %d files", copied)
	for _, must := range []string{"go.mod", "go.sum", "cmd/provisioner/main.go"} {
		if _, err := os.Stat(filepath.Join(ctxDir, must)); err != nil {
			t.Fatalf("build context lacks %s", must)
		}
	}
	for _, mustNot := range []string{".cache", ".git", "deploy"} {
		if _, err := os.Stat(filepath.Join(ctxDir, mustNot)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("build context holds %s", mustNot)
		}
	}

	bin := filepath.Join(t.TempDir(), "provisioner")
	const version = "v9.8.7-dockerfile-test"
	cmd := exec.Command("sh", "-ec", strings.ReplaceAll(run.Args, "/out/provisioner", bin))
	cmd.Dir = ctxDir
	// The build arguments BuildKit would pass; GOFLAGS and GOWORK cleared as in the golang image.
	cmd.Env = append(os.Environ(), "TARGETOS="+runtime.GOOS, "TARGETARCH="+runtime.GOARCH, "VERSION="+version, "GOFLAGS=", "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("line %d: %s: %v\n%s", run.Line, run.Args, err, out)
	}

	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("provisioner version: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "provisioner "+version; got != want {
		t.Errorf("provisioner version = %q, want %q", got, want)
	}

	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Error("binary has a dynamic loader (PT_INTERP): not static, distroless/static cannot run it")
		}
	}
	if f.Section(".symtab") != nil {
		t.Error("binary has a symbol table: -s did not apply")
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), ctxDir) {
		t.Errorf("binary contains the build path %s: -trimpath did not apply", ctxDir)
	}
}
