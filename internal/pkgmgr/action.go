package pkgmgr

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/opsboot/bootstrap/internal/plan"
)

// transaction is the one manager run that a step's actions share: the index
// update, the upgrade and one install of everything missing, so a step costs
// one manager call per phase, not one per package.
type transaction struct {
	mgr  Manager
	root string // the target root's directory
	// check are the requests whose availability is checked after the index
	// update (before it, the index may be empty, as on a fresh image).
	check     []Request
	pkgs      []Request
	files     []*stagedFile
	installed bool // Install ran (or failed): later install actions report that
	err       error
	// notOffered makes the error for a request the repositories do not
	// offer, placed at its config entry.
	notOffered func(r Request, msg string) error
}

// stagedFile is a package file fetched and verified at plan time.
type stagedFile struct {
	display string // the source as it may be shown (no query string)
	path    string // in the run's scratch directory
	sha256  string
}

// Update refreshes the manager's index before anything is installed.
type Update struct{ tx *transaction }

// Describe implements plan.Action.
func (u *Update) Describe() plan.Description {
	return plan.Description{Kind: "package", Command: []string{u.tx.mgr.Name(), "update"}, Note: "refresh the index first"}
}

// Apply implements plan.Action.
func (u *Update) Apply(ctx context.Context, env *plan.Env) error {
	return u.tx.inRoot(env.Log, func() error { return u.tx.mgr.Update(ctx) })
}

// Upgrade upgrades every installed package.
type Upgrade struct{ tx *transaction }

// Describe implements plan.Action.
func (u *Upgrade) Describe() plan.Description {
	return plan.Description{Kind: "package", Command: []string{u.tx.mgr.Name(), "upgrade"}, Note: "upgrade what is installed"}
}

// Apply implements plan.Action.
func (u *Upgrade) Apply(ctx context.Context, env *plan.Env) error {
	return u.tx.inRoot(env.Log, func() error { return u.tx.mgr.Upgrade(ctx) })
}

// Install is one package (from a repository or a file) in the step's
// install transaction.
type Install struct {
	Name    string // "" for a file whose name this host cannot read
	Version string // the pin, or the file's version
	From    string // the repository, or the file's source without its query
	SHA256  string // a file's digest
	// Installed is the version already there that satisfies the request:
	// the action is then skipped.
	Installed string
	tx        *transaction
}

// Describe implements plan.Action.
func (i *Install) Describe() plan.Description {
	d := plan.Description{Kind: "package", Name: i.Name, Version: i.Version, Source: i.From, SHA256: i.SHA256}
	if i.Installed != "" {
		d.Note = "already installed: " + i.Installed
	}
	return d
}

// Apply implements plan.Action. The first action to apply installs
// everything the step installs, in one transaction; the others report its
// outcome.
func (i *Install) Apply(ctx context.Context, env *plan.Env) error {
	if i.Installed != "" {
		env.Log.Info("package already installed", "package", i.Name, "version", i.Installed)
		return nil
	}
	tx := i.tx
	if !tx.installed {
		tx.installed = true
		tx.err = tx.inRoot(env.Log, func() error { return tx.install(ctx) })
	}
	return tx.err
}

// install checks what the update could not let the plan check, then puts
// the package files into the root and installs everything at once.
func (tx *transaction) install(ctx context.Context) error {
	if len(tx.check) > 0 {
		if _, err := tx.checkOffers(ctx, tx.check); err != nil {
			return err
		}
	}
	var paths []string
	if len(tx.files) > 0 {
		dir := filepath.Join(tx.root, filesDir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		for _, f := range tx.files {
			p, err := f.copyInto(dir)
			if err != nil {
				return err
			}
			paths = append(paths, "/"+filesDir+"/"+filepath.Base(p))
		}
	}
	return tx.mgr.Install(ctx, tx.pkgs, paths)
}

// filesDir is where package files wait inside the root for the manager
// (which under chroot sees nothing outside it). Removed after the install.
const filesDir = "var/cache/bootstrap/packages"

// copyInto copies the staged file into dir under its own name, checking its
// digest on the way: what is installed is what the plan verified.
func (f *stagedFile) copyInto(dir string) (string, error) {
	src, err := os.Open(f.path)
	if err != nil {
		return "", err
	}
	defer src.Close()
	dst := filepath.Join(dir, filepath.Base(f.path))
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(io.MultiWriter(out, h), src)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("%s: copy into the root: %w", f.display, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.sha256 {
		return "", fmt.Errorf("%s: the staged file changed since it was verified (sha256 %s, verified %s); nothing installed", f.display, got, f.sha256)
	}
	return dst, nil
}

// checkOffers fails when a request names a package or version the
// repositories do not offer, naming what they do offer.
func (tx *transaction) checkOffers(ctx context.Context, reqs []Request) (map[string][]Offer, error) {
	m := tx.mgr
	names := make([]string, len(reqs))
	for i, r := range reqs {
		names[i] = r.Name
	}
	offers, err := m.Available(ctx, names)
	if err != nil {
		return nil, err
	}
	notOffered := tx.notOffered
	if notOffered == nil {
		notOffered = func(_ Request, msg string) error { return errors.New(msg) }
	}
	var errs []error
	for _, r := range reqs {
		o := offers[r.Name]
		if len(o) == 0 {
			errs = append(errs, notOffered(r, fmt.Sprintf("%s is not available from %s's repositories (is the name right? is the index current? packages.update: true refreshes it)", r.Name, m.Name())))
			continue
		}
		if r.Version == "" || matchesAny(m, o, r.Version) {
			continue
		}
		var vs []string
		for _, x := range o {
			vs = append(vs, x.Version)
		}
		errs = append(errs, notOffered(r, fmt.Sprintf("%s is not available; %s offers %s", r, m.Name(), strings.Join(dedupe(vs), ", "))))
	}
	return offers, errors.Join(errs...)
}

func matchesAny(m Manager, offers []Offer, pin string) bool {
	for _, o := range offers {
		if m.Matches(o.Version, pin) {
			return true
		}
	}
	return false
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, v := range s {
		if !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}

// inRoot prepares a chroot for the manager while fn runs: a resolv.conf
// (the manager fetches from mirrors) and a policy-rc.d that keeps package
// scripts from starting daemons inside an image. What it adds, it removes.
func (tx *transaction) inRoot(log *slog.Logger, fn func() error) error {
	if tx.root == "/" {
		return fn()
	}
	var undo []func()
	defer func() {
		for _, u := range undo {
			u()
		}
	}()
	resolv := filepath.Join(tx.root, "etc/resolv.conf")
	fi, err := os.Lstat(resolv)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if data, err := os.ReadFile("/etc/resolv.conf"); err == nil {
			if err := os.WriteFile(resolv, data, 0o644); err == nil {
				log.Info("copied the host's /etc/resolv.conf into the root for the package manager; removed afterwards", "root", tx.root)
				undo = append(undo, func() { os.Remove(resolv) })
			}
		}
	case err != nil || !fi.Mode().IsRegular() || fi.Size() == 0:
		// A link (systemd-resolved's stub, dangling in an image) or an
		// empty file: it is the root's, so it stays.
		log.Warn("the root's /etc/resolv.conf is empty or a link; name lookups inside it may fail", "root", tx.root)
	}
	if tx.mgr.Name() == "apt" {
		policy := filepath.Join(tx.root, "usr/sbin/policy-rc.d")
		if _, err := os.Lstat(policy); errors.Is(err, os.ErrNotExist) {
			if err := os.WriteFile(policy, []byte("#!/bin/sh\n# bootstrap: no daemons start inside a chroot\nexit 101\n"), 0o755); err == nil {
				undo = append(undo, func() { os.Remove(policy) })
			}
		}
	}
	return fn()
}
