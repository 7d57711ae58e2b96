package state

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Step outcomes recorded in the journal.
const (
	OutcomeRunning = "running"
	OutcomeOK      = "ok"
	OutcomeFailed  = "failed"
	OutcomeSkipped = "skipped"
)

// RunStep is the step name of the entries that mark a whole run's start
// (outcome "running") and end ("ok" or "failed"). With them Summarize can
// tell a finished run from one between two steps; no real step may use it.
const RunStep = "run"

// Entry is one journal line. A step normally gets two: "running" when it
// starts and its outcome when it ends.
type Entry struct {
	Run      string    `json:"run"`
	Instance string    `json:"instance,omitempty"`
	Step     string    `json:"step"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end,omitzero"`
	Outcome  string    `json:"outcome"`
	Error    string    `json:"error,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

func validOutcome(o string) bool {
	switch o {
	case OutcomeRunning, OutcomeOK, OutcomeFailed, OutcomeSkipped:
		return true
	}
	return false
}

// writeJournal is a variable so the crash test can stop a child half way
// through an append, where a SIGKILL tears a line.
var writeJournal = func(f *os.File, b []byte) (int, error) { return f.Write(b) }

// Append adds e to the journal as one JSON line and fsyncs it. If a killed
// run left a torn last line, a newline is written first so that line stays
// alone (and is skipped by Journal) instead of corrupting this one. When the
// journal is past its size limit it is first renamed to journal.jsonl.1
// (replacing the previous one): a single atomic rename, so a crash leaves
// either the old or the rotated layout.
func (d *Dir) Append(e Entry) error {
	if e.Run == "" || e.Step == "" {
		return errors.New("state: journal entry needs a run and a step")
	}
	if !validOutcome(e.Outcome) {
		return fmt.Errorf("state: journal entry for step %s: unknown outcome %q", e.Step, e.Outcome)
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("state: journal entry for step %s: %w", e.Step, err)
	}
	path := filepath.Join(d.path, journalName)
	d.mu.Lock()
	defer d.mu.Unlock()

	if fi, err := os.Stat(path); err == nil && fi.Size() >= d.maxJournal {
		if err := os.Rename(path, path+".1"); err != nil {
			return fmt.Errorf("state: rotate journal %s: %w", path, err)
		}
		if err := syncDir(d.path); err != nil {
			return fmt.Errorf("state: rotate journal %s: fsync directory: %w", path, err)
		}
	}

	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, filePerm)
	if err != nil {
		return fmt.Errorf("state: open journal %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("state: journal %s: %w", path, err)
	}
	buf := make([]byte, 0, len(line)+2)
	if size := fi.Size(); size > 0 {
		var last [1]byte
		if _, err := f.ReadAt(last[:], size-1); err != nil {
			return fmt.Errorf("state: journal %s: read last byte: %w", path, err)
		}
		if last[0] != '\n' {
			buf = append(buf, '\n')
		}
	}
	buf = append(buf, line...)
	buf = append(buf, '\n')
	// One write call: a concurrent reader or a crash sees the line whole,
	// or a prefix that Journal skips.
	if _, err := writeJournal(f, buf); err != nil {
		return fmt.Errorf("state: append to journal %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("state: fsync journal %s: %w", path, err)
	}
	if fi.Size() == 0 {
		// A new file: make its directory entry durable too.
		if err := syncDir(d.path); err != nil {
			return fmt.Errorf("state: journal %s: fsync directory: %w", path, err)
		}
	}
	return nil
}

// Journal returns the journal's entries, oldest first, leaving out lines
// that are not valid entries (see ReadJournal).
func (d *Dir) Journal() ([]Entry, error) {
	entries, _, err := d.ReadJournal()
	return entries, err
}

// ReadJournal returns the journal's entries, oldest first, including those
// already rotated into journal.jsonl.1 so a run that spans a rotation is
// still whole. Lines that are not a valid entry (a torn line from a killed
// run, or the tail of an append in progress) are left out and counted in
// skipped.
func (d *Dir) ReadJournal() (entries []Entry, skipped int, err error) {
	path := filepath.Join(d.path, journalName)
	for _, p := range []string{path + ".1", path} {
		data, err := os.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("state: read journal %s: %w", p, err)
		}
		for len(data) > 0 {
			var line []byte
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				line, data = data, nil
			}
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			var e Entry
			if json.Unmarshal(line, &e) != nil || e.Run == "" || e.Step == "" {
				skipped++
				continue
			}
			entries = append(entries, e)
		}
	}
	return entries, skipped, nil
}

// NewRunID returns a new run id: UTC time to the microsecond, fixed width so
// ids sort by time as strings, then random bits so two runs in the same
// microsecond (or after a clock step back) still differ.
func NewRunID() string {
	var b [4]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405.000000Z") + "-" + hex.EncodeToString(b[:])
}
