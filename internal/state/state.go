// Package state keeps what bootstrap must remember between runs: which
// per-instance steps are done (instances/<id>/steps.json), the step journal
// (journal.jsonl) and the run lock (lock).
//
// Every record is written so that a run killed at any instant and started
// again finishes the job exactly once: steps.json and instance-id are
// replaced atomically (temp file, fsync, rename, fsync of the directory), and
// the journal is append-only with torn last lines tolerated.
//
// What a crash cannot produce is damage from outside (a disk error, a hand
// edit). It is repaired where redoing work is safe, always with a warning
// naming the file, because a boot that stops for good on a bad record needs
// an operator at 3 a.m.: see PreviousInstance, Instance and Append.
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/google/renameio/v2"
)

// DefaultPath is where the state lives on a booted machine.
const DefaultPath = "/var/lib/bootstrap"

const (
	dirPerm  = 0o700
	filePerm = 0o600

	lockName       = "lock"
	journalName    = "journal.jsonl"
	instanceIDName = "instance-id"
	instancesName  = "instances"
	stepsName      = "steps.json"
	scratchName    = "scratch"
	// corruptSuffix names the copy of a damaged record that was set aside.
	corruptSuffix = ".corrupt"

	// defaultMaxJournal is the size past which the journal is rotated to
	// journal.jsonl.1 so it does not grow forever.
	defaultMaxJournal = 1 << 20
)

// Dir is an open state directory. It is safe for concurrent use; across
// processes, writers must hold the run lock (see Lock).
type Dir struct {
	path string
	// log receives the warnings of repairs (see the package doc).
	log *slog.Logger

	// mu serialises journal appends and atomic rewrites inside this
	// process, so a stale-temp sweep never removes a live temp file.
	mu             sync.Mutex
	instances      map[string]*Instance
	maxJournal     int64
	maxJournalRead int64
	// journalChecked is set once this process has checked the journal
	// before its first append (see Append).
	journalChecked bool
}

// Open opens the state directory at path for a run, creating it 0700 if
// missing (missing parents 0755). An existing directory must belong to us;
// one that others may read or write is tightened to 0700 with a warning on
// log (nil discards), since scratch under it holds staged secrets.
func Open(path string, log *slog.Logger) (*Dir, error) {
	if path == "" {
		return nil, errors.New("state: empty state directory path")
	}
	// Parents such as /var/lib are ordinary system directories: 0755.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("state: create parent of state directory %s: %w", path, err)
	}
	d, err := newDir(path, log)
	if err != nil {
		return nil, err
	}
	// The state directory itself may be a symlink an operator made (to a
	// bigger disk); what it points to is checked.
	err = os.Mkdir(path, dirPerm)
	switch {
	case errors.Is(err, fs.ErrExist):
		err = d.securePrivate(path, os.Stat)
	case err == nil:
		if err = os.Chmod(path, dirPerm); err == nil {
			err = syncDir(filepath.Dir(path))
		}
	}
	if err != nil {
		return nil, fmt.Errorf("state: state directory %s: %w", path, err)
	}
	return d, nil
}

// OpenExisting opens the state directory at path without creating or
// changing anything, for read-only commands (status, plan) that must not
// leave state behind. A missing directory gives an error wrapping
// fs.ErrNotExist. Warnings go to log (nil discards).
func OpenExisting(path string, log *slog.Logger) (*Dir, error) {
	if path == "" {
		return nil, errors.New("state: empty state directory path")
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("state: open state directory %s: %w", path, err)
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("state: open state directory %s: not a directory", path)
	}
	return newDir(path, log)
}

func newDir(path string, log *slog.Logger) (*Dir, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Dir{path: path, log: log, instances: map[string]*Instance{}, maxJournal: defaultMaxJournal, maxJournalRead: defaultMaxJournalRead}, nil
}

// Path returns the state directory.
func (d *Dir) Path() string { return d.path }

// mkdirPrivate creates the directory path, whose parent must exist, exactly
// 0700 whatever the umask (the state names hosts, paths and errors; scratch
// holds staged secrets), and fsyncs the parent so the new entry survives a
// crash. An existing one is checked instead (see securePrivate).
func (d *Dir) mkdirPrivate(path string) error {
	err := os.Mkdir(path, dirPerm)
	if errors.Is(err, fs.ErrExist) {
		return d.securePrivate(path, os.Lstat)
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(path, dirPerm); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// securePrivate makes sure an existing directory is ours alone. One owned
// by another user is refused: they could swap its records or read what is
// staged in it, and taking it over would hide that. One we own with group
// or other permissions is tightened to 0700, with a warning, because
// someone (or an old umask) opened it and the content may have been read.
func (d *Dir) securePrivate(path string, stat func(string) (fs.FileInfo, error)) error {
	fi, err := stat(path)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s exists and is not a directory (a %s); move it away", path, kind(fi.Mode()))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, not to uid %d running bootstrap: it cannot be trusted with state and staged secrets; chown it, or remove it so it is created afresh",
			path, st.Uid, os.Geteuid())
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		if err := os.Chmod(path, dirPerm); err != nil {
			return fmt.Errorf("%s is mode %04o, open to other users, and cannot be tightened to %04o: %w", path, perm, dirPerm, err)
		}
		d.log.Warn("state directory was open to other users: tightened; what it held may have been read", "path", path, "mode", fmt.Sprintf("%04o", perm), "now", fmt.Sprintf("%04o", dirPerm))
	}
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m&fs.ModeSymlink != 0:
		return "symlink"
	case m.IsRegular():
		return "regular file"
	}
	return "special file"
}

// Scratch makes the run's private staging directory, scratch/<run>, and
// removes those of earlier runs that were killed before they could clean
// up. The caller holds the run lock.
func (d *Dir) Scratch(run string) (string, error) {
	if err := ValidateID(run); err != nil {
		return "", fmt.Errorf("state: scratch for run %q: %w", run, err)
	}
	base := filepath.Join(d.path, scratchName)
	if err := d.mkdirPrivate(base); err != nil {
		return "", fmt.Errorf("state: scratch directory: %w", err)
	}
	if old, err := os.ReadDir(base); err == nil {
		for _, e := range old {
			os.RemoveAll(filepath.Join(base, e.Name()))
		}
	}
	dir := filepath.Join(base, run)
	if err := d.mkdirPrivate(dir); err != nil {
		return "", fmt.Errorf("state: scratch directory: %w", err)
	}
	return dir, nil
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// isRenameioTemp reports whether name is a temp file renameio creates for
// base: "." + base + decimal digits. This is only safe to match inside our
// own state directory, where nothing else writes.
func isRenameioTemp(name, base string) bool {
	rest, ok := strings.CutPrefix(name, "."+base)
	if !ok || rest == "" {
		return false
	}
	for _, c := range rest {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// writeAtomic replaces path with data (mode 0600): a reader, or a run after
// a crash, sees the old or the new content, never a mix. Temp files a killed
// run left beside path are removed first. The caller holds d.mu.
func writeAtomic(path string, data []byte) error {
	dir, base := filepath.Dir(path), filepath.Base(path)
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if isRenameioTemp(e.Name(), base) {
				os.Remove(filepath.Join(dir, e.Name()))
			}
		}
	}
	pf, err := renameio.NewPendingFile(path, renameio.WithTempDir(dir), renameio.WithStaticPermissions(filePerm))
	if err != nil {
		return fmt.Errorf("create temp file: %w", err)
	}
	defer pf.Cleanup()
	if _, err := pf.Write(data); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	// CloseAtomicallyReplace fsyncs the file before the rename.
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fmt.Errorf("replace: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("fsync directory: %w", err)
	}
	return nil
}
