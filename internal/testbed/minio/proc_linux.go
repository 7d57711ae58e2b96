package minio

import "syscall"

// sysProcAttr kills MinIO when the test binary dies without running its
// cleanups, so no server outlives its test.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
