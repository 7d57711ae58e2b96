package chef

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

// StepRepo unpacks the local-mode repository.
const StepRepo = "chef:repo"

// Bounds on a repository tarball: cookbooks are small files, many of them.
const (
	maxRepoEntries = 50000
	maxRepoBytes   = 2 << 30
)

// repoStep fetches the repository tarball into the scratch directory (its
// sha256 checked by the fetcher when given) and plans its unpacking.
func repoStep(ctx context.Context, in *capability.Input, ch *config.Chef) (*plan.Step, error) {
	s := &plan.Step{Name: StepRepo, Frequency: plan.PerInstance, Done: in.IsDone(StepRepo)}
	u := &unpack{dest: ch.RepoPath, source: ch.RepoSource}
	s.Actions = []plan.Action{u}
	if s.Done {
		return s, nil
	}
	blob, err := in.Fetcher.File(ctx, ch.RepoSource, ch.RepoSHA256, in.Scratch)
	if err != nil {
		return nil, fmt.Errorf("chef.repo_source: %w", err)
	}
	u.file, u.sha256 = blob.Path, blob.SHA256
	// Read it once now so a bad archive fails the plan, not the run.
	if _, err := u.walk(nil, nil); err != nil {
		return nil, fmt.Errorf("chef.repo_source %s: %w", ch.RepoSource, err)
	}
	return s, nil
}

// unpack writes a .tar.gz under dest through the root: regular files and
// directories only, no absolute paths or .., bounded in count and size.
type unpack struct {
	dest, source, file, sha256 string
}

func (u *unpack) Describe() plan.Description {
	note := "the Chef repository for --local-mode from " + secret.Source(u.source)
	if u.sha256 != "" {
		note += " sha256:" + u.sha256
	}
	return plan.Description{Kind: "unpack", Path: u.dest, Source: u.source, SHA256: u.sha256, Note: note}
}

func (u *unpack) Apply(ctx context.Context, env *plan.Env) error {
	n, err := u.walk(env.Root, ctx)
	if err != nil {
		return fmt.Errorf("chef: unpack %s into %s: %w", u.source, u.dest, err)
	}
	env.Log.Info("chef repository unpacked", "path", u.dest, "files", n)
	return nil
}

// walk reads the archive; with a root it writes each file.
func (u *unpack) walk(root *rootfs.Root, ctx context.Context) (int, error) {
	prefix, err := u.prefix()
	if err != nil {
		return 0, err
	}
	f, err := os.Open(u.file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	// Only what is under the directory holding cookbooks/ is the repository.
	under := func(name string) string {
		if !strings.HasPrefix(name+"/", prefix) {
			return ""
		}
		return strings.TrimPrefix(name, prefix)
	}
	lim := rootfs.UnpackLimits{Entries: maxRepoEntries, FileBytes: maxRepoBytes, TotalBytes: maxRepoBytes}
	return rootfs.Unpack(ctx, root, u.dest, f, lim, under)
}

// prefix is "" or the one top directory holding cookbooks/.
func (u *unpack) prefix() (string, error) {
	f, err := os.Open(u.file)
	if err != nil {
		return "", err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return "", fmt.Errorf("not a .tar.gz: %w", err)
	}
	tr := tar.NewReader(zr)
	for i := 0; i < maxRepoEntries; i++ {
		h, err := tr.Next()
		if err != nil {
			break
		}
		name, err := rootfs.ArchiveName(h.Name)
		if err != nil {
			return "", err
		}
		parts := strings.Split(name, "/")
		if parts[0] == "cookbooks" {
			return "", nil
		}
		if len(parts) > 1 && parts[1] == "cookbooks" {
			return parts[0] + "/", nil
		}
	}
	return "", errors.New("no cookbooks/ directory at its top or under one directory")
}
