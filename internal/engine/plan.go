package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"

	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/chef"
	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/files"
	"github.com/opsboot/bootstrap/internal/netsetup"
	"github.com/opsboot/bootstrap/internal/pkgmgr"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/puppet"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
	"github.com/opsboot/bootstrap/internal/systemd"
)

// Step names of the stages the engine runs itself. They are the keys of
// per-instance records, so they are stable; capabilities own theirs.
const (
	StepDatasource = "datasource"
	StepConfig     = "config"
	stepScript     = "script:" // + the part's name
)

// PlanInput is what planning needs besides the loaded configuration.
type PlanInput struct {
	// Root is the target root: owners, package databases and the init
	// system are read from it.
	Root *rootfs.Root
	// Scratch is a private directory where fetched content is staged.
	Scratch string
	// Done reports whether a per-instance step already ran for this instance;
	// such steps are planned without fetching their content.
	Done     func(step string) bool
	Redactor *secret.Redactor
	Log      *slog.Logger
	// Image marks an image build (--image): capabilities leave per-instance
	// identity to first boot.
	Image bool
}

// capabilities run in this order, and user-data scripts after all of them
// (cloud-init's order: scripts run last so they can rely on everything else):
//
//   - early commands (cloud-init's bootcmd): every boot, before anything, so
//     they can prepare what the rest needs;
//   - files: plain configuration the network, packages and agents read;
//   - network, then the VPN gateway: so package mirrors and configuration
//     servers behind the VPN are reachable;
//   - packages: installed from the network just set up;
//   - deferred files: their owners are users the packages create;
//   - services: units for what the packages installed;
//   - Chef, then Puppet: agents converge a machine that has everything above;
//   - final commands (cloud-init's runcmd): once per instance, at the end.
//
// Each joins the list in its own package, on the capability seam.
var capabilities = []capability.Capability{
	command.Early{},
	files.Files{},
	netsetup.Network{},
	pkgmgr.Capability{},
	files.Deferred{},
	systemd.Services{},
	chef.Capability{},
	puppet.Capability{},
	command.Final{},
}

// Plan turns a loaded configuration into the ordered steps of a run: the
// capabilities, then user-data scripts.
func Plan(ctx context.Context, l *Loaded, in PlanInput) (*plan.Plan, error) {
	log := in.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cin := &capability.Input{
		Config: l.Config, Facts: l.Meta.Facts(), Datasource: l.Meta.Source, Fetcher: l.Fetcher,
		Redactor: in.Redactor, Log: log, Root: in.Root, Scratch: in.Scratch, Image: in.Image, Done: in.Done,
	}
	p := &plan.Plan{Instance: l.Meta.InstanceID, Datasource: l.Meta.Source, Layers: l.Layers}
	for _, c := range capabilities {
		steps, err := c.Steps(ctx, cin)
		if err != nil {
			return nil, err
		}
		p.Steps = append(p.Steps, steps...)
	}
	for _, sc := range l.Scripts {
		sum := sha256.Sum256(sc.Body)
		name := stepScript + sc.Name
		p.Steps = append(p.Steps, &plan.Step{
			Name: name, Frequency: plan.PerInstance, Done: cin.IsDone(name),
			Actions: []plan.Action{&plan.Script{
				Name: sc.Name, Body: sc.Body, SHA256: hex.EncodeToString(sum[:]),
				Env: []string{"BOOTSTRAP_ROOT=" + in.Root.Dir(), "BOOTSTRAP_INSTANCE_ID=" + l.Meta.InstanceID},
			}},
		})
	}
	return p, nil
}
