package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"
	"syscall"
)

// Symlinks, reads and removals under the root, for capabilities that manage
// link trees (systemd's .wants directories, aliases, masks). Like WriteFile,
// every path resolves inside the root as the booted machine would see it.

// split resolves p's parent directory inside the root and returns it with
// the final component, unresolved.
func (r *Root) split(p string) (dirRel, base string, err error) {
	rel, err := relPath(p)
	if err != nil {
		return "", "", err
	}
	dirRel, base = path.Split(rel)
	dirRel = strings.TrimSuffix(dirRel, "/")
	if dirRel == "" {
		dirRel = "."
	}
	dirRel, err = r.resolveDir(dirRel)
	return dirRel, base, err
}

// Lstat returns the file info of p itself (a symlink is not followed); a
// path whose directory is missing or is not a directory reports
// fs.ErrNotExist.
func (r *Root) Lstat(p string) (fs.FileInfo, error) {
	dirRel, base, err := r.split(p)
	if errors.Is(err, syscall.ENOTDIR) {
		return nil, fmt.Errorf("rootfs: stat %s: %w", r.display(p), fs.ErrNotExist)
	}
	if err != nil {
		return nil, err
	}
	fi, err := r.root.Lstat(path.Join(dirRel, base))
	if errors.Is(err, syscall.ENOTDIR) {
		err = fs.ErrNotExist
	}
	if err != nil {
		return nil, fmt.Errorf("rootfs: stat %s: %w", r.display(p), unwrapPathErr(err))
	}
	return fi, nil
}

// Readlink returns the target of the symlink p, as written.
func (r *Root) Readlink(p string) (string, error) {
	dirRel, base, err := r.split(p)
	if err != nil {
		return "", err
	}
	t, err := r.root.Readlink(path.Join(dirRel, base))
	if err != nil {
		return "", fmt.Errorf("rootfs: readlink %s: %w", r.display(p), unwrapPathErr(err))
	}
	return t, nil
}

// ReadDir lists the names in directory p; a missing directory is empty.
func (r *Root) ReadDir(p string) ([]string, error) {
	dirRel, base, err := r.split(p)
	if errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	rel, err := r.resolveDir(path.Join(dirRel, base))
	if errors.Is(err, syscall.ENOTDIR) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f, err := r.root.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("rootfs: list %s: %w", r.display(p), unwrapPathErr(err))
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("rootfs: list %s: %w", r.display(p), unwrapPathErr(err))
	}
	return names, nil
}

// Symlink makes p a symlink to target, replacing whatever non-directory is
// at p, atomically (a new link under a temp name, renamed over p) and
// durably. Missing parents are created as WriteFile creates them. A link
// already pointing at target is left alone: changed is false.
func (r *Root) Symlink(target, p string) (changed bool, err error) {
	if target == "" || strings.IndexByte(target, 0) >= 0 {
		return false, fmt.Errorf("rootfs: symlink %s: invalid target %q", r.display(p), target)
	}
	dirRel, base, err := r.split(p)
	if err != nil {
		return false, err
	}
	rel := path.Join(dirRel, base)
	show := r.display(rel)
	if cur, err := r.root.Readlink(rel); err == nil && cur == target {
		return false, nil
	}
	if err := r.mkdirAll(dirRel); err != nil {
		return false, err
	}
	d, err := r.root.OpenRoot(dirRel)
	if err != nil {
		return false, fmt.Errorf("rootfs: symlink %s: open parent directory: %w", show, unwrapPathErr(err))
	}
	defer d.Close()
	if err := r.removeStale(d, dirRel, base); err != nil {
		return false, fmt.Errorf("rootfs: symlink %s: %w", show, err)
	}
	tmp, err := r.newTemp(dirRel, base, func(name string) error { return d.Symlink(target, name) })
	if err != nil {
		return false, fmt.Errorf("rootfs: symlink %s: %w", show, err)
	}
	defer r.release(dirRel, tmp)
	if err := d.Rename(tmp, base); err != nil {
		d.Remove(tmp)
		return false, fmt.Errorf("rootfs: symlink %s: rename into place: %w", show, unwrapPathErr(err))
	}
	if err := syncDir(d, "."); err != nil {
		return false, fmt.Errorf("rootfs: symlink %s: fsync directory: %w", show, err)
	}
	return true, nil
}

// Remove removes the file or symlink p (never a directory) and then its
// parent directory if that is left empty, as systemctl disable tidies
// .wants directories. A missing p is not an error: removed is false.
func (r *Root) Remove(p string) (removed bool, err error) {
	dirRel, base, err := r.split(p)
	if errors.Is(err, syscall.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	rel := path.Join(dirRel, base)
	fi, err := r.root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rootfs: remove %s: %w", r.display(rel), unwrapPathErr(err))
	}
	if fi.IsDir() {
		return false, fmt.Errorf("rootfs: remove %s: is a directory", r.display(rel))
	}
	if err := r.root.Remove(rel); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return false, fmt.Errorf("rootfs: remove %s: %w", r.display(rel), unwrapPathErr(err))
	}
	if dirRel != "." {
		// Fails, harmlessly, when the directory still has entries.
		if r.root.Remove(dirRel) == nil {
			dirRel = path.Dir(dirRel)
		}
	}
	if err := syncDir(r.root, dirRel); err != nil {
		return true, fmt.Errorf("rootfs: remove %s: fsync directory: %w", r.display(rel), err)
	}
	return true, nil
}
