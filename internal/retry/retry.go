// Package retry runs an operation again after failures, with capped,
// jittered exponential backoff, inside an overall deadline.
//
// At first boot the things bootstrap depends on (the network, IMDS, the
// instance's IAM role, IAM propagation to S3) appear at unknown times within
// a minute or two. Callers therefore wait "until it works or the deadline
// passes", not "N times". Errors that no amount of waiting can fix are marked
// with Permanent and end the wait at once.
package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Defaults applied to zero fields of a Policy.
const (
	DefaultInitial  = 100 * time.Millisecond
	DefaultMax      = 5 * time.Second
	DefaultDeadline = 2 * time.Minute
)

// Policy says how long and how often to retry.
//
// The wait before attempt n+1 uses decorrelated jitter: a random duration
// between Initial and three times the previous wait, capped at Max. It never
// falls below Initial (so a failing endpoint is not hammered) and spreads
// many machines booting together.
type Policy struct {
	// Initial is the shortest wait between attempts (default 100ms).
	Initial time.Duration
	// Max caps a single wait (default 5s).
	Max time.Duration
	// Deadline bounds the whole wait, attempts included, measured from the
	// call to Do (default 2m). Do never sleeps past it: when the next wait
	// would end after it, Do gives up at once.
	Deadline time.Duration
	// MaxAttempts bounds the number of attempts; zero means unlimited within
	// Deadline.
	MaxAttempts int
	// Notify, when set, is called before each wait with the attempt that
	// just failed (1-based), its error and the coming wait, so callers can
	// log progress at boot ("IMDS not answering yet").
	Notify func(attempt int, err error, wait time.Duration)
}

func (p Policy) withDefaults() Policy {
	if p.Initial <= 0 {
		p.Initial = DefaultInitial
	}
	if p.Max <= 0 {
		p.Max = DefaultMax
	}
	if p.Max < p.Initial {
		p.Max = p.Initial
	}
	if p.Deadline <= 0 {
		p.Deadline = DefaultDeadline
	}
	return p
}

// permanentError marks an error that retrying cannot fix.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err so that Do returns it at once instead of retrying.
// Do returns err itself, without the mark. Permanent(nil) is nil.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent reports whether err, or an error it wraps, was marked with
// Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// DeadlineError is returned when the deadline or the attempt limit ran out
// while the operation still failed. Last is the operation's last error.
type DeadlineError struct {
	Attempts int
	Elapsed  time.Duration
	Deadline time.Duration
	// Exhausted is true when MaxAttempts, not the deadline, ended the wait.
	Exhausted bool
	Last      error
}

func (e *DeadlineError) Error() string {
	if e.Exhausted {
		return fmt.Sprintf("gave up after %s in %s: %v", Attempts(e.Attempts), round(e.Elapsed), e.Last)
	}
	return fmt.Sprintf("no success within %s (%s): %v", e.Deadline, Attempts(e.Attempts), e.Last)
}

func (e *DeadlineError) Unwrap() error { return e.Last }

// Attempts says "1 attempt" or "n attempts", for messages.
func Attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

// round keeps durations in messages readable.
func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Millisecond)
}

// Do calls op until it returns nil, returns an error marked Permanent, the
// attempts run out, the deadline passes or ctx is done.
//
// op receives a context that ends at the deadline; op should also bound each
// attempt itself (a hung attempt would otherwise use the whole deadline).
// When the deadline or the attempts run out Do returns a *DeadlineError
// wrapping op's last error. When ctx is cancelled Do returns an error that
// wraps both ctx.Err() and op's last error.
func Do(ctx context.Context, p Policy, op func(ctx context.Context) error) error {
	p = p.withDefaults()
	start := time.Now()
	deadline := start.Add(p.Deadline)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		// The caller's deadline is shorter; report it as ours.
		deadline = d
		p.Deadline = d.Sub(start)
	}
	actx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	var last error
	wait := p.Initial
	for attempt := 1; ; attempt++ {
		err := op(actx)
		if err == nil {
			return nil
		}
		var perm *permanentError
		if errors.As(err, &perm) {
			return perm.err
		}
		// An attempt cut short by the deadline usually says only "context
		// deadline exceeded"; the previous attempt's error says more.
		if last == nil || actx.Err() == nil || !isContextErr(err) {
			last = err
		}
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return fmt.Errorf("%w after %d attempts; last error: %w", ctx.Err(), attempt, last)
		}
		giveUp := func(exhausted bool) error {
			return &DeadlineError{Attempts: attempt, Elapsed: time.Since(start), Deadline: p.Deadline, Exhausted: exhausted, Last: last}
		}
		if p.MaxAttempts > 0 && attempt >= p.MaxAttempts {
			return giveUp(true)
		}
		wait = nextWait(p, wait)
		if time.Until(deadline) <= wait {
			return giveUp(false)
		}
		if p.Notify != nil {
			p.Notify(attempt, err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-actx.Done():
			t.Stop()
			if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
				return fmt.Errorf("%w after %d attempts; last error: %w", ctx.Err(), attempt, last)
			}
			return giveUp(false)
		}
	}
}

// nextWait is decorrelated jitter: uniform in [Initial, 3*prev], capped.
func nextWait(p Policy, prev time.Duration) time.Duration {
	hi := 3 * prev
	if hi > p.Max || hi <= 0 {
		hi = p.Max
	}
	if hi <= p.Initial {
		return p.Initial
	}
	return p.Initial + rand.N(hi-p.Initial+1)
}

func isContextErr(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled)
}
