package command

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/retry"
	"github.com/opsboot/bootstrap/internal/secret"
)

const testSecret = "tok-abcdef-123456"

// fastBackoff keeps retry tests quick.
var fastBackoff = retry.Policy{Initial: 5 * time.Millisecond, Max: 20 * time.Millisecond}

// newExec returns an Exec whose redactor knows testSecret, and its log.
func newExec() (Exec, *syncBuffer) {
	red := &secret.Redactor{}
	red.Add(testSecret)
	logs := &syncBuffer{}
	return Exec{Redactor: red, KillGrace: 300 * time.Millisecond,
		Log: slog.New(red.Handler(slog.NewTextHandler(logs, nil)))}, logs
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

// collect runs s and returns its result, error and output lines.
func collect(t *testing.T, e Exec, s Spec) (Result, []string, error) {
	t.Helper()
	var mu sync.Mutex
	var lines []string
	start := time.Now()
	res, err := e.Run(context.Background(), s, func(l string) { mu.Lock(); lines = append(lines, l); mu.Unlock() })
	if d := time.Since(start); d > 15*time.Second {
		t.Fatalf("took %s", d)
	}
	return res, lines, err
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name     string
		spec     Spec
		wantCode int
		wantErr  string // substring of the Err(spec) or run error; "" for none
		wantOut  []string
	}{
		{name: "no shell unless asked", spec: Spec{Argv: []string{"/bin/echo", "$HOME; echo x | cat"}},
			wantOut: []string{"$HOME; echo x | cat"}},
		{name: "shell when asked", spec: Spec{Argv: sh("echo a | tr a b")}, wantOut: []string{"b"}},
		{name: "environment and working directory", spec: Spec{Argv: sh(`echo "$GREETING"; pwd`), Env: []string{"GREETING=hi there"}, Dir: dir},
			wantOut: []string{"hi there", dir}},
		{name: "explained exit code",
			spec:     Spec{Name: "chef-client", Argv: sh("exit 172"), Explain: map[int]string{172: "the Chef license was not accepted; set chef.chef_license"}},
			wantCode: 172, wantErr: "chef-client exited 172: the Chef license was not accepted; set chef.chef_license"},
		{name: "unexplained exit code names the last output", spec: Spec{Argv: sh("echo first; echo 'disk full'; exit 3")},
			wantCode: 3, wantErr: `sh exited 3; last output: "disk full"`, wantOut: []string{"first", "disk full"}},
		{name: "shell's not-found code is explained", spec: Spec{Name: "deploy", Argv: sh("no-such-program-h-cmd")},
			wantCode: 127, wantErr: "deploy exited 127: the program was not found (check its name and PATH, or give its absolute path)"},
		{name: "killed by a signal", spec: Spec{Argv: sh("kill -9 $$")}, wantCode: -1, wantErr: "sh was killed by SIGKILL"},
		{name: "missing program", spec: Spec{Argv: []string{"/no/such/program"}}, wantCode: -1, wantErr: "cannot run /no/such/program"},
		{name: "secret redacted in output", spec: Spec{Argv: sh("echo token=" + testSecret)}, wantOut: []string{"token=" + secret.Mask}},
		{name: "secret written in two pieces", spec: Spec{Argv: sh("printf 'token=tok-abc'; sleep 0.05; printf 'def-123456 done\\n'")},
			wantOut: []string{"token=" + secret.Mask + " done"}},
		{name: "secret in the error's output tail", spec: Spec{Argv: sh("echo " + testSecret + "; exit 9")},
			wantCode: 9, wantErr: `sh exited 9; last output: "` + secret.Mask + `"`, wantOut: []string{secret.Mask}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newExec()
			res, out, err := collect(t, e, tt.spec)
			if err == nil {
				err = res.Err(tt.spec)
			}
			if res.ExitCode != tt.wantCode {
				t.Errorf("exit code %d, want %d", res.ExitCode, tt.wantCode)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("error %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("error %v, want %q", err, tt.wantErr)
			}
			if tt.wantOut != nil && strings.Join(out, "\n") != strings.Join(tt.wantOut, "\n") {
				t.Errorf("output %q, want %q", out, tt.wantOut)
			}
			if err != nil && strings.Contains(err.Error(), "tok-abc") {
				t.Errorf("error reveals the secret: %v", err)
			}
		})
	}
}

func TestRetries(t *testing.T) {
	// The script fails with its attempt's code until attempt succeedOn.
	script := func(counter string, succeedOn, code int) []string {
		return sh(`n=$(cat ` + counter + ` 2>/dev/null || echo 0); n=$((n+1)); echo $n > ` + counter +
			`; echo "attempt $n"; [ $n -ge ` + strconv.Itoa(succeedOn) + ` ] || exit ` + strconv.Itoa(code))
	}
	tests := []struct {
		name         string
		succeedOn    int
		code         int
		retries      int
		retryOn      []int
		wantCode     int
		wantAttempts int
		wantErr      string
	}{
		{name: "fails twice then succeeds", succeedOn: 3, code: 75, retries: 3, retryOn: []int{75}, wantAttempts: 3},
		{name: "any non-zero code when retry_on is empty", succeedOn: 2, code: 1, retries: 2, wantAttempts: 2},
		{name: "a code not in retry_on is not retried", succeedOn: 3, code: 1, retries: 3, retryOn: []int{75}, wantCode: 1, wantAttempts: 1,
			wantErr: `sh exited 1; last output: "attempt 1"`},
		{name: "retries run out", succeedOn: 9, code: 75, retries: 2, retryOn: []int{75}, wantCode: 75, wantAttempts: 3,
			wantErr: `sh exited 75 (3 attempts); last output: "attempt 3"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, logs := newExec()
			s := Spec{Argv: script(filepath.Join(t.TempDir(), "n"), tt.succeedOn, tt.code), Retries: tt.retries, RetryOn: tt.retryOn, Backoff: fastBackoff}
			res, out, err := collect(t, e, s)
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitCode != tt.wantCode || res.Attempts != tt.wantAttempts || len(out) != tt.wantAttempts {
				t.Fatalf("exit %d after %d attempts (output %q), want %d after %d", res.ExitCode, res.Attempts, out, tt.wantCode, tt.wantAttempts)
			}
			if err := res.Err(s); tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || err.Error() != tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if got := strings.Count(logs.String(), "running it again"); got != tt.wantAttempts-1 {
				t.Fatalf("%d retries logged, want %d:\n%s", got, tt.wantAttempts-1, logs)
			}
		})
	}
}

func TestRetriesRereadStdin(t *testing.T) {
	e, _ := newExec()
	counter := filepath.Join(t.TempDir(), "n")
	s := Spec{Argv: sh(`read line; echo "got $line"; n=$(cat ` + counter + ` 2>/dev/null || echo 0); echo $((n+1)) > ` + counter + `; [ $n -ge 1 ]`),
		Stdin: strings.NewReader("input\n"), Retries: 1, Backoff: fastBackoff}
	res, out, err := collect(t, e, s)
	if err != nil || res.ExitCode != 0 || strings.Join(out, ",") != "got input,got input" {
		t.Fatalf("res %+v err %v out %q", res, err, out)
	}
}

// alive reports whether pid is a live process: a zombie is dead (it only
// waits to be reaped, which PID 1 of a container may never do).
func alive(t *testing.T, pid int) bool {
	t.Helper()
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		t.Fatal(err)
	}
	// pid (comm) STATE …; comm may contain spaces and parentheses.
	rest := string(stat[bytes.LastIndexByte(stat, ')')+1:])
	return !strings.HasPrefix(strings.TrimSpace(rest), "Z")
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	tests := []struct {
		name    string
		script  string
		wantOut string
	}{
		// The program gets SIGTERM first and may clean up.
		{name: "SIGTERM first", script: `trap 'echo cleaning up; exit 1' TERM; sleep 30 & echo $! > PIDFILE; wait`, wantOut: "cleaning up"},
		// A child that ignores SIGTERM is killed after the grace.
		{name: "SIGKILL after the grace", script: `trap '' TERM; sleep 30 & echo $! > PIDFILE; wait; wait`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newExec()
			pidfile := filepath.Join(t.TempDir(), "pid")
			s := Spec{Argv: sh(strings.ReplaceAll(tt.script, "PIDFILE", pidfile)), Timeout: 300 * time.Millisecond, Retries: 2, Backoff: fastBackoff}
			start := time.Now()
			res, out, err := collect(t, e, s)
			elapsed := time.Since(start)
			if err == nil || err.Error() != "sh: killed after 300ms (timeout)" {
				t.Fatalf("err = %v", err)
			}
			if res.ExitCode != -1 || res.Attempts != 1 {
				t.Fatalf("result %+v: a timeout is not retried", res)
			}
			if elapsed > 300*time.Millisecond+e.KillGrace+2*time.Second {
				t.Fatalf("took %s", elapsed)
			}
			b, rerr := os.ReadFile(pidfile)
			pid, perr := strconv.Atoi(strings.TrimSpace(string(b)))
			if rerr != nil || perr != nil {
				t.Fatalf("child pid: %v %v", rerr, perr)
			}
			if alive(t, pid) {
				t.Fatalf("child sleep %d survived the timeout", pid)
			}
			if tt.wantOut != "" && !strings.Contains(strings.Join(out, "\n"), tt.wantOut) {
				t.Fatalf("output %q, want %q", out, tt.wantOut)
			}
		})
	}
}

func TestStoppedByCaller(t *testing.T) {
	e, _ := newExec()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	res, err := e.Run(ctx, Spec{Argv: sh("sleep 30")}, nil)
	if err == nil || !strings.Contains(err.Error(), "sh: stopped: context canceled") || res.ExitCode != -1 {
		t.Fatalf("res %+v err %v", res, err)
	}
}

func TestBackgroundProcessHoldingOutput(t *testing.T) {
	// A program that starts a daemon and exits: the daemon is left alone,
	// the program's own exit status counts, and the wait is bounded.
	e, logs := newExec()
	pidfile := filepath.Join(t.TempDir(), "pid")
	start := time.Now()
	res, _, err := collect(t, e, Spec{Argv: sh("sleep 30 & echo $! > " + pidfile + "; exit 0")})
	if err != nil || res.ExitCode != 0 {
		t.Fatalf("res %+v err %v", res, err)
	}
	if d := time.Since(start); d > e.KillGrace+2*time.Second {
		t.Fatalf("took %s", d)
	}
	if !strings.Contains(logs.String(), "keeps its output open") {
		t.Fatalf("no warning:\n%s", logs)
	}
	b, _ := os.ReadFile(pidfile)
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		if !alive(t, pid) {
			t.Fatalf("the background process was killed")
		}
		_ = syscallKill(pid)
	}
}

func syscallKill(pid int) error { return syscall.Kill(pid, syscall.SIGKILL) }

func TestStoppedWhileWaitingToRetry(t *testing.T) {
	e, _ := newExec()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	start := time.Now()
	res, err := e.Run(ctx, Spec{Argv: sh("exit 75"), Retries: 3, Backoff: retry.Policy{Initial: 5 * time.Second, Max: 5 * time.Second}}, nil)
	if err == nil || err.Error() != "sh: stopped before attempt 2: context canceled" || res.Attempts != 1 || res.ExitCode != 75 {
		t.Fatalf("res %+v err %v", res, err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s: the wait did not end with the context", d)
	}
}

func BenchmarkRunTrue(b *testing.B) {
	e := Exec{Redactor: &secret.Redactor{}}
	for b.Loop() {
		if res, err := e.Run(context.Background(), Spec{Argv: []string{"/bin/true"}}, nil); err != nil || res.ExitCode != 0 {
			b.Fatal(res, err)
		}
	}
}

func BenchmarkGroupRunning(b *testing.B) {
	// The /proc scan a timed-out program's group is polled with.
	for b.Loop() {
		if !groupRunning(syscall.Getpgrp()) {
			b.Fatal("the test's own group is not running")
		}
	}
}
