package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const seedConfig = "files:\n  - path: /etc/app.conf\n    content: \"id=${instance_id}\\n\"\n"

// A run killed between two steps has journaled datasource and config ok and
// nothing else: status must not read that as done (a unit gated on
// `status --wait` would go ahead with nothing written).
func TestStatusOfAKilledRunIsInterrupted(t *testing.T) {
	for _, point := range []string{"before:datasource", "after:config", "before:files"} {
		t.Run(point, func(t *testing.T) {
			b := newSeedBed(t, "instance-id: vagrant-01\n", seedConfig)
			r := runChild(t, []string{"BOOTSTRAP_FAILPOINT=" + point}, b.args("run")...)
			if !r.signaled {
				t.Fatalf("the failpoint did not kill the run: exit %d\n%s", r.code, r.stderr)
			}
			code, out, errs := runCLI(t, "", "status", "--state-dir", b.state)
			if code != 1 || !strings.Contains(out, "state: interrupted") {
				t.Fatalf("status: exit %d, want 1 and interrupted:\n%s%s", code, out, errs)
			}
			code, out, _ = runCLI(t, "", "status", "--json", "--state-dir", b.state)
			var s struct{ State string }
			if err := json.Unmarshal([]byte(out), &s); err != nil || code != 1 || s.State != "interrupted" {
				t.Fatalf("status --json: exit %d, %q (%v)", code, out, err)
			}
			// The next run finishes the job and status says so.
			if code, _, errs := runCLI(t, "", b.args("run")...); code != 0 {
				t.Fatalf("rerun: exit %d %s", code, errs)
			}
			if code, out, _ := runCLI(t, "", "status", "--state-dir", b.state); code != 0 || !strings.Contains(out, "state: done") {
				t.Fatalf("status after the rerun: exit %d\n%s", code, out)
			}
		})
	}
}

// A journal status cannot read is neither "none" nor "done": status says it
// is corrupt, names the line, and exits 1; the next run moves it aside.
func TestStatusOfACorruptJournal(t *testing.T) {
	good := `{"run":"r1","step":"run","start":"2026-01-01T00:00:00Z","outcome":"running"}` + "\n" +
		`{"run":"r1","step":"files","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z","outcome":"ok"}` + "\n" +
		`{"run":"r1","step":"run","start":"2026-01-01T00:00:00Z","end":"2026-01-01T00:00:01Z","outcome":"ok"}` + "\n"
	tests := []struct {
		name, journal string
		code          int
		want          []string
	}{
		{"garbage", "\x00\x01this is not a journal\n", 1, []string{"state: corrupt", "journal.jsonl:1:"}},
		{"unknown outcome", `{"run":"r1","step":"files","start":"2026-01-01T00:00:00Z","outcome":"finished"}` + "\n", 1,
			[]string{"state: corrupt", "journal.jsonl:1:", `"finished"`}},
		{"entry without a step", good + `{"run":"r2","start":"2026-01-01T00:00:00Z","outcome":"ok"}` + "\n", 1,
			[]string{"state: corrupt", "journal.jsonl:4:"}},
		{"garbage in the middle", good + "hello\n" + good, 1, []string{"state: corrupt", "journal.jsonl:4:"}},
		// What a killed append leaves: a prefix of an entry. Not corruption.
		{"torn last line", good + `{"run":"r2","step":"run","sta`, 0, []string{"state: done"}},
		{"torn line then more", good + `{"run":"r2","step":"run","sta` + "\n" + good, 0, []string{"state: done"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "journal.jsonl"), tt.journal)
			code, out, errs := runCLI(t, "", "status", "--state-dir", dir)
			for _, w := range tt.want {
				if !strings.Contains(out+errs, w) {
					t.Errorf("status output lacks %q", w)
				}
			}
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out, errs)
			}
		})
	}
}

func TestRunMovesACorruptJournalAside(t *testing.T) {
	b := newSeedBed(t, "instance-id: vagrant-01\n", seedConfig)
	if err := os.MkdirAll(b.state, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(b.state, "journal.jsonl"), "garbage\n")
	code, _, errs := runCLI(t, "", b.args("run")...)
	if code != 0 || !strings.Contains(errs, "journal.jsonl") || !strings.Contains(errs, "journal.jsonl.corrupt") {
		t.Fatalf("run: exit %d, want 0 and a warning naming both files:\n%s", code, errs)
	}
	if got, _ := os.ReadFile(filepath.Join(b.state, "journal.jsonl.corrupt")); string(got) != "garbage\n" {
		t.Fatalf("the corrupt journal was not kept: %q", got)
	}
	if code, out, _ := runCLI(t, "", "status", "--state-dir", b.state); code != 0 || !strings.Contains(out, "state: done") {
		t.Fatalf("status: exit %d\n%s", code, out)
	}
}

// instance-id only says which instance ran last; a damaged one must not
// stop every later run. steps.json decides what is done: a damaged one is
// kept aside and the instance's steps run again (they are idempotent by
// contract, as after a crash before a step is recorded).
func TestDamagedInstanceRecordsAreRecovered(t *testing.T) {
	tests := []struct {
		name     string
		file     string // under the state dir
		content  string
		wantKept string // where the damaged file is kept, "" if not kept
		redone   bool   // files step runs again
	}{
		{"instance-id garbage", "instance-id", "\x00\x00\x00garbage\n", "", false},
		{"instance-id empty", "instance-id", "", "", false},
		{"instance-id too long", "instance-id", strings.Repeat("i", 5000), "", false},
		{"steps.json garbage", "instances/vagrant-01/steps.json", "{\"instance\": \"vagrant-01\", \"st", "instances/vagrant-01/steps.json.corrupt", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newSeedBed(t, "instance-id: vagrant-01\n", seedConfig)
			if code, _, errs := runCLI(t, "", b.args("run")...); code != 0 {
				t.Fatalf("first run: exit %d %s", code, errs)
			}
			damaged := filepath.Join(b.state, tt.file)
			if err := os.WriteFile(damaged, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			code, _, errs := runCLI(t, "", b.args("run", "--log-format", "json")...)
			if code != 0 {
				t.Fatalf("run after damage: exit %d\n%s", code, errs)
			}
			if !strings.Contains(errs, `"level":"WARN"`) || !strings.Contains(errs, damaged) {
				t.Errorf("no warning naming %s:\n%s", damaged, errs)
			}
			if got, _ := os.ReadFile(filepath.Join(b.state, "instance-id")); string(got) != "vagrant-01\n" {
				t.Errorf("instance-id not rewritten: %q", got)
			}
			if tt.wantKept != "" {
				if got, _ := os.ReadFile(filepath.Join(b.state, tt.wantKept)); string(got) != tt.content {
					t.Errorf("damaged file not kept at %s: %q", tt.wantKept, got)
				}
			}
			_, out, _ := runCLI(t, "", "status", "--json", "--state-dir", b.state)
			var s struct {
				Steps []struct{ Step, Outcome string }
			}
			json.Unmarshal([]byte(out), &s)
			want := "skipped"
			if tt.redone {
				want = "ok"
			}
			var files string
			for _, st := range s.Steps {
				if st.Step == "files" {
					files = st.Outcome
				}
			}
			if files != want {
				t.Errorf("files step %q, want %q:\n%s", files, want, out)
			}
		})
	}
}

// Scratch stages secrets before they are written: state and scratch
// directories someone opened up are tightened back to 0700, with a warning.
func TestOpenStateDirectoriesAreTightened(t *testing.T) {
	b := newSeedBed(t, "instance-id: vagrant-01\n", seedConfig)
	open := []string{b.state, filepath.Join(b.state, "scratch"), filepath.Join(b.state, "instances"), filepath.Join(b.state, "instances", "vagrant-01")}
	for _, d := range open {
		if err := os.MkdirAll(d, 0o777); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	code, _, errs := runCLI(t, "", b.args("run")...)
	if code != 0 {
		t.Fatalf("run: exit %d %s", code, errs)
	}
	for _, d := range open {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s is %04o, want 0700", d, fi.Mode().Perm())
		}
	}
	if !strings.Contains(errs, "0777") || !strings.Contains(errs, b.state) {
		t.Errorf("no warning naming the opened directory:\n%s", errs)
	}
}

// A state directory that belongs to someone else cannot be trusted (they
// can swap its records and read staged secrets): refused, exit 2.
func TestStateDirOwnedBySomeoneElseIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory to another user")
	}
	b := newSeedBed(t, "instance-id: vagrant-01\n", seedConfig)
	if err := os.Mkdir(b.state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(b.state, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	code, _, errs := runCLI(t, "", b.args("run")...)
	if code != 2 || !strings.Contains(errs, b.state) || !strings.Contains(errs, "65534") {
		t.Fatalf("run: exit %d, want 2 naming the directory and its owner:\n%s", code, errs)
	}
	if _, err := os.Stat(filepath.Join(b.root, "etc/app.conf")); err == nil {
		t.Fatal("a file was written")
	}
	var st syscall.Stat_t
	if syscall.Stat(b.state, &st) == nil && st.Uid != 65534 {
		t.Fatal("the directory's owner was changed")
	}
}
