package retry

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

var errFlaky = errors.New("flaky")

func TestDo(t *testing.T) {
	fast := Policy{Initial: time.Millisecond, Max: 5 * time.Millisecond, Deadline: 2 * time.Second}
	tests := []struct {
		name      string
		policy    Policy
		failFirst int   // attempts that fail with errFlaky before success
		failWith  error // error for failing attempts; nil means errFlaky
		wantCalls int
		wantErr   func(t *testing.T, err error)
	}{
		{
			name: "first attempt succeeds", policy: fast, failFirst: 0, wantCalls: 1,
			wantErr: func(t *testing.T, err error) {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
			},
		},
		{
			name: "succeeds after transient failures", policy: fast, failFirst: 3, wantCalls: 4,
			wantErr: func(t *testing.T, err error) {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
			},
		},
		{
			name: "permanent stops at once and is unmarked", policy: fast, failFirst: 100,
			failWith: Permanent(errFlaky), wantCalls: 1,
			wantErr: func(t *testing.T, err error) {
				if err != errFlaky {
					t.Fatalf("err = %v, want errFlaky itself", err)
				}
				if IsPermanent(err) {
					t.Fatalf("returned error still marked permanent")
				}
			},
		},
		{
			name:   "attempts run out",
			policy: Policy{Initial: time.Millisecond, Max: time.Millisecond, Deadline: time.Minute, MaxAttempts: 4}, failFirst: 100, wantCalls: 4,
			wantErr: func(t *testing.T, err error) {
				var de *DeadlineError
				if !errors.As(err, &de) {
					t.Fatalf("err = %T %v, want *DeadlineError", err, err)
				}
				if de.Attempts != 4 || !de.Exhausted || !errors.Is(err, errFlaky) {
					t.Fatalf("got %+v", de)
				}
				if !strings.Contains(err.Error(), "gave up after 4 attempts") {
					t.Fatalf("message %q", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := Do(context.Background(), tt.policy, func(ctx context.Context) error {
				calls++
				if calls <= tt.failFirst {
					if tt.failWith != nil {
						return tt.failWith
					}
					return errFlaky
				}
				return nil
			})
			tt.wantErr(t, err)
			if calls != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", calls, tt.wantCalls)
			}
		})
	}
}

func TestDoDeadline(t *testing.T) {
	tests := []struct {
		name     string
		policy   Policy
		parent   time.Duration // 0: no parent deadline
		wantDL   time.Duration
		maxTaken time.Duration
	}{
		{"own deadline", Policy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Deadline: 300 * time.Millisecond}, 0, 300 * time.Millisecond, 300 * time.Millisecond},
		{"shorter parent deadline wins", Policy{Initial: 10 * time.Millisecond, Max: 50 * time.Millisecond, Deadline: time.Minute}, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond},
		{"long max wait gives up instead of oversleeping", Policy{Initial: 2 * time.Second, Max: 3 * time.Second, Deadline: 300 * time.Millisecond}, 0, 300 * time.Millisecond, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.parent > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.parent)
				defer cancel()
			}
			var slept time.Duration
			tt.policy.Notify = func(_ int, _ error, wait time.Duration) { slept += wait }
			start := time.Now()
			err := Do(ctx, tt.policy, func(ctx context.Context) error { return errFlaky })
			taken := time.Since(start)
			// The waits Do chose fit in the deadline: it never plans a
			// sleep past it.
			if slept > tt.wantDL {
				t.Fatalf("planned %v of waits for a %v deadline", slept, tt.wantDL)
			}
			var de *DeadlineError
			if !errors.As(err, &de) {
				t.Fatalf("err = %T %v, want *DeadlineError", err, err)
			}
			if de.Exhausted || !errors.Is(err, errFlaky) {
				t.Fatalf("got %+v", de)
			}
			if de.Deadline.Round(10*time.Millisecond) != tt.wantDL {
				t.Fatalf("Deadline = %v, want %v", de.Deadline, tt.wantDL)
			}
			// Wall clock: the deadline plus generous scheduling slack (CI
			// runs test binaries side by side on 2 busy cores).
			if taken > tt.maxTaken+time.Second {
				t.Fatalf("took %v, want <= %v", taken, tt.maxTaken)
			}
			if !strings.Contains(err.Error(), "no success within") {
				t.Fatalf("message %q", err)
			}
		})
	}
}

func TestDoKeepsInformativeLastError(t *testing.T) {
	// The attempt cut by the deadline returns a context error; the error
	// before it is what the operator needs to see.
	p := Policy{Initial: time.Millisecond, Max: time.Millisecond, Deadline: 150 * time.Millisecond}
	calls := 0
	err := Do(context.Background(), p, func(ctx context.Context) error {
		calls++
		if calls == 1 {
			return errFlaky
		}
		<-ctx.Done()
		return ctx.Err()
	})
	if !errors.Is(err, errFlaky) {
		t.Fatalf("err = %v, want it to wrap errFlaky", err)
	}
}

func TestDoCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	p := Policy{Initial: 5 * time.Millisecond, Max: 10 * time.Millisecond, Deadline: 10 * time.Second}
	start := time.Now()
	err := Do(ctx, p, func(ctx context.Context) error { return errFlaky })
	if !errors.Is(err, context.Canceled) || !errors.Is(err, errFlaky) {
		t.Fatalf("err = %v, want context.Canceled wrapping errFlaky", err)
	}
	var de *DeadlineError
	if errors.As(err, &de) {
		t.Fatalf("cancel reported as deadline: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("cancel not honoured promptly")
	}
}

func TestNotifyAndWaitBounds(t *testing.T) {
	p := Policy{Initial: 2 * time.Millisecond, Max: 8 * time.Millisecond, Deadline: 5 * time.Second, MaxAttempts: 20}
	var waits []time.Duration
	var attempts []int
	p.Notify = func(attempt int, err error, wait time.Duration) {
		attempts = append(attempts, attempt)
		waits = append(waits, wait)
	}
	_ = Do(context.Background(), p, func(ctx context.Context) error { return errFlaky })
	if len(waits) != 19 {
		t.Fatalf("Notify called %d times, want 19", len(waits))
	}
	for i, w := range waits {
		if attempts[i] != i+1 {
			t.Fatalf("attempt[%d] = %d", i, attempts[i])
		}
		if w < p.Initial || w > p.Max {
			t.Fatalf("wait %v outside [%v, %v]", w, p.Initial, p.Max)
		}
	}
}

func TestNextWaitRange(t *testing.T) {
	p := Policy{Initial: 100 * time.Millisecond, Max: 3 * time.Second}.withDefaults()
	prev := p.Initial
	for range 1000 {
		w := nextWait(p, prev)
		if w < p.Initial || w > p.Max || w > 3*prev {
			t.Fatalf("nextWait(%v) = %v", prev, w)
		}
		prev = w
	}
}

func TestPermanentNil(t *testing.T) {
	if Permanent(nil) != nil {
		t.Fatal("Permanent(nil) != nil")
	}
	if !IsPermanent(errors.Join(errors.New("x"), Permanent(errFlaky))) {
		t.Fatal("IsPermanent misses a wrapped mark")
	}
}
