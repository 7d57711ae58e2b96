// Package plan is the one description of what a run does. Capabilities turn
// configuration into Steps of Actions; `bootstrap plan` prints each action's
// Description, and `bootstrap run` applies the very same values, so the two
// cannot disagree.
//
// The package is a leaf: capabilities (files, scripts, and later Chef, Puppet,
// networks, VPN) import it, the engine imports them.
package plan

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

// Frequency says when a step runs again.
type Frequency string

const (
	// Always steps run on every boot.
	Always Frequency = "always"
	// PerInstance steps run once per instance-id; on a reboot they are skipped,
	// on an instance launched from an image of this one they run again.
	PerInstance Frequency = "per-instance"
)

// Step is a named, journaled unit of work. It is recorded done only when every
// action has applied and its effects are durable.
type Step struct {
	Name      string    `json:"name"`
	Frequency Frequency `json:"frequency"`
	Actions   []Action  `json:"-"`
	// Done is set by the planner when a per-instance step already ran for this
	// instance; such a step is shown but skipped.
	Done bool `json:"done,omitempty"`
}

// Action is one effect on the machine. Describe must not reveal secrets.
type Action interface {
	Describe() Description
	Apply(ctx context.Context, env *Env) error
}

// Description is what `plan` shows of an action: enough to review, never a
// secret value.
type Description struct {
	Kind    string   `json:"kind"`              // file, command, package, service
	Name    string   `json:"name,omitempty"`    // a package's name
	Version string   `json:"version,omitempty"` // a package's pinned or installed version
	Path    string   `json:"path,omitempty"`
	Owner   string   `json:"owner,omitempty"`
	Group   string   `json:"group,omitempty"`
	Mode    string   `json:"mode,omitempty"`
	SHA256  string   `json:"sha256,omitempty"` // omitted for secret content
	Size    int64    `json:"size,omitempty"`
	Secret  bool     `json:"secret,omitempty"`
	Source  string   `json:"source,omitempty"`
	Command []string `json:"command,omitempty"`
	Note    string   `json:"note,omitempty"`
}

// Env is what actions apply against.
type Env struct {
	Root     *rootfs.Root
	Log      *slog.Logger
	Redactor *secret.Redactor
	// Scratch is a private (0700) directory for the run's temporary files.
	Scratch string
	// Hook, when set, is called after each action applied; the engine uses it
	// for crash-test failpoints.
	Hook func(a Action)
	// Marks remembers, for this instance, effects that cannot be redone
	// blindly after a crash (an append already made). Nil remembers nothing.
	Marks Marks
}

// Marks are small per-instance records that survive a crash. The engine
// keeps them with the instance's step records.
type Marks interface {
	Marked(key string) bool
	Mark(key string) error
}

// Plan is the ordered list of steps of one run.
type Plan struct {
	Instance   string   `json:"instance"`
	Datasource string   `json:"datasource"`
	Layers     []string `json:"layers"`
	Steps      []*Step  `json:"steps"`
}

// JSONStep is the serialisable form of a step with its action descriptions.
type JSONStep struct {
	Name      string        `json:"name"`
	Frequency Frequency     `json:"frequency"`
	Done      bool          `json:"done,omitempty"`
	Actions   []Description `json:"actions"`
}

// JSON returns the plan in its serialisable form.
func (p *Plan) JSON() any {
	steps := make([]JSONStep, 0, len(p.Steps))
	for _, s := range p.Steps {
		js := JSONStep{Name: s.Name, Frequency: s.Frequency, Done: s.Done, Actions: []Description{}}
		for _, a := range s.Actions {
			js.Actions = append(js.Actions, shown(a))
		}
		steps = append(steps, js)
	}
	return struct {
		Instance   string     `json:"instance"`
		Datasource string     `json:"datasource"`
		Layers     []string   `json:"layers"`
		Steps      []JSONStep `json:"steps"`
	}{p.Instance, p.Datasource, shownLayers(p.Layers), steps}
}

// Write prints the plan for a person.
func (p *Plan) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "plan for instance %s (datasource %s)\n", p.Instance, p.Datasource)
	for _, l := range shownLayers(p.Layers) {
		fmt.Fprintf(&b, "  layer %s\n", l)
	}
	if len(p.Steps) == 0 {
		b.WriteString("nothing to do\n")
	}
	for _, s := range p.Steps {
		state := ""
		if s.Done {
			state = ", done for this instance: will be skipped"
		}
		fmt.Fprintf(&b, "step %s (%s%s)\n", s.Name, s.Frequency, state)
		for _, a := range s.Actions {
			b.WriteString("  " + shown(a).String() + "\n")
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// String is the one-line form used by `plan` and the run log.
func (d Description) String() string {
	var parts []string
	switch d.Kind {
	case "file", "append":
		verb := "file"
		if d.Kind == "append" {
			verb = "append to"
		}
		parts = append(parts, verb, d.Path, d.Owner+":"+d.Group, d.Mode)
		switch {
		case d.Secret:
			parts = append(parts, fmt.Sprintf("secret (%d bytes)", d.Size))
		case d.SHA256 != "":
			parts = append(parts, "sha256:"+d.SHA256, fmt.Sprintf("(%d bytes)", d.Size))
		}
		if d.Source != "" {
			parts = append(parts, "from", d.Source)
		}
		if d.Kind == "append" {
			parts = append(parts, "(once per instance)")
		}
	case "check":
		parts = append(parts, "check that", d.Note)
		d.Note = ""
	case "command":
		parts = append(parts, "run", strings.Join(d.Command, " "))
		if d.SHA256 != "" {
			parts = append(parts, "sha256:"+d.SHA256)
		}
	case "package":
		parts = append(parts, "package")
		parts = append(parts, d.Command...) // an index update or upgrade
		if d.Name != "" {
			parts = append(parts, d.Name)
		}
		if d.Version != "" {
			parts = append(parts, d.Version)
		}
		if d.Source != "" {
			parts = append(parts, "from", d.Source)
		}
		if d.SHA256 != "" {
			parts = append(parts, "sha256:"+d.SHA256)
		}
	case "service":
		if d.Path == "" {
			parts = append(parts, "systemd") // the running manager itself
		} else {
			parts = append(parts, "unit", d.Path)
		}
		if d.SHA256 != "" {
			parts = append(parts, d.Mode, "sha256:"+d.SHA256, fmt.Sprintf("(%d bytes)", d.Size))
		}
	default:
		parts = append(parts, d.Kind, d.Path)
	}
	if d.Note != "" {
		parts = append(parts, "("+d.Note+")")
	}
	return strings.Join(parts, " ")
}

// shown is what plan shows of an action: its description with the source
// scrubbed (a presigned URL's signature, credential and token), whichever
// action described itself.
func shown(a Action) Description {
	d := a.Describe()
	d.Source = secret.Source(d.Source)
	return d
}

func shownLayers(layers []string) []string {
	if layers == nil {
		return nil
	}
	out := make([]string, len(layers))
	for i, l := range layers {
		out[i] = secret.Source(l)
	}
	return out
}
