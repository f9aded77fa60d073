//go:build !linux

package statuspagetest

import (
	"errors"
	"os"
	"syscall"
)

// browserSysProcAttr asks for nothing outside Linux: the browser tests run on Linux (Debian's
// chromium), and this file only keeps the package building elsewhere.
func browserSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}

// killGroup kills the browser process alone; without a process group, its children are left to
// exit with it.
func killGroup(p *os.Process) error {
	if p == nil {
		return nil
	}
	if err := p.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}
