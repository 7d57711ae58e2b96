// Package state keeps what bootstrap must remember between runs: which
// per-instance steps are done (instances/<id>/steps.json), the step journal
// (journal.jsonl) and the run lock (lock).
//
// Every record is written so that a run killed at any instant and started
// again finishes the job exactly once: steps.json and instance-id are
// replaced atomically (temp file, fsync, rename, fsync of the directory), and
// the journal is append-only with torn last lines tolerated.
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"

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

	// defaultMaxJournal is the size past which the journal is rotated to
	// journal.jsonl.1 so it does not grow forever.
	defaultMaxJournal = 1 << 20
)

// Dir is an open state directory. It is safe for concurrent use; across
// processes, writers must hold the run lock (see Lock).
type Dir struct {
	path string

	// mu serialises journal appends and atomic rewrites inside this
	// process, so a stale-temp sweep never removes a live temp file.
	mu         sync.Mutex
	instances  map[string]*Instance
	maxJournal int64
}

// Open opens the state directory at path, creating it 0700 if missing
// (missing parents 0755).
func Open(path string) (*Dir, error) {
	if path == "" {
		return nil, errors.New("state: empty state directory path")
	}
	// Parents such as /var/lib are ordinary system directories: 0755.
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("state: create parent of state directory %s: %w", path, err)
	}
	if err := mkdirPrivate(path); err != nil {
		return nil, fmt.Errorf("state: create state directory %s: %w", path, err)
	}
	return OpenExisting(path)
}

// OpenExisting opens the state directory at path without creating
// anything, for read-only commands (status, plan) that must not leave state
// behind. A missing directory gives an error wrapping fs.ErrNotExist.
func OpenExisting(path string) (*Dir, error) {
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
	return &Dir{path: path, instances: map[string]*Instance{}, maxJournal: defaultMaxJournal}, nil
}

// Path returns the state directory.
func (d *Dir) Path() string { return d.path }

// mkdirPrivate creates the directory path, whose parent must exist, exactly
// 0700 whatever the umask (the state names hosts, paths and errors), and
// fsyncs the parent so the new entry survives a crash.
func mkdirPrivate(path string) error {
	err := os.Mkdir(path, dirPerm)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.Chmod(path, dirPerm); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
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
