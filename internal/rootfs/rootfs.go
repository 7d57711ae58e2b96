// Package rootfs writes files under a target root directory.
//
// bootstrap applies a machine's configuration to a directory (/ at first
// boot, an image tree during builds and tests), so every path is resolved
// inside that root as the booted machine would resolve it: a symlink in the
// tree such as /var/run -> /run means <root>/run, and nothing can send a
// write outside the root (every access goes through an [os.Root]).
//
// Files are replaced atomically (temp file beside the target, fsync,
// rename, fsync of the directory), so a run killed at any instant leaves
// either the old or the new content at the final path, never a partial
// file. A staged download on the root's file system is hard-linked to the
// temp name instead of copied: a large file is written once, not twice.
package rootfs

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Root is an open target root. It is safe for concurrent use.
type Root struct {
	dir  string
	root *os.Root

	mu sync.Mutex
	// inflight holds the temp files this Root is writing right now, so the
	// stale-temp sweep of one WriteFile never removes another's live file.
	inflight map[string]bool

	// keepOwner: see KeepOwnership.
	keepOwner bool
}

// KeepOwnership makes every file keep the invoking user's uid and gid instead
// of the configured owner and group (which are still resolved, so a typo is
// still an error). It is for unprivileged runs — the demo, a rootless image
// build — where giving a file away needs privileges we do not have.
func (r *Root) KeepOwnership() { r.keepOwner = true }

// Staged is content already on disk whose sha256 is known: a download
// staged in a private directory, hashed as it arrived. WriteFile links it
// into place when it is on the root's file system and then takes SHA256 as
// the written digest rather than reading the file back.
type Staged struct {
	*os.File
	SHA256 string
}

// FileSpec is the metadata a written file must end up with.
type FileSpec struct {
	// Mode is applied exactly, whatever the umask. Besides the permission
	// bits it may carry os.ModeSetuid, os.ModeSetgid and os.ModeSticky, or
	// the equivalent Unix octal bits 04000, 02000 and 01000 (as a config
	// parser produces from "4755").
	Mode os.FileMode
	// Owner and Group are names resolved in the target's /etc/passwd and
	// /etc/group, or numeric ids. Empty means root.
	Owner, Group string
}

// tmpMarker makes our temp files recognisable, so a later run can remove the
// ones a killed run left behind without touching anybody else's files.
const tmpMarker = ".bootstrap-tmp-"

// tmpRandLen is the number of hex digits after tmpMarker.
const tmpRandLen = 16

// maxTmpBase keeps ".<base>.bootstrap-tmp-<16 hex>" within NAME_MAX (255).
const maxTmpBase = 200

// chownFile is a variable so tests running as root can simulate the EPERM a
// non-root run gets.
var chownFile = func(f *os.File, uid, gid int) error { return f.Chown(uid, gid) }

// Open opens the existing directory dir as the target root.
func Open(dir string) (*Root, error) {
	if dir == "" {
		return nil, errors.New("rootfs: open: empty root directory")
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return nil, fmt.Errorf("rootfs: open root %s: %w", dir, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("rootfs: open root %s: not a directory", dir)
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("rootfs: open root %s: %w", dir, err)
	}
	return &Root{dir: dir, root: r, inflight: map[string]bool{}}, nil
}

// Dir returns the directory the Root was opened with.
func (r *Root) Dir() string { return r.dir }

// Close releases the root directory handle.
func (r *Root) Close() error { return r.root.Close() }

// display names a path for errors: the host path, which is what an operator
// can look at.
func (r *Root) display(rel string) string { return filepath.Join(r.dir, rel) }

// relPath turns a target path ("/etc/motd" or "etc/motd") into a path
// relative to the root. ".." is refused rather than clamped so a mistyped
// path fails loudly instead of landing somewhere unexpected.
func relPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("rootfs: empty path")
	}
	if strings.IndexByte(p, 0) >= 0 {
		return "", fmt.Errorf("rootfs: path %q contains a NUL byte", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == ".." {
			return "", fmt.Errorf("rootfs: path %q: \"..\" is not allowed", p)
		}
	}
	c := path.Clean("/" + p)
	if c == "/" {
		return "", fmt.Errorf("rootfs: path %q names the root directory itself", p)
	}
	return c[1:], nil
}

// fileMode validates m and converts Unix octal special bits to Go's.
func fileMode(m os.FileMode) (os.FileMode, error) {
	const special = os.ModeSetuid | os.ModeSetgid | os.ModeSticky
	out := m & (os.ModePerm | special)
	rest := m &^ (os.ModePerm | special)
	for _, b := range []struct {
		unix os.FileMode
		goM  os.FileMode
	}{{0o4000, os.ModeSetuid}, {0o2000, os.ModeSetgid}, {0o1000, os.ModeSticky}} {
		if rest&b.unix != 0 {
			out |= b.goM
			rest &^= b.unix
		}
	}
	if rest != 0 {
		return 0, fmt.Errorf("unsupported file mode %v (%#o)", m, uint32(m))
	}
	return out, nil
}

// statMode is the part of a file's mode that FileSpec.Mode describes.
func statMode(fi fs.FileInfo) os.FileMode {
	return fi.Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
}

// ids resolves the spec's owner and group in the target root.
func (r *Root) ids(spec FileSpec) (uid, gid int, err error) {
	owner, group := spec.Owner, spec.Group
	if owner == "" {
		owner = "root"
	}
	if group == "" {
		group = "root"
	}
	if uid, err = r.lookup("etc/passwd", "user", owner, ErrUnknownUser); err != nil {
		return 0, 0, err
	}
	if gid, err = r.lookup("etc/group", "group", group, ErrUnknownGroup); err != nil {
		return 0, 0, err
	}
	if r.keepOwner {
		return os.Geteuid(), os.Getegid(), nil
	}
	return uid, gid, nil
}

func ownerString(spec FileSpec) string {
	o, g := spec.Owner, spec.Group
	if o == "" {
		o = "root"
	}
	if g == "" {
		g = "root"
	}
	return o + ":" + g
}

// WriteFile atomically replaces path (inside the root) with the content of
// src and the metadata in spec, and returns the sha256 (hex) and size of what
// it wrote. Missing parent directories are created 0755, owned by root.
//
// Temp files from an earlier, killed run beside path are removed first. The
// temp file is created 0600, so content meant to be secret is never readable
// by others before its final mode is set.
func (r *Root) WriteFile(p string, src io.Reader, spec FileSpec) (sha256hex string, n int64, err error) {
	rel, err := relPath(p)
	if err != nil {
		return "", 0, err
	}
	show := r.display(rel)
	mode, err := fileMode(spec.Mode)
	if err != nil {
		return "", 0, fmt.Errorf("rootfs: write %s: %w", show, err)
	}
	uid, gid, err := r.ids(spec)
	if err != nil {
		return "", 0, fmt.Errorf("rootfs: write %s: %w", show, err)
	}
	dirRel, base := path.Split(rel)
	dirRel = strings.TrimSuffix(dirRel, "/")
	if dirRel == "" {
		dirRel = "."
	}
	if dirRel, err = r.resolveDir(dirRel); err != nil {
		return "", 0, err
	}
	if err := r.mkdirAll(dirRel); err != nil {
		return "", 0, err
	}
	// Work inside the parent directory through its own handle, so the temp
	// file, the rename and the directory fsync all hit the same directory
	// even if a path component is swapped meanwhile.
	d, err := r.root.OpenRoot(dirRel)
	if err != nil {
		return "", 0, fmt.Errorf("rootfs: write %s: open parent directory: %w", show, err)
	}
	defer d.Close()

	if err := r.removeStale(d, dirRel, base); err != nil {
		return "", 0, fmt.Errorf("rootfs: write %s: %w", show, err)
	}

	var staged *os.File // content already on disk, linked or copied by the kernel
	var stagedSum string
	switch v := src.(type) {
	case *Staged:
		staged, stagedSum = v.File, v.SHA256
	case *os.File:
		staged = v
	}
	var tmp string
	var f *os.File
	if staged != nil {
		if tmp, f, err = r.linkTemp(d, dirRel, base, staged); err != nil {
			return "", 0, fmt.Errorf("rootfs: write %s: link staged file: %w", show, err)
		}
	}
	linked := f != nil
	if !linked {
		// renameio/v2 (v2.0.2) is not used here: with WithRoot it creates
		// the temp file in the root's top directory rather than beside the
		// target, and it names it ".<base><digits>", which cannot be told
		// apart from other programs' files, so stale ones could not be
		// cleaned up safely. createTemp does the same with a recognisable
		// name.
		if tmp, f, err = r.createTemp(d, dirRel, base); err != nil {
			return "", 0, fmt.Errorf("rootfs: write %s: create temp file: %w", show, err)
		}
	}
	defer r.release(dirRel, tmp)
	committed := false
	defer func() {
		if !committed {
			f.Close()
			d.Remove(tmp)
		}
	}()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("rootfs: write %s: stat temp file: %w", show, err)
	}

	var sum string
	switch {
	case linked && stagedSum != "":
		// The very inode that was hashed as it was downloaded.
		n, sum = fi.Size(), stagedSum
	case linked:
		// Hash what is now at the temp name: that is what gets renamed.
		n, sum, err = hashFile(f)
	case staged != nil:
		n, sum, err = copyStaged(f, staged)
	default:
		h := sha256.New()
		n, err = io.CopyBuffer(io.MultiWriter(f, h), src, make([]byte, copyBufSize))
		sum = hex.EncodeToString(h.Sum(nil))
	}
	if err != nil {
		return "", 0, fmt.Errorf("rootfs: write %s: copy content: %w", show, err)
	}
	// Chown before chmod: chown clears the setuid and setgid bits. Writing
	// does not change the owner, so the stat above still holds.
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != uid || int(st.Gid) != gid {
		if err := chownFile(f, uid, gid); err != nil {
			if errors.Is(err, syscall.EPERM) {
				return "", 0, fmt.Errorf("rootfs: write %s: set owner %s (uid %d, gid %d): %w (giving a file to another user needs root)",
					show, ownerString(spec), uid, gid, unwrapPathErr(err))
			}
			return "", 0, fmt.Errorf("rootfs: write %s: set owner %s (uid %d, gid %d): %w", show, ownerString(spec), uid, gid, unwrapPathErr(err))
		}
	}
	if err := f.Chmod(mode); err != nil {
		return "", 0, fmt.Errorf("rootfs: write %s: set mode %#o: %w", show, uint32(mode.Perm()), unwrapPathErr(err))
	}
	if err := f.Sync(); err != nil {
		return "", 0, fmt.Errorf("rootfs: write %s: fsync: %w", show, unwrapPathErr(err))
	}
	if err := f.Close(); err != nil {
		return "", 0, fmt.Errorf("rootfs: write %s: close: %w", show, unwrapPathErr(err))
	}
	if err := d.Rename(tmp, base); err != nil {
		return "", 0, fmt.Errorf("rootfs: write %s: rename into place: %w", show, unwrapPathErr(err))
	}
	committed = true
	if err := syncDir(d, "."); err != nil {
		return "", 0, fmt.Errorf("rootfs: write %s: fsync directory: %w", show, err)
	}
	return sum, n, nil
}

// copyBufSize is the buffer for streaming and hashing: larger than
// io.Copy's 32 KiB, so big files take fewer system calls.
const copyBufSize = 1 << 20

// copyStaged copies the staged file sf into f inside the kernel
// (copy_file_range: no trip through user space, a reflink where the file
// system can) and returns the size and sha256 of what f then holds.
func copyStaged(f, sf *os.File) (int64, string, error) {
	if _, err := f.ReadFrom(sf); err != nil {
		return 0, "", err
	}
	return hashFile(f)
}

// hashFile returns the size and sha256 of f's content, read from the start.
func hashFile(f *os.File) (int64, string, error) {
	h := sha256.New()
	n, err := io.CopyBuffer(h, io.NewSectionReader(f, 0, 1<<62), make([]byte, copyBufSize))
	if err != nil {
		return n, "", fmt.Errorf("read back: %w", err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// unwrapPathErr drops the *PathError wrapper, whose path is the temp file's:
// our messages already name the target.
func unwrapPathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return le.Err
	}
	return err
}

// tmpPrefix is the name prefix of base's temp files.
func tmpPrefix(base string) string {
	if len(base) > maxTmpBase {
		base = base[:maxTmpBase]
	}
	return "." + base + tmpMarker
}

// isTemp reports whether name is one of base's temp files: the prefix and
// exactly tmpRandLen lowercase hex digits.
func isTemp(name, base string) bool {
	rest, ok := strings.CutPrefix(name, tmpPrefix(base))
	if !ok || len(rest) != tmpRandLen {
		return false
	}
	for _, c := range rest {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// newTemp picks a fresh temp name for base in dirRel, marks it in flight and
// calls create with it, again with another name while create reports that
// the name exists.
func (r *Root) newTemp(dirRel, base string, create func(name string) error) (string, error) {
	var b [tmpRandLen / 2]byte
	for attempt := 0; ; attempt++ {
		rand.Read(b[:])
		name := tmpPrefix(base) + hex.EncodeToString(b[:])
		key := path.Join(dirRel, name)
		r.mu.Lock()
		r.inflight[key] = true
		r.mu.Unlock()
		err := create(name)
		if err == nil {
			return name, nil
		}
		r.release(dirRel, name)
		if !errors.Is(err, fs.ErrExist) || attempt >= 100 {
			return "", unwrapPathErr(err)
		}
	}
}

func (r *Root) createTemp(d *os.Root, dirRel, base string) (string, *os.File, error) {
	var f *os.File
	name, err := r.newTemp(dirRel, base, func(name string) (err error) {
		f, err = d.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		return err
	})
	return name, f, err
}

// linkTemp hard-links the staged file sf into d under a fresh temp name, so
// that a large download staged on the same file system is installed
// without copying it. It returns a nil file when the link cannot be made
// there (another file system, a file system without hard links), and the
// caller copies instead.
func (r *Root) linkTemp(d *os.Root, dirRel, base string, sf *os.File) (string, *os.File, error) {
	df, err := d.Open(".")
	if err != nil {
		return "", nil, unwrapPathErr(err)
	}
	defer df.Close()
	rc, err := df.SyscallConn()
	if err != nil {
		return "", nil, err
	}
	name, err := r.newTemp(dirRel, base, func(name string) error {
		var lerr error
		if err := rc.Control(func(fd uintptr) {
			lerr = unix.Linkat(unix.AT_FDCWD, sf.Name(), int(fd), name, 0)
		}); err != nil {
			return err
		}
		if lerr == unix.EEXIST {
			return fs.ErrExist
		}
		return lerr
	})
	switch {
	case errors.Is(err, unix.EXDEV), errors.Is(err, unix.EPERM), errors.Is(err, unix.EMLINK),
		errors.Is(err, unix.EOPNOTSUPP), errors.Is(err, unix.ENOENT):
		return "", nil, nil // copy instead
	case err != nil:
		return "", nil, err
	}
	f, err := d.OpenFile(name, os.O_RDWR, 0)
	if err != nil {
		d.Remove(name)
		r.release(dirRel, name)
		return "", nil, unwrapPathErr(err)
	}
	return name, f, nil
}

func (r *Root) release(dirRel, name string) {
	r.mu.Lock()
	delete(r.inflight, path.Join(dirRel, name))
	r.mu.Unlock()
}

// removeStale deletes base's temp files in d that no live WriteFile owns:
// they were left by a run that was killed before its rename.
func (r *Root) removeStale(d *os.Root, dirRel, base string) error {
	f, err := d.Open(".")
	if err != nil {
		return fmt.Errorf("list directory for stale temp files: %w", unwrapPathErr(err))
	}
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return fmt.Errorf("list directory for stale temp files: %w", unwrapPathErr(err))
	}
	for _, name := range names {
		if !isTemp(name, base) {
			continue
		}
		r.mu.Lock()
		live := r.inflight[path.Join(dirRel, name)]
		r.mu.Unlock()
		if live {
			continue
		}
		if err := d.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale temp file %s: %w", name, unwrapPathErr(err))
		}
	}
	return nil
}

// mkdirAll creates the missing directories of dirRel with mode 0755 (exact),
// owned by root when we run as root, and makes each new entry durable by
// fsyncing its parent, so a later rename into it cannot be lost on a crash.
func (r *Root) mkdirAll(dirRel string) error {
	if dirRel == "." {
		return nil
	}
	parts := strings.Split(dirRel, "/")
	for i := range parts {
		cur := strings.Join(parts[:i+1], "/")
		err := r.root.Mkdir(cur, 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("rootfs: create directory %s: %w", r.display(cur), unwrapPathErr(err))
		}
		if os.Geteuid() == 0 {
			if err := r.root.Lchown(cur, 0, 0); err != nil {
				return fmt.Errorf("rootfs: create directory %s: set owner root: %w", r.display(cur), unwrapPathErr(err))
			}
		}
		if err := r.root.Chmod(cur, 0o755); err != nil {
			return fmt.Errorf("rootfs: create directory %s: set mode 0755: %w", r.display(cur), unwrapPathErr(err))
		}
		parent := "."
		if i > 0 {
			parent = strings.Join(parts[:i], "/")
		}
		if err := syncDir(r.root, parent); err != nil {
			return fmt.Errorf("rootfs: create directory %s: fsync parent: %w", r.display(cur), err)
		}
	}
	return nil
}

func syncDir(root *os.Root, name string) error {
	f, err := root.Open(name)
	if err != nil {
		return unwrapPathErr(err)
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return unwrapPathErr(err)
}

// Current reports whether path is a regular file with exactly this sha256
// content digest, mode, owner and group, so a re-run can leave it alone and
// say "unchanged". A missing file, a symlink, or an empty digest (content
// not known in advance) is simply not current.
func (r *Root) Current(p string, sha256hex string, spec FileSpec) (bool, error) {
	rel, err := relPath(p)
	if err != nil {
		return false, err
	}
	show := r.display(rel)
	if sha256hex == "" {
		return false, nil // content not known in advance: always write
	}
	want, err := hex.DecodeString(strings.ToLower(sha256hex))
	if err != nil || len(want) != sha256.Size {
		return false, fmt.Errorf("rootfs: check %s: digest is not a sha256 hex string", show)
	}
	mode, err := fileMode(spec.Mode)
	if err != nil {
		return false, fmt.Errorf("rootfs: check %s: %w", show, err)
	}
	uid, gid, err := r.ids(spec)
	if err != nil {
		return false, fmt.Errorf("rootfs: check %s: %w", show, err)
	}
	dirRel, base := path.Split(rel)
	dirRel, err = r.resolveDir(strings.TrimSuffix(dirRel, "/"))
	if errors.Is(err, syscall.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	rel = path.Join(dirRel, base)
	fi, err := r.root.Lstat(rel)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rootfs: check %s: %w", show, unwrapPathErr(err))
	}
	if !fi.Mode().IsRegular() || statMode(fi) != mode {
		return false, nil
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || int(st.Uid) != uid || int(st.Gid) != gid {
		return false, nil
	}
	f, err := r.root.Open(rel)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("rootfs: check %s: %w", show, unwrapPathErr(err))
	}
	defer f.Close()
	// The file may have been replaced between Lstat and Open; only hash the
	// one whose metadata we checked.
	ofi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("rootfs: check %s: %w", show, unwrapPathErr(err))
	}
	if ost, ok := ofi.Sys().(*syscall.Stat_t); !ok || ost.Dev != st.Dev || ost.Ino != st.Ino {
		return false, nil
	}
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, fmt.Errorf("rootfs: check %s: read: %w", show, unwrapPathErr(err))
	}
	return string(h.Sum(nil)) == string(want), nil
}

// ErrTooLarge is returned by ReadFile for a file over its limit.
var ErrTooLarge = errors.New("file is larger than the limit")

// ReadFile reads the regular file at p (an absolute path in the target's
// view, symlinks resolved inside the root), at most limit bytes. A missing
// file is fs.ErrNotExist; a device, FIFO or directory is refused, so a
// hostile root cannot hang or flood the run.
func (r *Root) ReadFile(p string, limit int64) ([]byte, error) {
	rel, err := relPath(p)
	if err != nil {
		return nil, err
	}
	show := r.display(rel)
	if rel, err = r.resolveFile(rel); err != nil {
		return nil, err
	}
	f, err := r.root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, fmt.Errorf("rootfs: read %s: %w", show, unwrapPathErr(err))
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("rootfs: read %s: %w", show, unwrapPathErr(err))
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("rootfs: read %s: not a regular file (%s)", show, fi.Mode().Type())
	}
	if fi.Size() > limit {
		return nil, fmt.Errorf("rootfs: read %s: %w (%d bytes, limit %d)", show, ErrTooLarge, fi.Size(), limit)
	}
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("rootfs: read %s: %w", show, unwrapPathErr(err))
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("rootfs: read %s: %w (limit %d)", show, ErrTooLarge, limit)
	}
	return data, nil
}

// resolveFile resolves rel like resolveDir, the last component included
// when it is a symlink, so a file reached through links (Debian's
// /etc/resolv.conf) is read where the booted machine would read it.
func (r *Root) resolveFile(rel string) (string, error) {
	for links := 0; ; links++ {
		dirRel, base := path.Split(rel)
		dirRel, err := r.resolveDir(strings.TrimSuffix(dirRel, "/"))
		if err != nil {
			return "", err
		}
		rel = path.Join(dirRel, base)
		fi, err := r.root.Lstat(rel)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return rel, nil // a missing file is reported by the open
		}
		if links == maxSymlinks {
			return "", fmt.Errorf("rootfs: resolve %s: more than %d symlinks: %w", r.display(rel), maxSymlinks, syscall.ELOOP)
		}
		target, err := r.root.Readlink(rel)
		if err != nil {
			return "", fmt.Errorf("rootfs: resolve %s: %w", r.display(rel), unwrapPathErr(err))
		}
		if strings.HasPrefix(target, "/") {
			rel = path.Clean(strings.TrimPrefix(target, "/"))
		} else {
			rel = path.Join(dirRel, target)
		}
		if rel == ".." || strings.HasPrefix(rel, "../") {
			rel = path.Clean("/" + rel)[1:] // ".." stops at the root
		}
	}
}

// Stat describes the file at p, symlinks resolved inside the root.
func (r *Root) Stat(p string) (fs.FileInfo, error) {
	rel, err := relPath(p)
	if err != nil {
		return nil, err
	}
	if rel, err = r.resolveFile(rel); err != nil {
		return nil, err
	}
	fi, err := r.root.Lstat(rel)
	if err != nil {
		return nil, fmt.Errorf("rootfs: stat %s: %w", r.display(rel), unwrapPathErr(err))
	}
	return fi, nil
}
