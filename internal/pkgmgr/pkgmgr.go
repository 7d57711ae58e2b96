// Package pkgmgr installs packages into the target root with the root's own
// package manager (apt, dnf, yum, zypper, apk) and is the packages: section's
// capability.
//
// One interface, one small file per manager, a detector that looks at the
// target root (never the host's /), and a fake for other packages' tests —
// the shape of tailscale's util/linuxfw. Plan-time queries read the root's
// package database, so a package already installed at the requested version
// costs no manager call at all; every program runs through command.Runner, so
// output is redacted and streamed the same way everywhere. Under a root other
// than / the manager runs inside it with chroot(2), which needs uid 0.
package pkgmgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strings"
	"time"

	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/retry"
)

// Request is one package to install from the repositories.
type Request struct {
	Name    string
	Version string // "" installs the candidate
}

// String is the request as the operator wrote it: hello or hello=2.10-3.
func (r Request) String() string {
	if r.Version == "" {
		return r.Name
	}
	return r.Name + "=" + r.Version
}

// Offer is one version a repository offers.
type Offer struct {
	Version string
	From    string // the repository, e.g. http://deb.debian.org/debian bookworm/main
}

// Manager is one distribution's package manager working on one root.
type Manager interface {
	// Name is apt, dnf, yum, zypper or apk.
	Name() string
	// Installed returns the installed version of each of names that is
	// installed; others are absent from the map.
	Installed(ctx context.Context, names []string) (map[string]string, error)
	// Available returns the versions the repositories offer for each name,
	// as the manager lists them; a name nobody offers is absent.
	Available(ctx context.Context, names []string) (map[string][]Offer, error)
	// Matches reports whether an installed version satisfies a pin as the
	// operator wrote it (rpm pins may leave out the epoch or release).
	Matches(installed, pin string) bool
	// FileInfo reads a package file's name and version; ok is false when
	// this host cannot tell (the file is then always installed).
	FileInfo(ctx context.Context, path string) (name, version string, ok bool)
	// Update refreshes the package index.
	Update(ctx context.Context) error
	// Upgrade upgrades every installed package.
	Upgrade(ctx context.Context) error
	// Install installs packages and package files (paths inside the root)
	// in one transaction.
	Install(ctx context.Context, pkgs []Request, files []string) error
}

// Options are what a real manager runs with.
type Options struct {
	// Root is the target root; "/" runs on the host, anything else inside
	// the root with chroot.
	Root   string
	Runner command.Runner
	Log    *slog.Logger
	// LockWait bounds the wait for another process's package lock (default
	// DefaultLockWait).
	LockWait time.Duration
	// Retry is the policy for transient mirror failures (zero: DefaultRetry).
	Retry retry.Policy
	// Timeout bounds one manager command (default command.DefaultTimeout).
	Timeout time.Duration
	// HostHas reports whether a program is on the host's PATH (default
	// exec.LookPath); plan-time queries use the host's dpkg-query or rpm,
	// pointed at the root, when it has them.
	HostHas func(program string) bool
}

// DefaultLockWait is how long a manager waits for another one (cloud-init,
// unattended-upgrades at first boot) to release the package lock.
const DefaultLockWait = 5 * time.Minute

// DefaultRetry retries a transient mirror failure a few times, spread out:
// a mirror that is down for longer than this is an outage to report.
var DefaultRetry = retry.Policy{Initial: 2 * time.Second, Max: 30 * time.Second, Deadline: 5 * time.Minute, MaxAttempts: 4}

func (o Options) withDefaults() Options {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.LockWait <= 0 {
		o.LockWait = DefaultLockWait
	}
	if o.Retry.MaxAttempts == 0 && o.Retry.Deadline == 0 {
		o.Retry = DefaultRetry
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.HostHas == nil {
		o.HostHas = func(p string) bool { _, err := exec.LookPath(p); return err == nil }
	}
	return o
}

// sys is what every manager shares: where and how its programs run.
type sys struct {
	Options
	name string // the manager's name, for logs and errors
	// transient are output fragments of a failure worth retrying (a mirror
	// or the network, not the request).
	transient []string
	// lockBusy are output fragments saying another process holds the
	// package lock, for managers whose own wait does not cover every lock
	// (apt-get update ignores DPkg::Lock::Timeout for its lists lock).
	lockBusy []string
	// interrupted is output saying an earlier run was killed half-way (a
	// first boot stopped mid-install); repair is what finishes it, run once
	// before the command is tried again.
	interrupted string
	repair      []string
}

func newSys(o Options, name string, transient []string) sys {
	return sys{Options: o.withDefaults(), name: name, transient: transient}
}

// inRoot is the spec that runs argv inside the target root. Under chroot
// the program is named by its path inside the root: the host may not have it.
func (s *sys) inRoot(argv []string, env ...string) command.Spec {
	spec := command.Spec{Argv: argv, Env: env, Timeout: s.Timeout}
	if s.Root != "/" {
		spec.Chroot = s.Root
		if p := findProgram(s.Root, argv[0]); p != "" {
			spec.Argv = append([]string{p}, argv[1:]...)
		}
	}
	return spec
}

// commandSpec runs a program on the host (reading a file in scratch).
func commandSpec(argv ...string) command.Spec { return command.Spec{Argv: argv} }

// query runs a read-only program and returns its output lines. Exit codes in
// okExits (besides 0) are answers, not failures (dpkg-query's 1 for "some
// names not found").
func (s *sys) query(ctx context.Context, spec command.Spec, okExits ...int) ([]string, error) {
	var lines []string
	res, err := s.Runner.Run(ctx, spec, func(line string) {
		if len(lines) < 100000 {
			lines = append(lines, line)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.name, err)
	}
	if res.ExitCode == 0 {
		return lines, nil
	}
	for _, c := range okExits {
		if res.ExitCode == c {
			return lines, nil
		}
	}
	return nil, &Error{Manager: s.name, Argv: spec.Argv, ExitCode: res.ExitCode, Tail: res.Tail}
}

// change runs a command that changes the root, output streamed to the log,
// retrying failures whose output says a mirror or the network failed.
func (s *sys) change(ctx context.Context, spec command.Spec) error {
	log := s.Log.With("manager", s.name)
	p := s.Retry
	p.Notify = func(attempt int, err error, wait time.Duration) {
		log.Warn("transient failure, retrying", "attempt", attempt, "retry_in", wait.Round(time.Second).String(), "error", err.Error())
	}
	start := time.Now()
	log.Info("running", "command", strings.Join(spec.Argv, " "))
	repaired := false
	err := retry.Do(ctx, p, func(ctx context.Context) error {
		res, err := s.runWaitingForLock(ctx, spec, log)
		if err != nil {
			return retry.Permanent(err)
		}
		if res.ExitCode != 0 && !repaired && s.interrupted != "" && s.matches(res.Tail, []string{s.interrupted}) {
			repaired = true
			log.Warn("an earlier run was interrupted half-way; finishing it first", "command", strings.Join(s.repair, " "))
			fix := spec
			fix.Argv = s.inRoot(s.repair).Argv
			if res, err = s.runWaitingForLock(ctx, fix, log); err != nil {
				return retry.Permanent(err)
			}
			if res.ExitCode != 0 {
				return retry.Permanent(&Error{Manager: s.name, Argv: fix.Argv, ExitCode: res.ExitCode, Tail: res.Tail})
			}
			if res, err = s.runWaitingForLock(ctx, spec, log); err != nil {
				return retry.Permanent(err)
			}
		}
		if res.ExitCode == 0 {
			return nil
		}
		e := &Error{Manager: s.name, Argv: spec.Argv, ExitCode: res.ExitCode, Tail: res.Tail}
		switch {
		case s.matches(res.Tail, s.lockBusy):
			e.LockBusy = s.LockWait
			return retry.Permanent(e)
		case !s.matches(res.Tail, s.transient):
			return retry.Permanent(e)
		}
		e.Transient = true
		return e
	})
	if err != nil {
		var de *retry.DeadlineError
		if errors.As(err, &de) {
			return fmt.Errorf("%w (%s)", de.Last, retry.Attempts(de.Attempts))
		}
		return err
	}
	log.Info("finished", "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}

// runWaitingForLock runs spec again while its output says another process
// holds the package lock, for at most LockWait.
func (s *sys) runWaitingForLock(ctx context.Context, spec command.Spec, log *slog.Logger) (command.Result, error) {
	var res command.Result
	p := retry.Policy{Initial: min(s.Retry.Initial, time.Second), Max: 5 * time.Second, Deadline: s.LockWait}
	p.Notify = func(attempt int, _ error, _ time.Duration) {
		if attempt == 1 {
			log.Info("waiting for another process to release the package lock", "at_most", s.LockWait.String())
		}
	}
	errBusy := errors.New("package lock busy")
	err := retry.Do(ctx, p, func(ctx context.Context) error {
		var err error
		res, err = s.Runner.Run(ctx, spec, func(line string) { log.Info(line) })
		if err != nil {
			return retry.Permanent(fmt.Errorf("%s: %w", s.name, err))
		}
		if res.ExitCode != 0 && s.matches(res.Tail, s.lockBusy) {
			return errBusy
		}
		return nil
	})
	if errors.Is(err, errBusy) {
		return res, nil // the last result says who holds the lock
	}
	return res, err
}

// matches reports whether any line holds any of the fragments.
func (s *sys) matches(tail, fragments []string) bool {
	for _, line := range tail {
		for _, t := range fragments {
			if strings.Contains(line, t) {
				return true
			}
		}
	}
	return false
}

// Error is a manager command that failed.
type Error struct {
	Manager   string
	Argv      []string
	ExitCode  int
	Tail      []string // redacted by the runner
	Transient bool     // a mirror or network failure
	// LockBusy is how long it waited for another process's package lock.
	LockBusy time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s failed with exit status %d", strings.Join(e.Argv, " "), e.ExitCode)
	if e.LockBusy > 0 {
		fmt.Fprintf(&b, " (another process held the package lock for more than %s)", e.LockBusy)
	}
	if e.Transient {
		b.WriteString(" (the mirror or the network failed; check the instance's route to the repositories)")
	}
	if n := len(e.Tail); n > 0 {
		// The last few lines say why; the full output is in the log.
		b.WriteString(": " + strings.Join(e.Tail[max(0, n-5):], " | "))
	}
	return b.String()
}

// set is names as a set, to keep only answers about what was asked.
func set(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// splitFields splits a query's line on sep, trimming spaces; ok is false when
// it does not have exactly n fields (a warning or an error line).
func splitFields(line, sep string, n int) ([]string, bool) {
	f := strings.Split(line, sep)
	if len(f) != n {
		return nil, false
	}
	for i := range f {
		f[i] = strings.TrimSpace(f[i])
	}
	return f, true
}
