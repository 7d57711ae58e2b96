// Package files is the files: capability (and cloud-config's write_files):
// whole files written atomically under the target root, appends made once
// per instance, and files deferred until packages are installed because
// their owner is a user a package creates.
//
// Content is resolved at plan time — inline content decoded, sources fetched
// into the scratch directory — so the digest `plan` shows is the digest
// `run` writes. Owners and groups are resolved against the target root at
// plan time too, so a missing user fails before anything is written; only
// deferred files wait, and are all checked before the first is written.
package files

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/fetch"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
)

// Step names: keys of the per-instance records, never renamed.
const (
	StepFiles    = "files"
	StepDeferred = "files:deferred"
)

// maxSecretRedact bounds which secret files are also registered with the
// redactor: a key or a password is small; a large secret blob is not going
// to be echoed by anything.
const maxSecretRedact = 64 << 10

// Files writes the files: entries that are not deferred, early in the run.
type Files struct{}

// Deferred writes the entries marked defer: true, after packages.
type Deferred struct{}

func (Files) Name() string    { return "files" }
func (Deferred) Name() string { return "deferred files" }

func (Files) Steps(ctx context.Context, in *capability.Input) ([]*plan.Step, error) {
	return steps(ctx, in, StepFiles, false)
}

func (Deferred) Steps(ctx context.Context, in *capability.Input) ([]*plan.Step, error) {
	return steps(ctx, in, StepDeferred, true)
}

func steps(ctx context.Context, in *capability.Input, name string, deferred bool) ([]*plan.Step, error) {
	var picked []int
	for i, f := range in.Config.Files {
		if f.Defer == deferred {
			picked = append(picked, i)
		}
	}
	if len(picked) == 0 {
		return nil, nil
	}
	s := &plan.Step{Name: name, Frequency: plan.PerInstance, Done: in.IsDone(name)}
	if !s.Done {
		if deferred {
			s.Actions = append(s.Actions, ownersCheck(in.Config, picked))
		} else if err := resolveOwners(in.Root, in.Config, picked); err != nil {
			return nil, badinput.Wrap(err)
		}
	}
	for _, i := range picked {
		a, err := planFile(ctx, in, in.Config.Files[i], s.Done)
		if err != nil {
			return nil, err
		}
		s.Actions = append(s.Actions, a)
	}
	return []*plan.Step{s}, nil
}

// resolveOwners checks that every owner and group of the picked files
// exists in the target root, reporting all that do not, each at its
// position.
func resolveOwners(root *rootfs.Root, cfg *config.Config, picked []int) error {
	var errs config.ErrorList
	for _, i := range picked {
		f := cfg.Files[i]
		if f.Owner != "" {
			if _, err := root.LookupUser(f.Owner); err != nil {
				errs = append(errs, cfg.Errorf(fmt.Sprintf("files[%d].owner", i), "%s", strings.TrimPrefix(err.Error(), "rootfs: ")))
			}
		}
		if f.Group != "" {
			if _, err := root.LookupGroup(f.Group); err != nil {
				errs = append(errs, cfg.Errorf(fmt.Sprintf("files[%d].group", i), "%s", strings.TrimPrefix(err.Error(), "rootfs: ")))
			}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// ownersCheck is the first action of the deferred step: after packages
// have created their users, every deferred file's owner must exist before
// any of them is written.
func ownersCheck(cfg *config.Config, picked []int) plan.Action {
	var names []string
	for _, i := range picked {
		f := cfg.Files[i]
		for _, n := range []string{f.Owner, f.Group} {
			if n != "" && n != "root" && !isNumeric(n) {
				names = append(names, n)
			}
		}
	}
	return &check{
		what: "owners " + strings.Join(dedupe(names), ", ") + " of the deferred files exist",
		run: func(env *plan.Env) error {
			if err := resolveOwners(env.Root, cfg, picked); err != nil {
				return fmt.Errorf("deferred files: nothing written, because:\n%w", err)
			}
			return nil
		},
	}
}

// check is an action that changes nothing and fails the step when its
// condition does not hold.
type check struct {
	what string
	run  func(env *plan.Env) error
}

func (c *check) Describe() plan.Description {
	return plan.Description{Kind: "check", Note: c.what}
}

func (c *check) Apply(ctx context.Context, env *plan.Env) error { return c.run(env) }

// planFile resolves a file's content: inline content is decoded in memory;
// a source is fetched (streamed) into the scratch directory, so the digest in
// the plan is the digest that will be written.
func planFile(ctx context.Context, in *capability.Input, f config.File, skip bool) (plan.Action, error) {
	a := &plan.File{Path: f.Path, Owner: f.Owner, Group: f.Group, Mode: f.Mode.FS(), Secret: f.Secret,
		Source: f.Source, Append: f.Append}
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
	if f.Secret {
		ctx = fetch.WithSecret(ctx) // a digest mismatch must not show the secret's digest
	}
	blob, err := in.Fetcher.File(ctx, f.Source, f.SHA256, in.Scratch)
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

func isNumeric(s string) bool {
	_, err := strconv.ParseUint(s, 10, 32)
	return err == nil
}

func dedupe(names []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}
