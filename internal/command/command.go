// Package command runs programs for every capability: package managers,
// chef-client, puppet, swanctl, operators' commands. One runner means one
// behaviour everywhere: the program gets its own process group (a timeout or
// a stopped run ends its children too: SIGTERM, then SIGKILL after a grace),
// its output is streamed line by line through the run's redactor, chosen
// exit codes are retried with capped, jittered backoff, and a non-zero exit
// becomes an error that says what the code means, with the tail of the
// output.
package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opsboot/bootstrap/internal/retry"
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
	Chroot string
	// Timeout bounds each attempt (default DefaultTimeout).
	Timeout time.Duration
	// Stdin is the program's input. With Retries it must be an io.Seeker
	// (a bytes.Reader, a file) to be read again; else later attempts get
	// what the first left.
	Stdin io.Reader

	// Name is what messages call the program; default argv[0]'s base name.
	Name string
	// Retries is how many more times the program runs when it exits with a
	// code in RetryOn, or with any non-zero code when RetryOn is empty.
	// A timeout is not retried: the program had its time.
	Retries int
	RetryOn []int
	// Backoff spaces the retries; only Initial and Max are used (default
	// DefaultBackoffInitial and DefaultBackoffMax), the attempts and the
	// deadline follow from Retries and Timeout.
	Backoff retry.Policy
	// Explain turns exit codes into sentences for errors, per capability:
	// 172 → "the Chef license was not accepted; set chef.chef_license".
	Explain map[int]string
}

// Result is how a program ended.
type Result struct {
	// ExitCode is the program's exit status; -1 when it was killed or could
	// not start.
	ExitCode int
	// Signal is the signal that ended the program, 0 when it exited.
	Signal syscall.Signal
	// Tail is the last lines of its output (redacted), for error messages.
	Tail []string
	// Attempts is how many times the program ran.
	Attempts int
}

// Runner runs programs. Exec is the real one; tests use a recording fake.
type Runner interface {
	// Run starts s, calls out with each line of its combined output
	// (redacted), and waits. A non-zero exit is not an error: err is set only
	// when the program could not run or was killed (timeout, cancelled).
	// Use Result.Err for the error a non-zero exit makes.
	Run(ctx context.Context, s Spec, out func(line string)) (Result, error)
}

// tailLines is how much output an error message carries.
const tailLines = 20

// Defaults for a Spec and an Exec that leave them zero.
const (
	DefaultTimeout        = 30 * time.Minute
	DefaultKillGrace      = 10 * time.Second
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = 30 * time.Second
)

// Exec runs programs on this machine.
type Exec struct {
	Redactor *secret.Redactor
	// Log, when set, hears about retries and background processes that
	// outlive the program; the program's own output goes to out.
	Log *slog.Logger
	// KillGrace is how long a program (and its process group) has between
	// SIGTERM and SIGKILL when its time is up (default DefaultKillGrace).
	KillGrace time.Duration
}

// errTimedOut is the cause of an attempt's context when its timeout ran out,
// to tell it from the caller's own deadline or cancellation.
var errTimedOut = errors.New("timeout")

// Run implements Runner.
func (e Exec) Run(ctx context.Context, s Spec, out func(line string)) (Result, error) {
	if len(s.Argv) == 0 {
		return Result{ExitCode: -1}, errors.New("no program to run")
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if s.Retries <= 0 {
		res, err := e.once(ctx, s, timeout, out)
		res.Attempts = 1
		return res, err
	}

	attempts := s.Retries + 1
	p := retry.Policy{Initial: s.Backoff.Initial, Max: s.Backoff.Max, MaxAttempts: attempts}
	if p.Initial <= 0 {
		p.Initial = DefaultBackoffInitial
	}
	if p.Max <= 0 {
		p.Max = DefaultBackoffMax
	}
	// The deadline never cuts an attempt short: every attempt may take its
	// whole timeout, every wait its maximum.
	p.Deadline = time.Duration(attempts)*(timeout+e.grace()) + time.Duration(s.Retries)*p.Max + time.Minute
	p.Notify = func(attempt int, err error, wait time.Duration) {
		if e.Log != nil {
			e.Log.Info("program failed; running it again", "program", s.name(), "error", err.Error(),
				"attempt", attempt, "of", attempts, "wait", wait.Round(time.Millisecond).String())
		}
	}
	var (
		res    Result
		runErr error
		n      int
	)
	err := retry.Do(ctx, p, func(ctx context.Context) error {
		n++
		if seeker, ok := s.Stdin.(io.Seeker); ok && n > 1 {
			if _, err := seeker.Seek(0, io.SeekStart); err != nil {
				runErr = fmt.Errorf("%s: rewind its input for attempt %d: %w", s.name(), n, err)
				return retry.Permanent(runErr)
			}
		}
		res, runErr = e.once(ctx, s, timeout, out)
		res.Attempts = n
		switch {
		case runErr != nil:
			return retry.Permanent(runErr)
		case res.ExitCode != 0 && s.retryable(res.ExitCode):
			return res.Err(s)
		}
		return nil
	})
	if runErr == nil && err != nil && ctx.Err() != nil {
		// Stopped while waiting for the next attempt.
		return res, fmt.Errorf("%s: stopped before attempt %d: %w", s.name(), n+1, ctx.Err())
	}
	return res, runErr
}

// once runs the program one time.
func (e Exec) once(ctx context.Context, s Spec, timeout time.Duration, out func(line string)) (Result, error) {
	if err := checkDir(s); err != nil {
		return Result{ExitCode: -1}, fmt.Errorf("%s: %w", s.name(), err)
	}
	actx, cancel := context.WithTimeoutCause(ctx, timeout, errTimedOut)
	defer cancel()
	cmd := exec.CommandContext(actx, s.Argv[0], s.Argv[1:]...)
	cmd.Dir = s.Dir
	cmd.Env = append(os.Environ(), s.Env...)
	cmd.Stdin = s.Stdin
	// Own process group, so a timeout reaches the program's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if s.Chroot != "" && s.Chroot != "/" {
		cmd.SysProcAttr.Chroot = s.Chroot
		if cmd.Dir == "" {
			cmd.Dir = "/"
		}
	}
	grace := e.grace()
	var stopAt time.Time
	cmd.Cancel = func() error {
		// SIGTERM first, so a package manager can release its lock; the
		// group is killed after the grace below.
		stopAt = time.Now()
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	}
	// After the grace, Wait kills the leader and stops reading; the same
	// bound applies when a background child of a finished program keeps the
	// output open.
	cmd.WaitDelay = grace
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
	if cmd.Process != nil && !stopAt.IsZero() {
		killGroup(cmd.Process.Pid, stopAt.Add(grace))
	}

	res := Result{ExitCode: -1, Tail: tail}
	if ps := cmd.ProcessState; ps != nil {
		res.ExitCode = ps.ExitCode()
		if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			res.Signal = ws.Signal()
		}
	}
	var exit *exec.ExitError
	switch {
	case actx.Err() != nil && context.Cause(actx) == errTimedOut:
		res.ExitCode = -1
		return res, fmt.Errorf("%s: killed after %s (timeout)", s.name(), timeout)
	case actx.Err() != nil:
		res.ExitCode = -1
		return res, fmt.Errorf("%s: stopped: %w", s.name(), ctx.Err())
	case errors.Is(err, exec.ErrWaitDelay):
		// The program ended; something it started in the background still
		// holds its output. That process is left alone: starting daemons
		// is a thing commands do.
		if e.Log != nil {
			e.Log.Warn("a background process of the program keeps its output open; stopped reading it",
				"program", s.name(), "after", grace.String())
		}
		return res, nil
	case errors.As(err, &exit):
		return res, nil
	case err != nil:
		return res, e.Redactor.Error(fmt.Errorf("%s: cannot run %s: %w", s.name(), s.Argv[0], err))
	}
	return res, nil
}

// checkDir says when the working directory is missing: exec reports that
// as "fork/exec PROGRAM: no such file or directory", blaming the program.
func checkDir(s Spec) error {
	if s.Dir == "" || s.Chroot != "" && s.Chroot != "/" {
		return nil
	}
	fi, err := os.Stat(s.Dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("working directory %s does not exist", s.Dir)
	case err != nil:
		return fmt.Errorf("working directory: %w", err)
	case !fi.IsDir():
		return fmt.Errorf("working directory %s is not a directory", s.Dir)
	}
	return nil
}

// killGroup waits until no process of group pgid runs or the deadline
// passes, then kills what is left and waits (briefly) until it is gone, so
// a lock the group held is free when Run returns. The group's id cannot be
// reused while any member exists, so the SIGKILL reaches only the
// program's own.
func killGroup(pgid int, deadline time.Time) {
	waitGroup(pgid, deadline)
	if groupRunning(pgid) {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		waitGroup(pgid, time.Now().Add(2*time.Second))
	}
}

func waitGroup(pgid int, deadline time.Time) {
	for i := 0; i < 1000 && groupRunning(pgid) && time.Now().Before(deadline); i++ {
		time.Sleep(20 * time.Millisecond)
	}
}

// groupRunning reports whether a process of group pgid still runs. A zombie
// does not: it is dead and waits only to be reaped, which the PID 1 of some
// containers never does.
func groupRunning(pgid int) bool {
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return false
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return true // cannot tell: assume it runs
	}
	want := strconv.Itoa(pgid)
	for _, p := range procs {
		if p.Name()[0] < '0' || p.Name()[0] > '9' {
			continue
		}
		stat, err := os.ReadFile("/proc/" + p.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// "pid (comm) state ppid pgrp …"; comm may hold spaces and ")".
		f := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(f) > 2 && f[2] == want && f[0] != "Z" && f[0] != "X" {
			return true
		}
	}
	return false
}

func (e Exec) grace() time.Duration {
	if e.KillGrace > 0 {
		return e.KillGrace
	}
	return DefaultKillGrace
}

// name is what messages call the program.
func (s Spec) name() string {
	if s.Name != "" {
		return s.Name
	}
	if len(s.Argv) == 0 {
		return "program"
	}
	return path.Base(s.Argv[0])
}

func (s Spec) retryable(code int) bool {
	return len(s.RetryOn) == 0 || slices.Contains(s.RetryOn, code)
}

// genericExplain says what the shell's own exit codes mean, for programs
// whose Explain does not.
var genericExplain = map[int]string{
	126: "the program was found but could not be executed (not executable, or a bad #! line)",
	127: "the program was not found (check its name and PATH, or give its absolute path)",
}

// ExitError is a program that ran and did not exit 0.
type ExitError struct {
	Name string
	// Code is the exit status, -1 when a signal ended the program.
	Code   int
	Signal syscall.Signal
	// Explanation is what the code means, from Spec.Explain; may be "".
	Explanation string
	Attempts    int
	// Tail is the last lines of the output, redacted.
	Tail []string
}

// maxTailInError bounds the output line quoted in an error.
const maxTailInError = 200

func (e *ExitError) Error() string {
	var b strings.Builder
	b.WriteString(e.Name)
	if e.Signal != 0 {
		b.WriteString(" was killed by " + unix.SignalName(e.Signal))
	} else {
		b.WriteString(" exited " + strconv.Itoa(e.Code))
	}
	if e.Explanation != "" {
		b.WriteString(": " + e.Explanation)
	}
	if e.Attempts > 1 {
		fmt.Fprintf(&b, " (%s)", retry.Attempts(e.Attempts))
	}
	if last := lastLine(e.Tail); last != "" {
		if len(last) > maxTailInError {
			last = last[:maxTailInError] + "…"
		}
		b.WriteString("; last output: " + strconv.Quote(last))
	}
	return b.String()
}

func lastLine(tail []string) string {
	for i := len(tail) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(tail[i]); l != "" {
			return l
		}
	}
	return ""
}

// Err is the error the result makes for s: nil for exit 0, else an
// *ExitError that says what the code means (s.Explain).
func (r Result) Err(s Spec) error {
	if r.ExitCode == 0 && r.Signal == 0 {
		return nil
	}
	e := &ExitError{Name: s.name(), Code: r.ExitCode, Signal: r.Signal, Attempts: r.Attempts, Tail: r.Tail}
	if r.Signal == 0 {
		e.Explanation = s.Explain[r.ExitCode]
		if e.Explanation == "" {
			e.Explanation = genericExplain[r.ExitCode]
		}
	}
	return e
}

// Display is argv as a person reads it in a plan or a log, redacted.
func Display(r *secret.Redactor, argv []string) string {
	return r.Redact(strings.Join(argv, " "))
}
