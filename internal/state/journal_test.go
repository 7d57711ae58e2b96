package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

func entry(run, step, outcome string) Entry {
	return Entry{Run: run, Step: step, Start: t0, Outcome: outcome}
}

// checkLines asserts every line of the journal file ends in '\n' and returns
// how many lines are not valid JSON.
func checkLines(t *testing.T, path string) (invalid int) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 && data[len(data)-1] != '\n' {
		t.Errorf("journal does not end in a newline")
	}
	for _, line := range bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n")) {
		if len(bytes.TrimSpace(line)) > 0 && !json.Valid(line) {
			invalid++
		}
	}
	return invalid
}

func TestAppendAndRead(t *testing.T) {
	d := openDir(t)
	want := []Entry{
		{Run: "r1", Instance: "i-1", Step: "files", Start: t0, Outcome: OutcomeRunning},
		{Run: "r1", Instance: "i-1", Step: "files", Start: t0, End: t0.Add(time.Second), Outcome: OutcomeOK, Detail: "3 files"},
		{Run: "r1", Step: "scripts", Start: t0, End: t0.Add(2 * time.Second), Outcome: OutcomeFailed, Error: "exit 1\nwith newline"},
	}
	for _, e := range want {
		if err := d.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	got, skipped, err := d.ReadJournal()
	if err != nil || skipped != 0 {
		t.Fatalf("Journal: skipped %d, err %v", skipped, err)
	}
	if !slices.EqualFunc(got, want, func(a, b Entry) bool {
		return a.Run == b.Run && a.Step == b.Step && a.Start.Equal(b.Start) && a.End.Equal(b.End) &&
			a.Outcome == b.Outcome && a.Error == b.Error && a.Detail == b.Detail && a.Instance == b.Instance
	}) {
		t.Errorf("Journal = %+v, want %+v", got, want)
	}
	p := filepath.Join(d.Path(), journalName)
	if n := checkLines(t, p); n != 0 {
		t.Errorf("%d invalid lines", n)
	}
	if data, _ := os.ReadFile(p); bytes.Contains(data, []byte(`"end":"0001`)) {
		t.Error("a running entry records a zero end time")
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o600 {
		t.Errorf("journal mode = %v, want 0600", fi.Mode().Perm())
	}
}

func TestAppendRejects(t *testing.T) {
	d := openDir(t)
	tests := []struct {
		name string
		e    Entry
	}{
		{"no run", entry("", "files", OutcomeOK)},
		{"no step", entry("r1", "", OutcomeOK)},
		{"bad outcome", entry("r1", "files", "maybe")},
		{"empty outcome", entry("r1", "files", "")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := d.Append(tt.e); err == nil {
				t.Error("Append accepted an invalid entry")
			}
		})
	}
}

// TestTornLine covers journals a killed run left in different shapes: the
// torn line is skipped and the next append is still a valid line of its own.
// A journal with lines a crash cannot leave is damaged: the first append
// moves it aside whole and starts a new one.
func TestTornLine(t *testing.T) {
	good, _ := json.Marshal(entry("r1", "files", OutcomeOK))
	tests := []struct {
		name        string
		existing    string
		wantEntries int // after one more Append
		wantSkipped int
		wantBadJSON int  // lines left in the file that are not JSON at all
		wantAside   bool // moved to journal.jsonl.corrupt
	}{
		{"empty file", "", 1, 0, 0, false},
		{"clean", string(good) + "\n", 2, 0, 0, false},
		{"torn after a good line", string(good) + "\n" + string(good[:20]), 2, 1, 1, false},
		{"only a torn line", string(good[:10]), 1, 1, 1, false},
		{"complete line without newline", string(good), 2, 0, 0, false},
		{"garbage line in the middle", string(good) + "\n\x00\x00\x00\n" + string(good) + "\n", 1, 0, 0, true},
		{"valid json that is no entry", "{}\n[1]\n", 1, 0, 0, true},
		{"blank lines", "\n\n" + string(good) + "\n\n", 2, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDir(t)
			p := filepath.Join(d.Path(), journalName)
			if err := os.WriteFile(p, []byte(tt.existing), 0o600); err != nil {
				t.Fatal(err)
			}
			last := entry("r2", "scripts", OutcomeRunning)
			if err := d.Append(last); err != nil {
				t.Fatal(err)
			}
			got, skipped, err := d.ReadJournal()
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.wantEntries || skipped != tt.wantSkipped {
				t.Errorf("Journal = %d entries, %d skipped; want %d, %d", len(got), skipped, tt.wantEntries, tt.wantSkipped)
			}
			if len(got) == 0 || got[len(got)-1].Run != "r2" {
				t.Errorf("the appended entry is not the last one read: %+v", got)
			}
			if n := checkLines(t, p); n != tt.wantBadJSON {
				t.Errorf("%d invalid JSON lines in the file", n)
			}
			aside, err := os.ReadFile(p + corruptSuffix)
			if tt.wantAside != (err == nil) || tt.wantAside && string(aside) != tt.existing {
				t.Errorf("journal set aside: %q, %v; want %v", aside, err, tt.wantAside)
			}
		})
	}
}

// TestCorruptJournal: ReadJournal names the first line bootstrap cannot
// have written, still returns the good entries, and Status reports the
// journal corrupt instead of guessing the last run's outcome.
func TestCorruptJournal(t *testing.T) {
	good, _ := json.Marshal(entry("r1", "files", OutcomeOK))
	g := string(good) + "\n"
	tests := []struct {
		name     string
		content  string
		wantLine int // 0: not corrupt
		wantBad  int
		want     string // in the error
	}{
		{"good", g + g, 0, 0, ""},
		{"torn last line", g + string(good[:30]), 0, 0, ""},
		{"garbage", "hello world\n", 1, 1, "not a journal entry"},
		{"binary", g + "\x00\xff\xfe\n", 2, 1, "not a journal entry"},
		{"unknown outcome", strings.Replace(g, `"ok"`, `"finished"`, 1), 1, 1, `unknown outcome "finished"`},
		{"no outcome", strings.Replace(g, `,"outcome":"ok"`, "", 1), 1, 1, `unknown outcome ""`},
		{"no step", g + `{"run":"r1","start":"2026-03-01T10:00:00Z","outcome":"ok"}` + "\n", 2, 1, "without a run or a step"},
		{"wrong type", `{"run":1,"step":"x","outcome":"ok"}` + "\n", 1, 1, `field "run" is not a string`},
		{"two values", strings.TrimSuffix(g, "\n") + " {}\n", 1, 1, "more than one"},
		{"several bad lines", "a\nb\n" + g + "c\n", 1, 3, "and 2 more bad lines"},
		{"array", "[1,2]\n", 1, 1, "not a journal entry"},
		{"torn array is not torn", "[1,", 1, 1, "not a journal entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDir(t)
			p := filepath.Join(d.Path(), journalName)
			os.WriteFile(p, []byte(tt.content), 0o600)
			entries, _, err := d.ReadJournal()
			s, serr := d.Status()
			if serr != nil {
				t.Fatal(serr)
			}
			if tt.wantLine == 0 {
				if err != nil || s.State != StateDone || len(entries) == 0 {
					t.Fatalf("ReadJournal err %v, state %s", err, s.State)
				}
				return
			}
			var ce *CorruptJournalError
			if !errors.As(err, &ce) {
				t.Fatalf("ReadJournal err = %v, want a *CorruptJournalError", err)
			}
			if ce.Path != p || ce.Line != tt.wantLine || ce.Lines != tt.wantBad || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %+v (%q); want line %d, %d bad, containing %q", ce, err, tt.wantLine, tt.wantBad, tt.want)
			}
			if s.State != StateCorrupt || !strings.Contains(s.Error, fmt.Sprintf("%s:%d:", p, tt.wantLine)) {
				t.Errorf("Status = %s (%s)", s.State, s.Error)
			}
			if out := s.String(); !strings.Contains(out, "state: corrupt") || !strings.Contains(out, journalName+corruptSuffix) {
				t.Errorf("Status rendered as:\n%s", out)
			}
		})
	}
}

// TestJournalReadIsBounded: a journal grown far past the rotation size (by
// damage) is read from its tail only, so status neither hangs nor eats
// memory; a FIFO in its place is an error, not a hang.
func TestJournalReadIsBounded(t *testing.T) {
	d := openDir(t)
	p := filepath.Join(d.Path(), journalName)
	good, _ := json.Marshal(entry("r-last", "files", OutcomeOK))
	f, _ := os.Create(p)
	f.Truncate(d.maxJournalRead * 2)
	f.Seek(0, io.SeekEnd)
	f.Write(append([]byte("\n"), append(good, '\n')...))
	f.Close()
	// Only the tail is read, from its first line start: the last entry.
	entries, _, err := d.ReadJournal()
	if err != nil || len(entries) != 1 || entries[0].Run != "r-last" {
		t.Fatalf("ReadJournal of a huge journal = %d entries, %v", len(entries), err)
	}
	os.Remove(p)
	syscall.Mkfifo(p, 0o600)
	done := make(chan error, 1)
	go func() { _, _, err := d.ReadJournal(); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("ReadJournal of a FIFO: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ReadJournal hangs on a FIFO")
	}
}

func TestRotation(t *testing.T) {
	d := openDir(t)
	d.maxJournal = 4 << 10
	p := filepath.Join(d.Path(), journalName)
	detail := strings.Repeat("x", 1000)
	const n = 30
	for i := range n {
		e := entry("r1", fmt.Sprintf("step-%d", i), OutcomeOK)
		e.Detail = detail
		if err := d.Append(e); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Size() > d.maxJournal+2000 {
			t.Fatalf("journal grew to %v past the limit (%v)", fi.Size(), err)
		}
	}
	if _, err := os.Stat(p + ".1"); err != nil {
		t.Fatalf("no rotated file: %v", err)
	}
	if ents, _ := os.ReadDir(d.Path()); len(ents) != 2 {
		t.Errorf("state dir holds %d entries, want journal and one rotated file", len(ents))
	}
	got, skipped, err := d.ReadJournal()
	if err != nil || skipped != 0 {
		t.Fatalf("Journal: %v, skipped %d", err, skipped)
	}
	// The newest entries survive, in order, across both files.
	if len(got) == 0 || len(got) >= n || got[len(got)-1].Step != fmt.Sprintf("step-%d", n-1) {
		t.Fatalf("Journal after rotation has %d entries ending in %v", len(got), got[len(got)-1].Step)
	}
	for i := 1; i < len(got); i++ {
		var a, b int
		fmt.Sscanf(got[i-1].Step, "step-%d", &a)
		fmt.Sscanf(got[i].Step, "step-%d", &b)
		if b != a+1 {
			t.Fatalf("entries out of order or missing: %s then %s", got[i-1].Step, got[i].Step)
		}
	}
}

// TestJournalCrash SIGKILLs a child in the middle of appending large entries
// and checks the journal stays readable: at most one torn line, skipped, and
// the next run's append is a valid line that Journal returns last.
func TestJournalCrash(t *testing.T) {
	delays := []time.Duration{0, time.Millisecond, 3 * time.Millisecond, 7 * time.Millisecond, 15 * time.Millisecond, 30 * time.Millisecond}
	torn := 0
	for _, delay := range delays {
		t.Run(delay.String(), func(t *testing.T) {
			d := openDir(t)
			c := startChild(t, "journal", d.Path())
			time.Sleep(delay)
			c.kill(t)
			d.maxJournal = 1 << 40 // keep the torn line in the file we check
			d.maxJournalRead = 1 << 40

			p := filepath.Join(d.Path(), journalName)
			if data, _ := os.ReadFile(p); len(data) > 0 && data[len(data)-1] != '\n' {
				torn++
			}
			last := entry("run-next", RunStep, OutcomeRunning)
			if err := d.Append(last); err != nil {
				t.Fatal(err)
			}
			got, skipped, err := d.ReadJournal()
			if err != nil {
				t.Fatal(err)
			}
			if skipped > 1 {
				t.Errorf("skipped %d lines, want at most the one torn line", skipped)
			}
			if len(got) < 2 || got[len(got)-1].Run != "run-next" {
				t.Fatalf("Journal lost entries or the new one: %d entries", len(got))
			}
			for i, e := range got[:len(got)-1] {
				if e.Step != fmt.Sprintf("step-%d", i) || len(e.Detail) != journalCrashDetail {
					t.Fatalf("entry %d is %s with %d bytes of detail", i, e.Step, len(e.Detail))
				}
			}
			if n := checkLines(t, p); n != skipped {
				t.Errorf("%d invalid lines in the file, Journal skipped %d", n, skipped)
			}
		})
	}
	t.Logf("%d of %d kills left a torn line", torn, len(delays))
}

// TestJournalKilledMidAppend kills a child stopped inside the write of an
// entry, so the torn line is certain, and checks the next run's append.
func TestJournalKilledMidAppend(t *testing.T) {
	d := openDir(t)
	c := startChild(t, "journal-midwrite", d.Path())
	c.kill(t)
	p := filepath.Join(d.Path(), journalName)
	if data, _ := os.ReadFile(p); len(data) == 0 || data[len(data)-1] == '\n' {
		t.Fatal("the killed append left no torn line")
	}
	if err := d.Append(entry("run-next", RunStep, OutcomeRunning)); err != nil {
		t.Fatal(err)
	}
	got, skipped, err := d.ReadJournal()
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, e := range got {
		steps = append(steps, e.Run+"/"+e.Step)
	}
	want := []string{"run-child/step-0", "run-child/step-1", "run-child/step-2", "run-next/run"}
	if !slices.Equal(steps, want) || skipped != 1 {
		t.Errorf("Journal = %v, skipped %d; want %v, skipped 1", steps, skipped, want)
	}
	if n := checkLines(t, p); n != 1 {
		t.Errorf("%d invalid lines in the file, want the one torn line", n)
	}
	s := Summarize(got)
	if s.Run != "run-next" || s.State != StateRunning {
		t.Errorf("Summarize after the torn line = %+v", s)
	}
}

func TestNewRunID(t *testing.T) {
	seen := map[string]bool{}
	prev := ""
	for range 1000 {
		id := NewRunID()
		if seen[id] {
			t.Fatalf("duplicate run id %s", id)
		}
		seen[id] = true
		if len(id) != len("20060102T150405.000000Z-01234567") {
			t.Fatalf("run id %q has the wrong width", id)
		}
		if id[:23] < prev {
			t.Fatalf("run ids do not sort by time: %s after %s", id, prev)
		}
		prev = id[:23]
	}
}

// FuzzJournal: whatever a journal holds (a crash, damage, a hand edit),
// reading it never panics, good entries come back valid, and after one
// Append the journal reads clean with that entry last: a run always leaves
// a journal status can read.
func FuzzJournal(f *testing.F) {
	good, _ := json.Marshal(entry("r1", "files", OutcomeOK))
	for _, s := range []string{"", string(good) + "\n", string(good[:17]), "garbage\n", "{}\n", "[1,\n", "\x00\xff\n" + string(good),
		strings.Replace(string(good), `"ok"`, `"done"`, 1) + "\n", string(good) + " {}\n", "\n\n\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, existing []byte) {
		d := openDir(t)
		p := filepath.Join(d.Path(), journalName)
		if err := os.WriteFile(p, existing, 0o600); err != nil {
			t.Fatal(err)
		}
		entries, _, err := d.ReadJournal()
		var ce *CorruptJournalError
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("ReadJournal: %v", err)
		}
		for _, e := range entries {
			if e.Run == "" || e.Step == "" || !validOutcome(e.Outcome) {
				t.Fatalf("ReadJournal returned an invalid entry %+v", e)
			}
		}
		if s, err := d.Status(); err != nil || (ce != nil) != (s.State == StateCorrupt) {
			t.Fatalf("Status = %s, %v with read error %v", s.State, err, ce)
		}
		if err := d.Append(entry("r-next", RunStep, OutcomeRunning)); err != nil {
			t.Fatal(err)
		}
		entries, _, err = d.ReadJournal()
		if err != nil || len(entries) == 0 || entries[len(entries)-1].Run != "r-next" {
			t.Fatalf("after Append: %d entries, %v", len(entries), err)
		}
	})
}
