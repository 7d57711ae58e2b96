package plan

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/opsboot/bootstrap/internal/rootfs"
)

// File writes one file under the target root, atomically and with exact
// owner, group and mode. Content is resolved (fetched, decoded) at plan time,
// so the digest shown by `plan` is the digest `run` writes.
type File struct {
	Path   string
	Owner  string
	Group  string
	Mode   os.FileMode
	Secret bool
	Source string // where the content came from, for the plan; "" for inline
	SHA256 string
	Size   int64
	// Open returns the content; it is called once per Apply.
	Open func() (io.ReadCloser, error)
}

// Describe implements Action.
func (f *File) Describe() Description {
	d := Description{Kind: "file", Path: f.Path, Owner: f.Owner, Group: f.Group,
		Mode: fmt.Sprintf("%04o", uint32(f.Mode)), Size: f.Size, Secret: f.Secret, Source: f.Source}
	if !f.Secret {
		// A digest of a short secret (a password) can be brute-forced; show
		// digests only of public content.
		d.SHA256 = f.SHA256
	}
	return d
}

// Apply implements Action. A file that already has this content, owner and
// mode is left alone, so a rerun does not touch mtimes.
func (f *File) Apply(ctx context.Context, env *Env) error {
	spec := rootfs.FileSpec{Mode: f.Mode, Owner: f.Owner, Group: f.Group}
	same, err := env.Root.Current(f.Path, f.SHA256, spec)
	if err != nil {
		return err
	}
	if same {
		env.Log.Info("file unchanged", "path", f.Path)
		return nil
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	defer rc.Close()
	sum, n, err := env.Root.WriteFile(f.Path, rc, spec)
	if err != nil {
		return err
	}
	if f.SHA256 != "" && sum != f.SHA256 {
		// The staged content changed between plan and apply: someone else
		// touched our scratch directory.
		return fmt.Errorf("%s: wrote content with sha256 %s, planned %s", f.Path, sum, f.SHA256)
	}
	env.Log.Info("file written", "path", f.Path, "mode", fmt.Sprintf("%04o", uint32(f.Mode)), "owner", f.Owner+":"+f.Group, "bytes", n)
	return nil
}
