package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrLocked is wrapped by Lock's error when another run holds the lock.
var ErrLocked = errors.New("another bootstrap run holds the lock")

// lockPoll is how often a waiting Lock retries. flock(2) itself cannot be
// interrupted by a context, so waiting is a loop of non-blocking attempts.
const lockPoll = 50 * time.Millisecond

// Lock takes the run lock: an exclusive flock(2) on <dir>/lock, which the
// kernel releases when the holder dies, so a killed run never leaves the
// machine locked. Our pid is written into the file for Holder and error
// messages.
//
// With wait false it fails at once with an error wrapping ErrLocked and
// naming the holder's pid; with wait true it retries until ctx ends.
// The returned unlock is safe to call more than once.
func (d *Dir) Lock(ctx context.Context, wait bool) (unlock func() error, err error) {
	path := filepath.Join(d.path, lockName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, filePerm)
	if err != nil {
		return nil, fmt.Errorf("state: open lock %s: %w", path, err)
	}
	fd := int(f.Fd())
	for {
		err := flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, fmt.Errorf("state: lock %s: %w", path, err)
		}
		if !wait {
			pid := readPid(f)
			f.Close()
			return nil, fmt.Errorf("state: lock %s: %w (%s)", path, ErrLocked, holderString(pid))
		}
		select {
		case <-ctx.Done():
			pid := readPid(f)
			f.Close()
			return nil, fmt.Errorf("state: waiting for lock %s: %w (%s): %w", path, ErrLocked, holderString(pid), ctx.Err())
		case <-time.After(lockPoll):
		}
	}
	// Record our pid. A crash here leaves a stale pid in the file, which is
	// harmless: the flock, not the content, says whether a run is live.
	err = f.Truncate(0)
	if err == nil {
		_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	if err != nil {
		flock(fd, syscall.LOCK_UN)
		f.Close()
		return nil, fmt.Errorf("state: lock %s: write pid: %w", path, err)
	}
	return sync.OnceValue(func() error {
		f.Truncate(0)
		uerr := flock(fd, syscall.LOCK_UN)
		if err := f.Close(); uerr == nil {
			uerr = err
		}
		if uerr != nil {
			return fmt.Errorf("state: unlock %s: %w", path, uerr)
		}
		return nil
	}), nil
}

// Holder reports whether a run holds the lock now and, if it wrote it, its
// pid (0 when unknown). It takes and drops a shared flock, so it never waits
// and never disturbs the holder.
func (d *Dir) Holder() (pid int, held bool) {
	f, err := os.Open(filepath.Join(d.path, lockName))
	if err != nil {
		return 0, false // no lock file: no run has ever held it
	}
	defer f.Close()
	fd := int(f.Fd())
	switch err := flock(fd, syscall.LOCK_SH|syscall.LOCK_NB); {
	case err == nil:
		flock(fd, syscall.LOCK_UN)
		return 0, false
	case errors.Is(err, syscall.EWOULDBLOCK):
		return readPid(f), true
	default:
		return 0, false
	}
}

func flock(fd, how int) error {
	for {
		err := syscall.Flock(fd, how)
		if err != syscall.EINTR {
			return err
		}
	}
}

func readPid(f *os.File) int {
	b := make([]byte, 32)
	n, err := f.ReadAt(b, 0)
	if n == 0 && err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b[:n])))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

func holderString(pid int) string {
	if pid == 0 {
		return "holder pid unknown"
	}
	return "held by pid " + strconv.Itoa(pid)
}
