package plan

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// Script runs a program given as content (a user-data shell-script part). Its
// output is streamed to the log line by line through the redactor; a non-zero
// exit fails the step.
type Script struct {
	Name    string
	Body    []byte
	SHA256  string
	Env     []string // extra KEY=VALUE pairs
	Timeout time.Duration
}

// Describe implements Action. The body is never shown: user-data is secret.
func (s *Script) Describe() Description {
	return Description{Kind: "command", Command: []string{s.Name}, SHA256: s.SHA256, Size: int64(len(s.Body))}
}

// Apply implements Action.
func (s *Script) Apply(ctx context.Context, env *Env) error {
	path := filepath.Join(env.Scratch, "script-"+s.SHA256[:12])
	if err := os.WriteFile(path, s.Body, 0o700); err != nil {
		return fmt.Errorf("script %s: %w", s.Name, err)
	}
	defer os.Remove(path)
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	cmd := exec.CommandContext(ctx, path)
	if len(s.Body) < 2 || string(s.Body[:2]) != "#!" {
		cmd = exec.CommandContext(ctx, "/bin/sh", path)
	}
	cmd.Dir = env.Root.Dir()
	cmd.Env = append(os.Environ(), s.Env...)
	// Own process group, so a timeout kills the script's children too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	log := env.Log.With("script", s.Name)
	out := env.Redactor.LineWriter(func(line string) { log.Info(line) })
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	out.Close()
	var exit *exec.ExitError
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return fmt.Errorf("script %s: killed after %s (timeout)", s.Name, timeout)
	case errors.As(err, &exit):
		return fmt.Errorf("script %s: exited with status %d after %s", s.Name, exit.ExitCode(), time.Since(start).Round(time.Millisecond))
	case err != nil:
		return fmt.Errorf("script %s: %w", s.Name, err)
	}
	log.Info("script finished", "duration", time.Since(start).Round(time.Millisecond).String())
	return nil
}
