package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"
)

// maxSymlinks is how many links one lookup may follow, as in Linux.
const maxSymlinks = 40

// resolveDir resolves the directory dirRel ("." or a clean relative path)
// the way the booted machine would see it, that is as if the root were "/":
// an absolute link target starts again at the root and ".." stops there.
//
// os.Root on its own refuses every absolute link as an escape, yet real
// trees are full of them (Debian's /var/run -> /run), and with --root / they
// point exactly where they should. Resolving them here, inside the root,
// keeps both properties: such paths work, and nothing can lead outside.
//
// The result has no symlink among its existing components. Components that
// do not exist yet are kept as given, for mkdirAll. If the tree changes
// under us afterwards, os.Root still confines every access.
func (r *Root) resolveDir(dirRel string) (string, error) {
	var done []string
	todo := strings.Split(dirRel, "/")
	links := 0
	missing := false // once a component is missing, nothing after it exists
	for len(todo) > 0 {
		el := todo[0]
		todo = todo[1:]
		switch el {
		case "", ".":
			continue
		case "..":
			if len(done) > 0 {
				done = done[:len(done)-1]
			}
			continue
		}
		cur := strings.Join(append(done, el), "/")
		if missing {
			done = append(done, el)
			continue
		}
		fi, err := r.root.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			missing = true
			done = append(done, el)
			continue
		case err != nil:
			return "", fmt.Errorf("rootfs: resolve %s: %w", r.display(cur), unwrapPathErr(err))
		}
		if fi.Mode()&fs.ModeSymlink == 0 {
			if !fi.IsDir() {
				return "", fmt.Errorf("rootfs: resolve %s: %w", r.display(cur), syscall.ENOTDIR)
			}
			done = append(done, el)
			continue
		}
		if links++; links > maxSymlinks {
			return "", fmt.Errorf("rootfs: resolve %s: more than %d symlinks: %w", r.display(dirRel), maxSymlinks, syscall.ELOOP)
		}
		target, err := r.root.Readlink(cur)
		if err != nil {
			return "", fmt.Errorf("rootfs: resolve %s: %w", r.display(cur), unwrapPathErr(err))
		}
		if strings.HasPrefix(target, "/") {
			done = done[:0]
		}
		todo = append(strings.Split(target, "/"), todo...)
	}
	if len(done) == 0 {
		return ".", nil
	}
	return strings.Join(done, "/"), nil
}
