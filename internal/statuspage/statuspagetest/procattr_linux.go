package statuspagetest

import (
	"errors"
	"os"
	"syscall"
)

// browserSysProcAttr puts Chromium in a process group of its own, so killGroup reaches the renderer
// and utility processes it forks, and asks the kernel to kill the browser if the test binary dies
// (go test's timeout never runs our cleanup).
func browserSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup kills every process in the browser's process group. A group already gone is success.
func killGroup(p *os.Process) error {
	if p == nil {
		return nil
	}
	if err := syscall.Kill(-p.Pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	return nil
}
