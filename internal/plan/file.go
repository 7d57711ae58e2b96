package plan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"syscall"

	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
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
	// Append adds the content to the end of the file, once per instance,
	// instead of replacing the file. An empty Owner or Group, or a zero
	// Mode, keeps what the existing file has (root and 0644 for a new one).
	Append bool
	Source string // where the content came from, for the plan; "" for inline
	SHA256 string
	Size   int64
	// Open returns the content; it is called once per Apply.
	Open func() (io.ReadCloser, error)
}

// Describe implements Action.
func (f *File) Describe() Description {
	d := Description{Kind: "file", Path: f.Path, Owner: f.Owner, Group: f.Group,
		Mode: fmt.Sprintf("%04o", uint32(f.Mode)), Size: f.Size, Secret: f.Secret, Source: secret.Source(f.Source)}
	if !f.Secret {
		// A digest of a short secret (a password) can be brute-forced; show
		// digests only of public content.
		d.SHA256 = f.SHA256
	}
	if f.Append {
		d.Kind = "append"
		if f.Mode == 0 {
			d.Mode = "keep"
		}
		d.Owner, d.Group = orKeep(f.Owner), orKeep(f.Group)
	}
	return d
}

func orKeep(s string) string {
	if s == "" {
		return "keep"
	}
	return s
}

// Apply implements Action. A file that already has this content, owner and
// mode is left alone, so a rerun does not touch mtimes.
func (f *File) Apply(ctx context.Context, env *Env) error {
	if f.Append {
		return f.appendOnce(env)
	}
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

// MaxAppendTarget bounds the file an append reads back (the whole file is
// rewritten, so an append is atomic: a reader sees the old or the new file).
const MaxAppendTarget = 16 << 20

// appendOnce appends the content atomically: read the file, add the
// content, write a temp file, rename. Before the rename it marks the
// digest of the result; a rerun after a crash that finds the file at a
// marked digest knows this instance already appended, and does not again.
func (f *File) appendOnce(env *Env) error {
	old, err := env.Root.ReadFile(f.Path, MaxAppendTarget)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("append to %s: %w", f.Path, err)
	}
	sum := sha256.Sum256(old)
	mark := "append:" + f.Path + "@"
	if env.Marks != nil && env.Marks.Marked(mark+hex.EncodeToString(sum[:])) {
		env.Log.Info("file already appended to for this instance", "path", f.Path)
		return nil
	}
	spec := rootfs.FileSpec{Mode: f.Mode, Owner: f.Owner, Group: f.Group}
	if exists {
		if err := keepExisting(env.Root, f.Path, &spec); err != nil {
			return err
		}
	}
	if spec.Mode == 0 {
		spec.Mode = 0o644
	}
	if spec.Owner == "" {
		spec.Owner = "root"
	}
	if spec.Group == "" {
		spec.Group = "root"
	}
	rc, err := f.Open()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	add, err := io.ReadAll(io.LimitReader(rc, MaxAppendTarget+1))
	rc.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", f.Path, err)
	}
	next := append(old, add...)
	if len(next) > MaxAppendTarget {
		return fmt.Errorf("append to %s: the result would be over %d bytes", f.Path, MaxAppendTarget)
	}
	after := sha256.Sum256(next)
	if env.Marks != nil {
		if err := env.Marks.Mark(mark + hex.EncodeToString(after[:])); err != nil {
			return err
		}
	}
	if _, _, err := env.Root.WriteFile(f.Path, bytes.NewReader(next), spec); err != nil {
		return err
	}
	env.Log.Info("file appended to", "path", f.Path, "bytes", len(add))
	return nil
}

// keepExisting fills what spec leaves open from the file at p.
func keepExisting(root *rootfs.Root, p string, spec *rootfs.FileSpec) error {
	fi, err := root.Stat(p)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fmt.Errorf("%s: no ownership information", p)
	}
	if spec.Mode == 0 {
		spec.Mode = fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
	}
	if spec.Owner == "" {
		spec.Owner = strconv.FormatUint(uint64(st.Uid), 10)
	}
	if spec.Group == "" {
		spec.Group = strconv.FormatUint(uint64(st.Gid), 10)
	}
	return nil
}
