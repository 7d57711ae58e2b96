package state

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
	"unicode/utf8"
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
//
// The first Append of a Dir checks the journal: a damaged one (see
// ReadJournal) is moved aside to journal.jsonl.corrupt (and .1.corrupt),
// with a warning, so this run's entries start a journal `status` can read.
// Callers hold the run lock.
func (d *Dir) Append(e Entry) error {
	if e.Run == "" || e.Step == "" {
		return errors.New("state: journal entry needs a run and a step")
	}
	if !validOutcome(e.Outcome) {
		return fmt.Errorf("state: journal entry for step %s: unknown outcome %q", e.Step, e.Outcome)
	}
	e.Error, e.Detail = truncateField(e.Error), truncateField(e.Detail)
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("state: journal entry for step %s: %w", e.Step, err)
	}
	path := filepath.Join(d.path, journalName)
	d.mu.Lock()
	defer d.mu.Unlock()

	if !d.journalChecked {
		if err := d.setAsideDamagedJournal(); err != nil {
			return err
		}
		d.journalChecked = true
	}
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

// maxEntryField bounds an entry's error and detail text: a journal line is
// read back whole by status, and an error about a huge input must not make
// a huge entry (two 11 MB entries once made a 21 MB status). A variable so
// the crash test can write entries big enough for a kill to tear.
var maxEntryField = 8 << 10

// truncateField cuts s to maxEntryField bytes at a character boundary and
// says how much is missing; the full text is in the run's log.
func truncateField(s string) string {
	if len(s) <= maxEntryField {
		return s
	}
	cut := maxEntryField
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf(" … [%d more bytes cut; see the run's log]", len(s)-cut)
}

// Journal returns the journal's entries, oldest first (see ReadJournal).
func (d *Dir) Journal() ([]Entry, error) {
	entries, _, err := d.ReadJournal()
	return entries, err
}

// defaultMaxJournalRead bounds what is read of each journal file: Append
// rotates at maxJournal, so only damage makes one bigger, and then its tail
// is what matters.
const defaultMaxJournalRead = 16 << 20

// CorruptJournalError says a journal line is not an entry bootstrap wrote:
// not JSON, no run or step, an unknown outcome. A run's outcome cannot be
// told from such a journal, so `status` reports it instead of guessing.
type CorruptJournalError struct {
	Path    string // the file
	Line    int    // the first bad line, 1-based
	Problem string
	Lines   int // how many lines are bad
}

func (e *CorruptJournalError) Error() string {
	more := ""
	switch e.Lines {
	case 1:
	case 2:
		more = " (and 1 more bad line)"
	default:
		more = fmt.Sprintf(" (and %d more bad lines)", e.Lines-1)
	}
	return fmt.Sprintf("%s:%d: %s%s; the journal is damaged, so the last run's outcome is unknown: the next run moves it aside to %s and starts a new one",
		e.Path, e.Line, e.Problem, more, filepath.Base(e.Path)+corruptSuffix)
}

// ReadJournal returns the journal's entries, oldest first, including those
// already rotated into journal.jsonl.1 so a run that spans a rotation is
// still whole.
//
// A line that is a strict prefix of a JSON object is what a killed append
// leaves (or an append in progress): it is left out and counted in torn.
// Any other bad line is damage: the entries are still returned, with a
// *CorruptJournalError naming the first bad line.
func (d *Dir) ReadJournal() (entries []Entry, torn int, err error) {
	path := filepath.Join(d.path, journalName)
	var corrupt *CorruptJournalError
	for _, p := range []string{path + ".1", path} {
		data, err := readTail(p, d.maxJournalRead)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("state: read journal %s: %w", p, err)
		}
		for n := 1; len(data) > 0; n++ {
			var line []byte
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				line, data = data, nil
			}
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			e, problem := parseEntry(line)
			switch {
			case problem == "":
				entries = append(entries, e)
			case problem == tornLine:
				torn++
			case corrupt == nil:
				corrupt = &CorruptJournalError{Path: p, Line: n, Problem: problem, Lines: 1}
			default:
				corrupt.Lines++
			}
		}
	}
	if corrupt != nil {
		return entries, torn, corrupt
	}
	return entries, torn, nil
}

const tornLine = "torn"

// parseEntry decodes one journal line; problem is "" for a good entry,
// tornLine for a prefix of one, else what is wrong (without quoting the
// line: a damaged journal may hold anything).
func parseEntry(line []byte) (e Entry, problem string) {
	dec := json.NewDecoder(bytes.NewReader(line))
	err := dec.Decode(&e)
	switch {
	case line[0] == '{' && errors.Is(err, io.ErrUnexpectedEOF):
		return e, tornLine
	case err != nil:
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return e, fmt.Sprintf("field %q is not a %s", te.Field, te.Type)
		}
		return e, "not a journal entry (not a JSON object)"
	case dec.More():
		return e, "more than one JSON value on the line"
	case e.Run == "" || e.Step == "":
		return e, "a journal entry without a run or a step"
	case !validOutcome(e.Outcome):
		return e, fmt.Sprintf("step %s has the unknown outcome %q", e.Step, truncate(e.Outcome, 32))
	}
	return e, ""
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// readTail reads path, or only its last limit bytes from a line start when
// it is bigger. A regular file only: a FIFO or device put in its place must
// not hang status.
func readTail(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	if fi.Size() <= limit {
		return io.ReadAll(io.LimitReader(f, limit))
	}
	b := make([]byte, limit)
	if _, err := f.ReadAt(b, fi.Size()-limit); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b, nil
}

// setAsideDamagedJournal moves a damaged journal (and its rotated part)
// aside so this run starts a readable one. The caller holds d.mu.
func (d *Dir) setAsideDamagedJournal() error {
	_, _, err := d.ReadJournal()
	var ce *CorruptJournalError
	if !errors.As(err, &ce) {
		return nil // a read error shows again, where it matters, on append
	}
	path := filepath.Join(d.path, journalName)
	for _, p := range []string{path + ".1", path} {
		if err := os.Rename(p, p+corruptSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("state: move the damaged journal %s aside: %w", p, err)
		}
	}
	if err := syncDir(d.path); err != nil {
		return fmt.Errorf("state: move the damaged journal aside: fsync %s: %w", d.path, err)
	}
	d.log.Warn("the journal was damaged: moved aside, this run starts a new one",
		"problem", fmt.Sprintf("%s:%d: %s", ce.Path, ce.Line, ce.Problem), "bad_lines", ce.Lines,
		"kept_as", path+corruptSuffix)
	return nil
}

// NewRunID returns a new run id: UTC time to the microsecond, fixed width so
// ids sort by time as strings, then random bits so two runs in the same
// microsecond (or after a clock step back) still differ.
func NewRunID() string {
	var b [4]byte
	rand.Read(b[:])
	return time.Now().UTC().Format("20060102T150405.000000Z") + "-" + hex.EncodeToString(b[:])
}
