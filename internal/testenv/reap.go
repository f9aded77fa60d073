package testenv

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ownerFile, in an Env's folder, names the process that started it ("<pid> <executable>") for as
// long as its components may be running. envtest starts etcd and kube-apiserver in their own
// process group and offers no parent-death signal, so a test binary killed by go test's timeout
// (which panics past every defer) leaves them running; on a shared 2-core machine they would eat
// CPU and memory until someone noticed. The next Start on the machine finds folders whose owner
// is gone and ends what they left behind (reapOrphans).
const ownerFile = "owner"

// dirPattern is how Start names its folders in os.TempDir(); reapOrphans looks only at these.
const dirPattern = "testenv-*"

// writeOwner records this process as the owner of e.dir.
func (e *Env) writeOwner() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("recording the folder's owner: %w", err)
	}
	line := strconv.Itoa(os.Getpid()) + " " + exe + "\n"
	if err := os.WriteFile(filepath.Join(e.dir, ownerFile), []byte(line), 0o600); err != nil {
		return fmt.Errorf("recording the folder's owner: %w", err)
	}
	return nil
}

// parseOwner reads an owner file's "<pid> <executable>" line.
func parseOwner(data string) (pid int, exe string, ok bool) {
	pidText, exe, found := strings.Cut(strings.TrimSpace(data), " ")
	if !found || exe == "" {
		return 0, "", false
	}
	pid, err := strconv.Atoi(pidText)
	if err != nil || pid <= 0 {
		return 0, "", false
	}
	return pid, exe, true
}

// reapOrphans ends the components of every Env whose owner process is gone and removes its
// folder, returning the folders it cleaned. Folders without an owner file are left alone: they
// are being created right now, or were stopped cleanly and kept for their logs. Best effort: a
// folder it cannot clean is skipped, since the caller's own start does not depend on it.
func reapOrphans() []string {
	dirs, err := filepath.Glob(filepath.Join(os.TempDir(), dirPattern))
	if err != nil {
		return nil
	}
	var reaped []string
	for _, dir := range dirs {
		data, err := os.ReadFile(filepath.Join(dir, ownerFile))
		if err != nil {
			continue
		}
		pid, exe, ok := parseOwner(string(data))
		if !ok || processAlive(pid, exe) {
			continue
		}
		if !killProcessesNaming(dir) {
			continue
		}
		if os.RemoveAll(dir) == nil {
			reaped = append(reaped, dir)
		}
	}
	return reaped
}
