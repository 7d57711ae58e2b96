// Package capability is the one seam every capability stands on: files,
// packages, services, commands, Chef, Puppet, networks and the VPN gateway.
//
// A capability turns its section of the merged configuration into plan steps.
// It gets everything it needs through Input — the typed config, the facts,
// one resource fetcher, the redactor, a logger, the target root and a scratch
// directory — and nothing else, so it never imports the engine (the engine
// imports it and holds the one ordered list). That keeps each capability
// testable alone, with a fake fetcher and a temp root, the way Ignition's
// stages get a config, a logger, a root and a fetcher through a small
// interface.
package capability

import (
	"context"
	"log/slog"

	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/fetch"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

// Capability turns its section of the configuration into steps. Step names
// are keys of the per-instance records, so each capability owns them as
// constants and never renames them.
type Capability interface {
	// Name is what the capability is called in logs and docs.
	Name() string
	// Steps plans the capability's work. Bad input (something the operator
	// must fix) is returned wrapped with badinput.Wrap; anything else fails
	// the run. Steps must not change the target: only Apply does.
	Steps(ctx context.Context, in *Input) ([]*plan.Step, error)
}

// Fetcher is the one resource fetcher (s3://, https://, file://), with the
// run's retries, deadline and role credentials. *fetch.Fetcher implements it;
// tests pass a fake.
type Fetcher interface {
	// Bytes fetches into memory, at most limit bytes. For secrets (keys,
	// passwords): register what it returns with the redactor before use.
	Bytes(ctx context.Context, src, wantSHA256 string, limit int64) ([]byte, error)
	// File fetches into a new temp file in dir, streamed.
	File(ctx context.Context, src, wantSHA256, dir string) (*fetch.Blob, error)
}

// Input is what a capability plans from.
type Input struct {
	// Config is the merged, validated configuration (defaults applied).
	Config *config.Config
	// Facts are the instance facts that ${name} interpolates (instance_id,
	// region, …): every known name is present, empty when unknown.
	Facts map[string]string
	// Datasource is ec2, file or none.
	Datasource string
	Fetcher    Fetcher
	// Redactor must learn every secret value the capability reads before the
	// value can reach a log, an error or a command's output.
	Redactor *secret.Redactor
	Log      *slog.Logger
	// Root is the target root; owners, package databases and the init system
	// are read from it, never from the host's /.
	Root *rootfs.Root
	// Scratch is the run's private (0700) directory for staged downloads;
	// removed when the run ends.
	Scratch string
	// Image is set for an image build (bootstrap --image): write and install
	// only what belongs in an image, and leave per-instance identity
	// (registrations, keys, device-bound network config) to first boot.
	Image bool
	// Done reports whether a per-instance step already ran for this
	// instance; nil means none did. Use IsDone.
	Done func(step string) bool
}

// IsDone reports whether the per-instance step already ran for this
// instance: such a step is planned as done (shown, skipped), without
// fetching its content.
func (in *Input) IsDone(step string) bool {
	return in.Done != nil && in.Done(step)
}

// Instance is the instance-id the run is for.
func (in *Input) Instance() string { return in.Facts["instance_id"] }
