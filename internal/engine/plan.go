package engine

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

// Step names. They are the keys of per-instance records, so they are stable.
const (
	StepDatasource = "datasource"
	StepConfig     = "config"
	StepFiles      = "files"
	stepScript     = "script:" // + the part's name
)

// maxSecretRedact bounds which secret files are also registered with the
// redactor: a key or a password is small; a large secret blob is not going to
// be echoed by anything.
const maxSecretRedact = 64 << 10

// PlanInput is what planning needs besides the loaded configuration.
type PlanInput struct {
	// Scratch is a private directory where fetched content is staged.
	Scratch string
	// Done reports whether a per-instance step already ran for this instance;
	// such steps are planned without fetching their content.
	Done     func(step string) bool
	Redactor *secret.Redactor
	// Root is the target root, passed to scripts as BOOTSTRAP_ROOT.
	Root string
}

// Capability turns its section of the configuration into steps. Files is the
// first; Chef, Puppet, networks and the VPN gateway join this list, each in its
// own package, without the engine knowing more than this interface.
type Capability interface {
	Name() string
	Steps(ctx context.Context, l *Loaded, in PlanInput) ([]*plan.Step, error)
}

// capabilities run in this order; user-data scripts come after all of them.
var capabilities = []Capability{filesCapability{}}

// Plan turns a loaded configuration into the ordered steps of a run: the
// capabilities, then user-data scripts (cloud-init's order: scripts run last so
// they can rely on everything else).
func Plan(ctx context.Context, l *Loaded, in PlanInput) (*plan.Plan, error) {
	if in.Done == nil {
		in.Done = func(string) bool { return false }
	}
	p := &plan.Plan{Instance: l.Meta.InstanceID, Datasource: l.Meta.Source, Layers: l.Layers}
	for _, c := range capabilities {
		steps, err := c.Steps(ctx, l, in)
		if err != nil {
			return nil, err
		}
		p.Steps = append(p.Steps, steps...)
	}
	for _, sc := range l.Scripts {
		sum := sha256.Sum256(sc.Body)
		name := stepScript + sc.Name
		p.Steps = append(p.Steps, &plan.Step{
			Name: name, Frequency: plan.PerInstance, Done: in.Done(name),
			Actions: []plan.Action{&plan.Script{
				Name: sc.Name, Body: sc.Body, SHA256: hex.EncodeToString(sum[:]),
				Env: []string{"BOOTSTRAP_ROOT=" + in.Root, "BOOTSTRAP_INSTANCE_ID=" + l.Meta.InstanceID},
			}},
		})
	}
	return p, nil
}

// filesCapability is the files: section.
type filesCapability struct{}

func (filesCapability) Name() string { return StepFiles }

func (filesCapability) Steps(ctx context.Context, l *Loaded, in PlanInput) ([]*plan.Step, error) {
	if len(l.Config.Files) == 0 {
		return nil, nil
	}
	s := &plan.Step{Name: StepFiles, Frequency: plan.PerInstance, Done: in.Done(StepFiles)}
	for _, f := range l.Config.Files {
		a, err := planFile(ctx, l, f, in, s.Done)
		if err != nil {
			return nil, err
		}
		s.Actions = append(s.Actions, a)
	}
	return []*plan.Step{s}, nil
}

// planFile resolves a file's content: inline content is decoded in memory;
// a source is fetched (streamed) into the scratch directory, so the digest in
// the plan is the digest that will be written.
func planFile(ctx context.Context, l *Loaded, f config.File, in PlanInput, skip bool) (plan.Action, error) {
	a := &plan.File{Path: f.Path, Owner: f.Owner, Group: f.Group, Mode: f.Mode.FS(), Secret: f.Secret, Source: f.Source}
	if skip {
		a.Open = func() (io.ReadCloser, error) { return nil, fmt.Errorf("%s: step already done", f.Path) }
		return a, nil
	}
	if f.Content != nil {
		data, err := f.Bytes()
		if err != nil {
			return nil, badinput.Wrap(fmt.Errorf("files: %s: %w", f.Path, err))
		}
		if f.Secret {
			in.Redactor.Add(string(data))
		}
		sum := sha256.Sum256(data)
		a.SHA256, a.Size = hex.EncodeToString(sum[:]), int64(len(data))
		a.Open = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }
		return a, nil
	}
	blob, err := l.Fetcher.File(ctx, f.Source, f.SHA256, in.Scratch)
	if err != nil {
		return nil, fmt.Errorf("files: %s: %w", f.Path, err)
	}
	if f.Secret && blob.Size <= maxSecretRedact {
		b, err := os.ReadFile(blob.Path)
		if err != nil {
			return nil, err
		}
		in.Redactor.Add(string(b))
	}
	a.SHA256, a.Size = blob.SHA256, blob.Size
	a.Open = func() (io.ReadCloser, error) {
		f, err := os.Open(blob.Path)
		if err != nil {
			return nil, err
		}
		return &rootfs.Staged{File: f, SHA256: blob.SHA256}, nil
	}
	return a, nil
}
