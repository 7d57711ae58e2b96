package state

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func openDir(t *testing.T) *Dir {
	t.Helper()
	d, err := Open(filepath.Join(t.TempDir(), "var/lib/bootstrap"), nil)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestOpenCreatesPrivateDir(t *testing.T) {
	// Parents follow the umask like any system directory; the state
	// directory is 0700 even under a permissive one.
	old := syscall.Umask(0o002)
	defer syscall.Umask(old)
	base := t.TempDir()
	p := filepath.Join(base, "a/b/state")
	d, err := Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if d.Path() != p {
		t.Errorf("Path() = %q, want %q", d.Path(), p)
	}
	for dir, want := range map[string]os.FileMode{"a": 0o755, "a/b": 0o755, "a/b/state": 0o700} {
		fi, err := os.Stat(filepath.Join(base, dir))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != want {
			t.Errorf("%s mode = %v, want %v", dir, fi.Mode().Perm(), want)
		}
	}
	f := filepath.Join(base, "file")
	os.WriteFile(f, nil, 0o600)
	if _, err := Open(f, nil); err == nil {
		t.Error("Open of a regular file succeeded")
	}
	if _, err := Open("", nil); err == nil {
		t.Error("Open of an empty path succeeded")
	}
}

// TestLockAcrossProcesses checks the lock excludes another process, names
// its pid, is released by the kernel when that process is SIGKILLed, and
// that Holder reports it throughout.
func TestLockAcrossProcesses(t *testing.T) {
	d := openDir(t)
	if pid, held := d.Holder(); held {
		t.Fatalf("Holder before any lock = %d, true", pid)
	}
	c := startChild(t, "lock", d.Path())
	childPid := c.cmd.Process.Pid

	tests := []struct {
		name    string
		wait    bool
		timeout time.Duration
		wantCtx bool
	}{
		{"no wait fails at once", false, time.Minute, false},
		{"wait gives up when ctx ends", true, 150 * time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), tt.timeout)
			defer cancel()
			start := time.Now()
			unlock, err := d.Lock(ctx, tt.wait)
			if err == nil {
				unlock()
				t.Fatal("Lock succeeded while another process holds it")
			}
			if !errors.Is(err, ErrLocked) {
				t.Errorf("err = %v, want ErrLocked", err)
			}
			if !strings.Contains(err.Error(), "pid "+strconv.Itoa(childPid)) {
				t.Errorf("err = %v, want it to name pid %d", err, childPid)
			}
			if got := errors.Is(err, context.DeadlineExceeded); got != tt.wantCtx {
				t.Errorf("errors.Is(err, DeadlineExceeded) = %v, want %v", got, tt.wantCtx)
			}
			if !tt.wait && time.Since(start) > 5*time.Second {
				t.Errorf("non-waiting Lock took %v", time.Since(start))
			}
		})
	}
	if pid, held := d.Holder(); !held || pid != childPid {
		t.Errorf("Holder = %d, %v; want %d, true", pid, held, childPid)
	}

	// A waiting Lock gets the lock as soon as the holder dies.
	got := make(chan error, 1)
	var unlock func() error
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var err error
		unlock, err = d.Lock(ctx, true)
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	c.kill(t)
	if err := <-got; err != nil {
		t.Fatalf("waiting Lock after holder was killed: %v", err)
	}
	if pid, held := d.Holder(); !held || pid != os.Getpid() {
		t.Errorf("Holder while we hold it = %d, %v; want %d, true", pid, held, os.Getpid())
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil {
		t.Errorf("second unlock: %v", err)
	}
	if pid, held := d.Holder(); held {
		t.Errorf("Holder after unlock = %d, true", pid)
	}
	fi, err := os.Stat(filepath.Join(d.Path(), lockName))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("lock file mode = %v, %v; want 0600", fi, err)
	}
}

func TestLockExclusiveInProcess(t *testing.T) {
	d := openDir(t)
	unlock, err := d.Lock(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Lock(context.Background(), false); !errors.Is(err, ErrLocked) {
		t.Errorf("second Lock err = %v, want ErrLocked", err)
	}
	unlock()
	unlock2, err := d.Lock(context.Background(), false)
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	unlock2()
}
