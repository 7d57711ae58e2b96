package pkgmgr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/fetch"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/retry"
)

// StepPackages is the packages step's name: a key of the per-instance
// records, never renamed.
const StepPackages = "packages"

// Capability is the packages: section. The zero value is the real one.
type Capability struct {
	// Runner runs the manager (nil: command.Exec with the run's redactor).
	Runner command.Runner
	// Manager replaces detection (tests: a Fake).
	Manager Manager
	// Geteuid is os.Geteuid unless a test says otherwise.
	Geteuid func() int
	// LockWait, Retry and HostHas override the managers' defaults (tests).
	LockWait time.Duration
	Retry    retry.Policy
	HostHas  func(program string) bool
}

var _ capability.Capability = Capability{}

// Name implements capability.Capability.
func (Capability) Name() string { return StepPackages }

// Steps implements capability.Capability: it detects the root's manager,
// asks it what is installed and offered, and plans one step whose actions
// install what is missing. Package files are fetched and verified here,
// before anything is installed.
func (c Capability) Steps(ctx context.Context, in *capability.Input) ([]*plan.Step, error) {
	cfg := in.Config.Packages
	if len(cfg.Install) == 0 && len(cfg.Files) == 0 && !cfg.Upgrade {
		return nil, nil
	}
	step := &plan.Step{Name: StepPackages, Frequency: plan.PerInstance, Done: in.IsDone(StepPackages)}
	root := in.Root.Dir()
	mgr := c.Manager
	if mgr == nil {
		runner := c.Runner
		if runner == nil {
			runner = command.Exec{Redactor: in.Redactor}
		}
		var err error
		mgr, err = Detect(Options{Root: root, Runner: runner, Log: in.Log, LockWait: c.LockWait, Retry: c.Retry, HostHas: c.HostHas}, cfg.Manager)
		switch {
		case err != nil && cfg.Manager != config.ManagerAuto:
			return nil, badinput.Wrap(in.Config.Errorf("packages.manager", "asks for %s, but %v", cfg.Manager, err))
		case err != nil:
			return nil, fmt.Errorf("packages: %w", err)
		}
	}
	index := map[string]int{}
	for i, p := range cfg.Install {
		index[p.Name] = i
	}
	// notOffered places an unavailable request at its entry. It is not bad
	// input (exit 2): the repositories, not the file, may be what changed.
	notOffered := func(r Request, msg string) error {
		field := "name"
		if r.Version != "" {
			field = "version"
		}
		return in.Config.Errorf(fmt.Sprintf("packages.install[%d].%s", index[r.Name], field), "%s", msg)
	}
	tx := &transaction{mgr: mgr, root: root, notOffered: notOffered}
	if step.Done {
		// Shown as it was asked for, without asking the manager anything.
		for _, p := range cfg.Install {
			step.Actions = append(step.Actions, &Install{Name: p.Name, Version: p.Version, tx: tx})
		}
		for _, f := range cfg.Files {
			step.Actions = append(step.Actions, &Install{From: fetch.DisplaySource(f.Source), SHA256: f.SHA256, tx: tx})
		}
		return []*plan.Step{step}, nil
	}

	files, err := c.stageFiles(ctx, in, mgr, cfg.Files)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(cfg.Install)+len(files))
	for _, p := range cfg.Install {
		names = append(names, p.Name)
	}
	for _, f := range files {
		if f.Name != "" {
			names = append(names, f.Name)
		}
	}
	have := map[string]string{}
	if len(names) > 0 {
		if have, err = mgr.Installed(ctx, names); err != nil {
			return nil, fmt.Errorf("packages: reading what %s has installed: %w", root, err)
		}
	}

	var installs []*Install
	for _, p := range cfg.Install {
		req := Request{Name: p.Name, Version: p.Version}
		a := &Install{Name: p.Name, Version: p.Version, From: mgr.Name() + " repositories", tx: tx}
		if v, ok := have[p.Name]; ok && (p.Version == "" || mgr.Matches(v, p.Version)) {
			a.Installed, a.From = v, ""
		} else {
			tx.pkgs = append(tx.pkgs, req)
		}
		installs = append(installs, a)
	}
	for _, f := range files {
		f.tx = tx
		if v, ok := have[f.Name]; ok && f.Name != "" && mgr.Matches(v, f.Version) {
			f.Installed = v
		} else {
			tx.files = append(tx.files, f.staged)
		}
		installs = append(installs, f.Install)
	}

	work := len(tx.pkgs) > 0 || len(tx.files) > 0
	if (work || cfg.Upgrade) && root != "/" {
		if err := c.needRoot(root, mgr); err != nil {
			return nil, err
		}
	}
	if len(tx.pkgs) > 0 {
		if cfg.Update {
			tx.check = tx.pkgs // the index is refreshed first: check after
		} else if err := c.describeOffers(ctx, tx, installs); err != nil {
			return nil, err
		}
	}
	// The index is refreshed only for something to install or upgrade:
	// when everything is there, no manager command runs at all.
	if cfg.Update && (work || cfg.Upgrade) {
		step.Actions = append(step.Actions, &Update{tx: tx})
	}
	if cfg.Upgrade {
		step.Actions = append(step.Actions, &Upgrade{tx: tx})
	}
	for _, a := range installs {
		step.Actions = append(step.Actions, a)
	}
	return []*plan.Step{step}, nil
}

// describeOffers checks the requests against the current index and shows
// where each package comes from.
func (c Capability) describeOffers(ctx context.Context, tx *transaction, installs []*Install) error {
	mgr := tx.mgr
	offers, err := tx.checkOffers(ctx, tx.pkgs)
	if err != nil {
		return err
	}
	for _, a := range installs {
		for _, o := range offers[a.Name] {
			if a.Installed == "" && (a.Version == "" || mgr.Matches(o.Version, a.Version)) {
				a.From = o.From
				break
			}
		}
	}
	return nil
}

// needRoot says why a manager cannot run inside root for this process.
func (c Capability) needRoot(root string, mgr Manager) error {
	geteuid := c.Geteuid
	if geteuid == nil {
		geteuid = os.Geteuid
	}
	if uid := geteuid(); uid != 0 {
		return fmt.Errorf("packages: installing into %s runs %s inside it with chroot, which needs root; this runs as uid %d: run bootstrap as root (sudo)", root, mgr.Name(), uid)
	}
	return nil
}

// fileInstall is a package file planned for install.
type fileInstall struct {
	*Install
	staged *stagedFile
}

// stageFiles fetches every package file into the scratch directory, its
// sha256 verified by the fetcher, and reads its name and version.
func (c Capability) stageFiles(ctx context.Context, in *capability.Input, mgr Manager, files []config.PackageFile) ([]fileInstall, error) {
	want := map[string]string{"apt": ".deb", "dnf": ".rpm", "yum": ".rpm", "zypper": ".rpm", "apk": ".apk"}[mgr.Name()]
	var out []fileInstall
	var bad []error
	for i, f := range files {
		if ext := config.PackageFileType(f.Source); ext != want {
			bad = append(bad, in.Config.Errorf(fmt.Sprintf("packages.files[%d].source", i), "%s is a %s file; %s installs %s files", fetch.DisplaySource(f.Source), ext, mgr.Name(), want))
		}
	}
	if len(bad) > 0 {
		return nil, badinput.Wrap(errors.Join(bad...))
	}
	for i, f := range files {
		display := fetch.DisplaySource(f.Source)
		blob, err := in.Fetcher.File(ctx, f.Source, f.SHA256, in.Scratch)
		if err != nil {
			return nil, fmt.Errorf("packages.files[%d]: %w; nothing was installed", i, err)
		}
		// The manager knows a package file by its extension; the name keeps
		// the digest so two files with one base name cannot collide.
		name := f.SHA256[:12] + "-" + sanitize(path.Base(strings.TrimSuffix(sourcePath(f.Source), config.PackageFileType(f.Source)))) + want
		staged := filepath.Join(in.Scratch, name)
		if err := os.Rename(blob.Path, staged); err != nil {
			os.Remove(blob.Path)
			return nil, err
		}
		a := &Install{From: display, SHA256: blob.SHA256}
		a.Name, a.Version, _ = mgr.FileInfo(ctx, staged)
		out = append(out, fileInstall{Install: a, staged: &stagedFile{display: display, path: staged, sha256: blob.SHA256}})
	}
	return out, nil
}

// sourcePath is the path part of a source, without a query.
func sourcePath(src string) string {
	if strings.HasPrefix(src, "s3://") {
		return src
	}
	p, _, _ := strings.Cut(src, "?")
	p, _, _ = strings.Cut(p, "#")
	return p
}

// sanitize keeps a file name to characters every manager accepts in a path.
func sanitize(s string) string {
	s = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == '-', r == '+', r == '~':
			return r
		}
		return '_'
	}, s)
	if len(s) > 100 {
		s = s[:100]
	}
	return s
}
