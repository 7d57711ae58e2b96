package command

import (
	"context"
	"path/filepath"

	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/plan"
)

// StepPrefix starts the step name of each operator's command: command:NAME.
// Step names are per-instance record keys: one step per command means a run
// that failed on the third command redoes only the third and later ones.
const StepPrefix = "command:"

// bootstrapEnv are set for every command (as for user-data scripts), so
// plans do not list them.
var bootstrapEnv = map[string]bool{"BOOTSTRAP_ROOT": true, "BOOTSTRAP_INSTANCE_ID": true}

// Early is the commands: entries with stage: early (cloud-init's bootcmd):
// they run before every other capability, by default on every run.
type Early struct{}

// Final is the commands: entries with stage: final (cloud-init's runcmd):
// they run after every other capability, by default once per instance.
type Final struct{}

// Name implements capability.Capability.
func (Early) Name() string { return "commands (early)" }

// Name implements capability.Capability.
func (Final) Name() string { return "commands (final)" }

// Steps implements capability.Capability.
func (Early) Steps(_ context.Context, in *capability.Input) ([]*plan.Step, error) {
	return commandSteps(in, config.StageEarly), nil
}

// Steps implements capability.Capability.
func (Final) Steps(_ context.Context, in *capability.Input) ([]*plan.Step, error) {
	return commandSteps(in, config.StageFinal), nil
}

// commandSteps plans one step per command of the stage, in the order listed.
func commandSteps(in *capability.Input, stage string) []*plan.Step {
	var steps []*plan.Step
	for _, c := range in.Config.Commands {
		if c.Stage != stage {
			continue
		}
		a := NewAction(c.Name, commandSpec(in, c), in.Redactor)
		a.Cwd, a.Creates = c.Cwd, c.Creates
		s := &plan.Step{Name: StepPrefix + c.Name, Frequency: plan.Always, Actions: []plan.Action{a}}
		if in.Image {
			// Commands act on the machine they run on: in an image build
			// that is the build host, not the image. They run at boot.
			s.Actions = []plan.Action{firstBoot{a}}
			steps = append(steps, s)
			continue
		}
		if c.Frequency == config.FrequencyPerInstance {
			s.Frequency = plan.PerInstance
			s.Done = in.IsDone(s.Name)
		}
		steps = append(steps, s)
	}
	return steps
}

// commandSpec is how the command runs: on this machine, like user-data
// scripts, with the target root and the instance-id in its environment and
// its working directory under the root.
func commandSpec(in *capability.Input, c config.Command) Spec {
	argv := c.Argv
	if len(argv) == 0 {
		argv = []string{"/bin/sh", "-c", c.Shell}
	}
	// Absolute, since the command's working directory is not where
	// bootstrap was started (--root may be given relative).
	root, err := filepath.Abs(in.Root.Dir())
	if err != nil {
		root = in.Root.Dir()
	}
	env := append([]string(nil), c.Env...)
	env = append(env, "BOOTSTRAP_ROOT="+root, "BOOTSTRAP_INSTANCE_ID="+in.Instance())
	return Spec{
		Argv:    argv,
		Env:     env,
		Dir:     filepath.Join(root, c.Cwd),
		Timeout: c.Timeout.Duration,
		Name:    "command " + c.Name,
		Retries: c.Retries,
		RetryOn: c.RetryOn,
	}
}

// firstBoot is a command left for the booted machine in an image build:
// shown in the plan, not run, and not recorded (its step is always).
type firstBoot struct{ a *Action }

// Describe implements plan.Action.
func (f firstBoot) Describe() plan.Description {
	d := f.a.Describe()
	d.Note = "waits for first boot (--image); " + d.Note
	return d
}

// Apply implements plan.Action.
func (f firstBoot) Apply(_ context.Context, env *plan.Env) error {
	env.Log.Info("command waits for first boot (--image)", "command", f.a.Name)
	return nil
}
