package command

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/secret"
)

// Action runs one program as a plan action: `plan` shows its redacted argv
// and how it runs, `run` runs it.
type Action struct {
	// Name is what the action is called in logs: an operator's command's
	// name, or a capability's label for its program.
	Name string
	Spec Spec
	// Cwd is the working directory as the operator wrote it (a path on the
	// target), for the plan; Spec.Dir is where it is on this machine.
	Cwd string
	// Creates, when set, is a path on the target whose existence means
	// the command has done its work: then it is not run.
	Creates string
	// Runner runs the program; nil means Exec with the run's redactor.
	Runner Runner
	// KillGrace is passed to Exec when Runner is nil (zero: its default).
	KillGrace time.Duration

	// redactor is the run's: Describe has no Env to take it from.
	redactor *secret.Redactor
}

// NewAction returns an action that runs s. red is the run's redactor, used
// by Describe to hide secrets in the arguments.
func NewAction(name string, s Spec, red *secret.Redactor) *Action {
	return &Action{Name: name, Spec: s, redactor: red}
}

// Describe implements plan.Action. Arguments are redacted one by one.
func (a *Action) Describe() plan.Description {
	argv := make([]string, len(a.Spec.Argv))
	for i, arg := range a.Spec.Argv {
		argv[i] = a.redactor.Redact(arg)
	}
	return plan.Description{Kind: "command", Command: argv, Note: a.note()}
}

// note says how the command runs: where, how long, how often, unless what.
func (a *Action) note() string {
	timeout := a.Spec.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var parts []string
	if a.Cwd != "" {
		parts = append(parts, "in "+a.Cwd)
	}
	if len(a.Spec.Env) > 0 {
		// Names only: values may be secret.
		var keys []string
		for _, kv := range a.Spec.Env {
			if k, _, _ := strings.Cut(kv, "="); !bootstrapEnv[k] {
				keys = append(keys, k)
			}
		}
		if len(keys) > 0 {
			parts = append(parts, "env "+strings.Join(keys, ","))
		}
	}
	parts = append(parts, "timeout "+config.Duration{Duration: timeout}.String())
	if a.Spec.Retries > 0 {
		on := "any failure"
		if len(a.Spec.RetryOn) > 0 {
			codes := make([]string, len(a.Spec.RetryOn))
			for i, c := range a.Spec.RetryOn {
				codes[i] = strconv.Itoa(c)
			}
			on = "exit " + strings.Join(codes, ",")
		}
		parts = append(parts, fmt.Sprintf("retries %d on %s", a.Spec.Retries, on))
	}
	if a.Creates != "" {
		parts = append(parts, "unless "+a.Creates+" exists")
	}
	return strings.Join(parts, "; ")
}

// Apply implements plan.Action.
func (a *Action) Apply(ctx context.Context, env *plan.Env) error {
	log := env.Log.With("command", a.Name)
	if a.Creates != "" {
		// Resolved inside the target as the booted machine would; a
		// dangling symlink does not count.
		_, err := env.Root.Stat(a.Creates)
		switch {
		case err == nil:
			log.Info("command not run: what it creates is there", "creates", a.Creates)
			return nil
		case !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR):
			return fmt.Errorf("command %s: check creates: %w", a.Name, err)
		}
	}
	runner := a.Runner
	if runner == nil {
		runner = Exec{Redactor: env.Redactor, Log: log, KillGrace: a.KillGrace}
	}
	start := time.Now()
	res, err := runner.Run(ctx, a.Spec, func(line string) { log.Info(line) })
	if err == nil {
		err = res.Err(a.Spec)
	}
	if err != nil {
		return env.Redactor.Error(err)
	}
	log.Info("command finished", "duration", time.Since(start).Round(time.Millisecond).String(), "attempts", res.Attempts)
	return nil
}
