// Package command runs programs for every capability: package managers,
// chef-client, puppet, swanctl, operators' commands. One runner means one
// behaviour everywhere: the program gets its own process group (a timeout or
// a stopped run kills its children too), its output is streamed line by line
// through the run's redactor, and its exit status comes back with the tail of
// its output for the error message.
package command

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/opsboot/bootstrap/internal/secret"
)

// Spec is one program to run.
type Spec struct {
	Argv []string
	// Env is added to the runner's environment (KEY=VALUE).
	Env []string
	// Dir is the working directory (inside Chroot when that is set).
	Dir string
	// Chroot runs the program inside this directory with chroot(2); "" or
	// "/" runs it on the host.
	Chroot  string
	Timeout time.Duration
	Stdin   io.Reader
}

// Result is how a program ended.
type Result struct {
	// ExitCode is the program's exit status; -1 when it was killed or could
	// not start.
	ExitCode int
	// Tail is the last lines of its output (redacted), for error messages.
	Tail []string
}

// Runner runs programs. Exec is the real one; tests use a recording fake.
type Runner interface {
	// Run starts s, calls out with each line of its combined output
	// (redacted), and waits. A non-zero exit is not an error: err is set only
	// when the program could not run or was killed (timeout, cancelled).
	Run(ctx context.Context, s Spec, out func(line string)) (Result, error)
}

// tailLines is how much output an error message carries.
const tailLines = 20

// DefaultTimeout bounds a program that was given no timeout.
const DefaultTimeout = 30 * time.Minute

// Exec runs programs on this machine.
type Exec struct {
	Redactor *secret.Redactor
}

// Run implements Runner.
func (e Exec) Run(ctx context.Context, s Spec, out func(line string)) (Result, error) {
	if len(s.Argv) == 0 {
		return Result{ExitCode: -1}, errors.New("no program to run")
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, s.Argv[0], s.Argv[1:]...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stdin = s.Stdin
	// Own process group, so a timeout kills the program's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.Chroot != "" && s.Chroot != "/" {
		cmd.SysProcAttr.Chroot = s.Chroot
		if cmd.Dir == "" {
			cmd.Dir = "/"
		}
	}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var tail []string
	w := e.Redactor.LineWriter(func(line string) {
		if len(tail) == tailLines {
			tail = append(tail[:0], tail[1:]...)
		}
		tail = append(tail, line)
		if out != nil {
			out(line)
		}
	})
	cmd.Stdout, cmd.Stderr = w, w
	err := cmd.Run()
	w.Close()
	res := Result{ExitCode: -1, Tail: tail}
	var exit *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return res, fmt.Errorf("%s: killed after %s (timeout)", e.Redactor.Redact(s.Argv[0]), timeout)
	case ctx.Err() != nil:
		return res, fmt.Errorf("%s: stopped: %w", e.Redactor.Redact(s.Argv[0]), ctx.Err())
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
		return res, nil
	case err != nil:
		return res, e.Redactor.Error(fmt.Errorf("cannot run %s: %w", s.Argv[0], err))
	}
	res.ExitCode = 0
	return res, nil
}

// Display is argv as a person reads it in a plan or a log, redacted.
func Display(r *secret.Redactor, argv []string) string {
	return r.Redact(strings.Join(argv, " "))
}
