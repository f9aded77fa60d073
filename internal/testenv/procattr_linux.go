package testenv

import "syscall"

// childSysProcAttr asks the kernel to SIGKILL the child when the thread that started it dies. A
// test binary killed by go test's timeout or by a signal never runs Stop, and on a shared 2-core
// machine a leftover kube-controller-manager would burn CPU until someone notices. The signal is
// tied to the starting OS thread, but Go only ends threads whose goroutine locked them and exited,
// which the goroutine calling Start does not do.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
