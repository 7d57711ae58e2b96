package chef

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/systemd"
)

// ChefClient is where the omnibus package and Debian-style packages put
// chef-client.
const ChefClient = "/usr/bin/chef-client"

// FirstRunTimeout bounds one chef-client run at first boot.
const FirstRunTimeout = time.Hour

// Explain says what chef-client's exit codes mean (Chef RFC 062).
var Explain = map[int]string{
	1:   "the chef-client run failed; its output above says which resource",
	2:   "chef-client was interrupted (SIGINT)",
	3:   "chef-client was terminated (SIGTERM)",
	35:  "the run finished and a reboot is scheduled",
	37:  "the run finished and a reboot is needed (the run asked for one but reboots are not allowed)",
	41:  "the run asked to reboot now",
	42:  "audit mode failures",
	172: "the Chef license was not accepted: set chef.chef_license (accept, accept-silent or accept-no-persist) after reading it",
	213: "chef-client upgraded itself during the run and exited so the new version can run next",
}

// clientArgv is how chef-client is called at first boot: knife's
// `chef-client -j first-boot.json [-E env]` plus our config path.
func clientArgv(bin string, ch *config.Chef) []string {
	argv := []string{bin, "-c", ch.ConfigPath, "-j", ch.JSONAttribs}
	if ch.LocalMode {
		argv = append(argv, "--local-mode")
	}
	if ch.Environment != config.DefaultChefEnvironment {
		argv = append(argv, "-E", ch.Environment)
	}
	return append(argv, "--no-color")
}

func licenseEnv(ch *config.Chef) []string {
	if ch.ChefLicense == "" {
		return nil
	}
	return []string{"CHEF_LICENSE=" + ch.ChefLicense}
}

// firstRunStep runs chef-client once. A chef-client exiting 1 (often the
// server or a package mirror not reachable yet at boot) is retried twice.
func (c Capability) firstRunStep(in *capability.Input, ch *config.Chef) *plan.Step {
	spec := command.Spec{
		Argv: clientArgv(ChefClient, ch), Env: licenseEnv(ch), Timeout: FirstRunTimeout,
		Name: "chef-client", Retries: 2, RetryOn: []int{1}, Explain: Explain,
	}
	if c.ChefClient != "" {
		spec.Argv[0] = c.ChefClient
	} else if root, _ := filepath.Abs(in.Root.Dir()); root != "/" {
		spec.Chroot = root
	}
	acts := []plan.Action{command.NewAction("chef-client", spec, in.Redactor)}
	if ch.Registration == config.ChefRegistrationClassic {
		acts = append(acts, &removeValidator{path: ch.ValidationKey})
	}
	return &plan.Step{Name: StepFirstRun, Frequency: plan.PerInstance, Done: in.IsDone(StepFirstRun), Actions: acts}
}

// periodicStep writes chef-client.service and chef-client.timer, as Chef's
// own chef_client_systemd_timer resource does, and enables the timer.
func periodicStep(in *capability.Input, ch *config.Chef) (*plan.Step, error) {
	exec := ChefClient + " -c " + ch.ConfigPath + " --no-color"
	if ch.LocalMode {
		exec += " --local-mode"
	}
	svcOpts := [][2]string{{"Type", "oneshot"}, {"ExecStart", exec}, {"SuccessExitStatus", "3 213 35 37 41"}}
	if ch.ChefLicense != "" {
		svcOpts = append(svcOpts, [2]string{"Environment", "CHEF_LICENSE=" + ch.ChefLicense})
	}
	svc, err := systemd.NewFile("", systemd.Sections(
		systemd.Section{Name: "Unit", Options: [][2]string{{"Description", "Chef Infra Client run"},
			{"After", "network-online.target"}, {"Wants", "network-online.target"}, {"ConditionPathExists", ch.ClientKey}}},
		systemd.Section{Name: "Service", Options: svcOpts},
	))
	if err != nil {
		return nil, err
	}
	timer, err := systemd.NewFile("", systemd.Sections(
		systemd.Section{Name: "Unit", Options: [][2]string{{"Description", "Chef Infra Client periodic run"}}},
		systemd.Section{Name: "Timer", Options: [][2]string{{"OnBootSec", "1min"},
			{"OnUnitInactiveSec", seconds(ch.Interval.Duration)}, {"RandomizedDelaySec", seconds(ch.Splay.Duration)}}},
		systemd.Section{Name: "Install", Options: [][2]string{{"WantedBy", "timers.target"}}},
	))
	if err != nil {
		return nil, err
	}
	enable := true
	acts, err := systemd.Actions(in.Root,
		systemd.Unit{Name: "chef-client.service", Body: svc},
		systemd.Unit{Name: "chef-client.timer", Body: timer, Enable: &enable, Start: true},
	)
	if err != nil {
		return nil, fmt.Errorf("chef: periodic runs: %w", err)
	}
	return &plan.Step{Name: StepPeriodic, Frequency: plan.PerInstance, Done: in.IsDone(StepPeriodic), Actions: acts}, nil
}

func seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) + "s" }

// removeValidator deletes validation.pem once chef-client has registered
// with it (knife never does; the validator can register any node).
type removeValidator struct{ path string }

func (r *removeValidator) Describe() plan.Description {
	return plan.Description{Kind: "remove", Path: r.path, Note: "the validator key, once the first chef-client run succeeded"}
}

func (r *removeValidator) Apply(ctx context.Context, env *plan.Env) error {
	removed, err := env.Root.Remove(r.path)
	if err != nil {
		return fmt.Errorf("chef: remove the validator key: %w", err)
	}
	if removed {
		env.Log.Info("validator key removed", "path", r.path)
	}
	return nil
}
