//go:build !linux

package testenv

import "syscall"

// childSysProcAttr has no parent-death signal to ask for outside Linux; Stop remains the only
// cleanup there.
func childSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{}
}
