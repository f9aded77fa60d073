package testenv

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// processAlive reports whether pid is still the process that wrote the owner file: the pid must
// exist and run the same executable, so a recycled pid does not keep an orphan alive forever.
func processAlive(pid int, exe string) bool {
	got, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		// Gone, or not ours to inspect: only the former is possible for root, and for anyone
		// else treating it as alive is the safe mistake.
		return !os.IsNotExist(err)
	}
	// A running program whose file was replaced or removed still owns its folder.
	return strings.TrimSuffix(got, " (deleted)") == exe
}

// killProcessesNaming SIGKILLs every process whose command line names a path inside dir: the
// etcd (--data-dir), kube-apiserver (--cert-dir) and kube-controller-manager (--kubeconfig) an
// Env started there, and nothing else, since those folder names are unique. It reports whether
// none is left that it failed to kill.
func killProcessesNaming(dir string) bool {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	needle := []byte(filepath.Clean(dir) + string(filepath.Separator))
	self := os.Getpid()
	clean := true
	for _, entry := range entries {
		pid, err := strconv.Atoi(entry.Name())
		if err != nil || pid == self {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", entry.Name(), "cmdline"))
		if err != nil || !bytes.Contains(cmdline, needle) {
			continue
		}
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && err != syscall.ESRCH {
			clean = false
		}
	}
	return clean
}
