package testbed

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// LockHostPackages serialises tests that install or purge packages on this
// machine: `go test ./...` runs packages' tests in parallel, and two tests
// purging and installing the same package would race. The lock is held
// until the test ends.
func LockHostPackages(t testing.TB) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(os.TempDir(), "bootstrap-e2e-host-packages.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
}
