package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
)

// Mkdir makes the directory p with exactly mode (missing parents 0755),
// owned by root when we run as root; an existing directory gets mode. It
// is for directories that guard their content (/etc/chef is 0750): the
// mode is set before anything is written into it. changed reports whether
// anything changed.
func (r *Root) Mkdir(p string, mode fs.FileMode) (changed bool, err error) {
	rel, err := relPath(p)
	if err != nil {
		return false, err
	}
	if rel, err = r.resolveDir(rel); err != nil {
		return false, err
	}
	if rel == "." {
		return false, fmt.Errorf("rootfs: mkdir: %s is the root", p)
	}
	fi, err := r.root.Lstat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := r.mkdirAll(path.Dir(rel)); err != nil {
			return false, err
		}
		if err := r.root.Mkdir(rel, mode.Perm()); err != nil {
			return false, fmt.Errorf("rootfs: create directory %s: %w", r.display(rel), unwrapPathErr(err))
		}
		if os.Geteuid() == 0 {
			if err := r.root.Lchown(rel, 0, 0); err != nil {
				return false, fmt.Errorf("rootfs: create directory %s: set owner root: %w", r.display(rel), unwrapPathErr(err))
			}
		}
		changed = true
	case err != nil:
		return false, fmt.Errorf("rootfs: mkdir %s: %w", r.display(rel), unwrapPathErr(err))
	case !fi.IsDir():
		return false, fmt.Errorf("rootfs: mkdir %s: exists and is not a directory", r.display(rel))
	case fi.Mode().Perm() == mode.Perm():
		return false, nil
	}
	// Exact, whatever the umask.
	if err := r.root.Chmod(rel, mode.Perm()); err != nil {
		return false, fmt.Errorf("rootfs: set mode of %s: %w", r.display(rel), unwrapPathErr(err))
	}
	if err := syncDir(r.root, path.Dir(rel)); err != nil {
		return false, fmt.Errorf("rootfs: mkdir %s: fsync parent: %w", r.display(rel), err)
	}
	return true, nil
}
