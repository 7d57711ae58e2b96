package systemd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
)

// unitSpec is how unit files are written, as packages install them.
var unitSpec = rootfs.FileSpec{Mode: 0o644, Owner: "root", Group: "root"}

// Actions plans units under root: one action per unit (its files, and
// offline its links), then, when systemd runs the root, one action that
// reloads systemd and enables, masks and starts through D-Bus. Chef's and
// Puppet's capabilities call it for their periodic-run units; errors are
// the operator's to fix (a masked or aliased unit, a bad [Install]).
func Actions(root *rootfs.Root, units ...Unit) ([]plan.Action, error) {
	live := Booted(root.Dir())
	r := &resolver{root: root, pending: map[string]*Unit{}}
	for i, u := range units {
		// Capabilities build units from Go values: check what the
		// services: section checks when it decodes.
		if msg := config.CheckUnitName(u.Name); msg != "" {
			return nil, fmt.Errorf("unit name: %s", msg)
		}
		if r.pending[u.Name] != nil {
			return nil, fmt.Errorf("unit %s given twice", u.Name)
		}
		for _, d := range u.Dropins {
			if d.Name != path.Base(d.Name) || !strings.HasSuffix(d.Name, ".conf") {
				return nil, fmt.Errorf("%s: drop-in name %q: want a file name ending in .conf", u.Name, d.Name)
			}
		}
		r.pending[u.Name] = &units[i]
	}
	s := &session{changed: map[string]bool{}}
	var out []plan.Action
	var acts []*UnitAction
	for i, u := range units {
		a := &UnitAction{Unit: u, Live: live, session: s}
		if err := a.planLinks(r); err != nil {
			var ie *installError
			if errors.As(err, &ie) {
				return nil, &linkError{index: i, err: err}
			}
			return nil, err
		}
		acts = append(acts, a)
		out = append(out, a)
	}
	if live {
		out = append(out, &Activate{Units: acts, session: s})
	}
	return out, nil
}

// linkError says which unit's enablement cannot be planned as asked, so
// the services: capability can place it at that entry's enabled: key as
// bad input.
type linkError struct {
	index int
	err   error
}

func (e *linkError) Error() string { return e.err.Error() }
func (e *linkError) Unwrap() error { return e.err }

// session is what a step's unit actions tell its Activate action.
type session struct {
	changed map[string]bool // units whose files this run rewrote
}

// UnitAction writes one unit's files and, offline, makes or removes its
// links. Apply is idempotent: an unchanged file is not rewritten (its mtime
// is kept) and a link already right is left alone.
type UnitAction struct {
	Unit Unit
	// Live: systemd runs the root; links and starts are Activate's.
	Live bool
	// Links are the links enabling makes, computed when planned.
	Links []Link
	// Unlinks are the links disabling removes.
	Unlinks []string
	// lookupLater: the unit was not on the root when planned (a package
	// installs it in this run); its links are computed when applied.
	lookupLater bool
	session     *session
}

func (a *UnitAction) planLinks(r *resolver) error {
	u := a.Unit
	if u.Enable == nil {
		return nil
	}
	if !*u.Enable {
		un, err := r.disableLinks(u.Name)
		if err != nil {
			return err
		}
		a.Unlinks = un
		return nil
	}
	links, err := r.enableLinks(u.Name)
	switch {
	case errors.Is(err, errNotFound) && u.Body == nil:
		a.lookupLater = true
	case err != nil:
		return err // names the unit
	}
	a.Links = links
	return nil
}

func (a *UnitAction) unitPath() string { return path.Join(ConfigDir, a.Unit.Name) }

func (a *UnitAction) dropinPath(f *File) string {
	return path.Join(ConfigDir, a.Unit.Name+".d", f.Name)
}

// Describe implements plan.Action.
func (a *UnitAction) Describe() plan.Description {
	u := a.Unit
	d := plan.Description{Kind: "service", Path: u.Name}
	if u.Body != nil {
		d.Path, d.Mode, d.SHA256, d.Size = a.unitPath(), "0644", u.Body.SHA256, int64(len(u.Body.Data))
	}
	var notes []string
	for _, f := range u.Dropins {
		notes = append(notes, fmt.Sprintf("drop-in %s 0644 sha256:%s", a.dropinPath(f), f.SHA256))
	}
	if u.Mask != nil {
		if *u.Mask {
			notes = append(notes, "mask: "+a.unitPath()+" -> /dev/null")
		} else {
			notes = append(notes, "unmask")
		}
	}
	switch {
	case u.Enable == nil:
	case *u.Enable && a.lookupLater:
		notes = append(notes, "enable: the links from its Install section, read when applied (the unit is not on the root yet)")
	case *u.Enable:
		var ls []string
		for _, l := range a.Links {
			ls = append(ls, strings.TrimPrefix(l.Path, ConfigDir+"/")+" -> "+l.Target)
		}
		notes = append(notes, "enable: "+strings.Join(ls, ", "))
	case len(a.Unlinks) == 0:
		notes = append(notes, "disable: no links to remove")
	default:
		notes = append(notes, "disable: remove "+strings.Join(a.Unlinks, ", "))
	}
	if u.Start {
		switch {
		case a.Live:
			notes = append(notes, "start now, restarted if this run changes its files")
		case u.Enable != nil && *u.Enable:
			notes = append(notes, "starts at boot: systemd is not running this root")
		default:
			notes = append(notes, "not started: systemd is not running this root, and the unit is not enabled here to start at boot")
		}
	}
	d.Note = strings.Join(notes, "; ")
	return d
}

// Apply implements plan.Action.
func (a *UnitAction) Apply(ctx context.Context, env *plan.Env) error {
	u := a.Unit
	changed := false
	write := func(p string, f *File) error {
		same, err := env.Root.Current(p, f.SHA256, unitSpec)
		if err != nil || same {
			return err
		}
		if _, _, err := env.Root.WriteFile(p, bytes.NewReader(f.Data), unitSpec); err != nil {
			return err
		}
		changed = true
		env.Log.Info("unit file written", "path", p, "bytes", len(f.Data))
		return nil
	}
	if u.Body != nil {
		if err := write(a.unitPath(), u.Body); err != nil {
			return err
		}
	}
	for _, f := range u.Dropins {
		if err := write(a.dropinPath(f), f); err != nil {
			return err
		}
	}
	if changed {
		a.session.changed[u.Name] = true
	}
	if a.Live {
		return nil
	}
	if err := a.applyMask(env); err != nil {
		return err
	}
	links := a.Links
	if a.lookupLater {
		r := &resolver{root: env.Root}
		var err error
		if links, err = r.enableLinks(u.Name); err != nil {
			return fmt.Errorf("services: %s: %w", u.Name, err)
		}
	}
	for _, l := range links {
		made, err := env.Root.Symlink(l.Target, l.Path)
		if err != nil {
			return err
		}
		if made {
			env.Log.Info("unit link created", "path", l.Path, "target", l.Target)
		}
	}
	for _, p := range a.Unlinks {
		gone, err := env.Root.Remove(p)
		if err != nil {
			return err
		}
		if gone {
			env.Log.Info("unit link removed", "path", p)
		}
	}
	return nil
}

// applyMask masks or unmasks offline, as systemctl --root does: a link
// /etc/systemd/system/<name> -> /dev/null.
func (a *UnitAction) applyMask(env *plan.Env) error {
	if a.Unit.Mask == nil {
		return nil
	}
	p := a.unitPath()
	fi, err := env.Root.Lstat(p)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	isMask := false
	if exists && fi.Mode()&fs.ModeSymlink != 0 {
		t, err := env.Root.Readlink(p)
		if err != nil {
			return err
		}
		isMask = t == "/dev/null"
	}
	if !*a.Unit.Mask {
		if isMask {
			if _, err := env.Root.Remove(p); err != nil {
				return err
			}
			env.Log.Info("unit unmasked", "unit", a.Unit.Name)
		}
		return nil
	}
	if exists && !isMask {
		return fmt.Errorf("services: %s: cannot mask: %s exists and is not a mask; remove it first", a.Unit.Name, p)
	}
	made, err := env.Root.Symlink("/dev/null", p)
	if made {
		env.Log.Info("unit masked", "unit", a.Unit.Name)
	}
	return err
}

// Activate tells a running systemd about a step's units: daemon-reload
// when their files changed, then unmask, mask, enable, disable (and reload again
// if that changed links), then start each unit to be started, waiting for
// each job. It is planned only when systemd runs the root.
type Activate struct {
	Units   []*UnitAction
	session *session
}

// Describe implements plan.Action.
func (a *Activate) Describe() plan.Description {
	var steps []string
	steps = append(steps, "daemon-reload if a unit file changed")
	for _, l := range []struct {
		verb  string
		names []string
	}{
		{"unmask", a.names(func(u Unit) bool { return u.Mask != nil && !*u.Mask })},
		{"mask", a.names(func(u Unit) bool { return u.Mask != nil && *u.Mask })},
		{"enable", a.names(func(u Unit) bool { return u.Enable != nil && *u.Enable })},
		{"disable", a.names(func(u Unit) bool { return u.Enable != nil && !*u.Enable })},
		{"start", a.names(func(u Unit) bool { return u.Start })},
	} {
		if len(l.names) > 0 {
			steps = append(steps, l.verb+" "+strings.Join(l.names, " "))
		}
	}
	return plan.Description{Kind: "service", Note: strings.Join(steps, ", then ")}
}

func (a *Activate) names(keep func(Unit) bool) []string {
	var out []string
	for _, ua := range a.Units {
		if keep(ua.Unit) {
			out = append(out, ua.Unit.Name)
		}
	}
	return out
}

// Apply implements plan.Action.
func (a *Activate) Apply(ctx context.Context, env *plan.Env) error {
	m, err := Connect(ctx)
	if err != nil {
		return err
	}
	defer m.Close()
	// Files this run did not change may still be newer than what systemd
	// loaded, when an earlier run was killed before it reloaded: systemd
	// knows, so ask it rather than trust this run's memory.
	stale := map[string]bool{}
	for _, ua := range a.Units {
		name := ua.Unit.Name
		if a.session.changed[name] {
			stale[name] = true
			continue
		}
		if ua.Unit.Body == nil && len(ua.Unit.Dropins) == 0 {
			continue
		}
		need, err := m.NeedsReload(ctx, name)
		if err != nil {
			return err
		}
		stale[name] = need
	}
	for _, s := range stale {
		if s {
			if err := m.Reload(ctx); err != nil {
				return err
			}
			break
		}
	}
	calls := []struct {
		call  func(context.Context, []string) (bool, error)
		names []string
	}{
		{m.Unmask, a.names(func(u Unit) bool { return u.Mask != nil && !*u.Mask })},
		{m.Mask, a.names(func(u Unit) bool { return u.Mask != nil && *u.Mask })},
		{m.Enable, a.names(func(u Unit) bool { return u.Enable != nil && *u.Enable })},
		{m.Disable, a.names(func(u Unit) bool { return u.Enable != nil && !*u.Enable })},
	}
	linked := false
	for _, c := range calls {
		if len(c.names) == 0 {
			continue
		}
		changed, err := c.call(ctx, c.names)
		if err != nil {
			return err
		}
		linked = linked || changed
	}
	if linked {
		// As systemctl enable does: systemd picks up the new links.
		if err := m.Reload(ctx); err != nil {
			return err
		}
	}
	for _, name := range a.names(func(u Unit) bool { return u.Start }) {
		restart := stale[name]
		if err := m.Start(ctx, name, restart); err != nil {
			return err
		}
		env.Log.Info("unit started", "unit", name, "restarted", restart)
	}
	return nil
}
