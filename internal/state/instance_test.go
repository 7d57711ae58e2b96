package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestValidateID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"i-0123456789abcdef0", true},
		{"iid-local01", true},
		{"4b0f5b3e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", true},
		{"host.example_1:a", true},
		{"", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"-flag", false},
		{"a/b", false},
		{"../etc", false},
		{"a b", false},
		{"a\x00b", false},
		{"é", false},
		{strings.Repeat("a", maxIDLen), true},
		{strings.Repeat("a", maxIDLen+1), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%q", tt.id), func(t *testing.T) {
			err := ValidateID(tt.id)
			if (err == nil) != tt.ok {
				t.Errorf("ValidateID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
			}
			d := openDir(t)
			if _, err := d.Instance(tt.id); (err == nil) != tt.ok {
				t.Errorf("Instance(%q) err = %v, want ok=%v", tt.id, err, tt.ok)
			}
			if err := d.SetCurrentInstance(tt.id); (err == nil) != tt.ok {
				t.Errorf("SetCurrentInstance(%q) err = %v, want ok=%v", tt.id, err, tt.ok)
			}
		})
	}
}

func TestInstanceRecordsPersist(t *testing.T) {
	d := openDir(t)
	inst, err := d.Instance("i-1")
	if err != nil {
		t.Fatal(err)
	}
	if inst.ID() != "i-1" {
		t.Errorf("ID() = %q", inst.ID())
	}
	if _, ok := inst.Done("files"); ok {
		t.Fatal("fresh instance has files done")
	}
	before := time.Now()
	if err := inst.MarkDone("files", "run-a"); err != nil {
		t.Fatal(err)
	}
	if err := inst.MarkDone("scripts", "run-b"); err != nil {
		t.Fatal(err)
	}
	if again, _ := d.Instance("i-1"); again != inst {
		t.Error("Instance returned a different object for the same id")
	}

	// A new process (a fresh Dir) sees the records.
	d2, err := Open(d.Path(), nil)
	if err != nil {
		t.Fatal(err)
	}
	inst2, err := d2.Instance("i-1")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		step    string
		wantOK  bool
		wantRun string
	}{
		{"files", true, "run-a"},
		{"scripts", true, "run-b"},
		{"packages", false, ""},
	}
	for _, tt := range tests {
		rec, ok := inst2.Done(tt.step)
		if ok != tt.wantOK || rec.Run != tt.wantRun {
			t.Errorf("Done(%q) = %+v, %v; want run %q, %v", tt.step, rec, ok, tt.wantRun, tt.wantOK)
		}
		if ok && (rec.Done.Before(before.Add(-time.Second)) || rec.Done.After(time.Now())) {
			t.Errorf("Done(%q).Done = %v, not the time of MarkDone", tt.step, rec.Done)
		}
	}
	// Another instance id starts empty.
	other, _ := d2.Instance("i-2")
	if _, ok := other.Done("files"); ok {
		t.Error("new instance inherits steps")
	}
	for p, want := range map[string]os.FileMode{
		"instances":                  0o700,
		"instances/i-1":              0o700,
		"instances/i-1/" + stepsName: 0o600,
	} {
		fi, err := os.Stat(filepath.Join(d.Path(), p))
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s mode = %v, %v; want %v", p, fi, err, want)
		}
	}
}

func TestCurrentInstance(t *testing.T) {
	d := openDir(t)
	if id, err := d.PreviousInstance(); err != nil || id != "" {
		t.Fatalf("PreviousInstance on empty state = %q, %v", id, err)
	}
	for _, id := range []string{"i-1", "i-2"} {
		if err := d.SetCurrentInstance(id); err != nil {
			t.Fatal(err)
		}
		if got, err := d.PreviousInstance(); err != nil || got != id {
			t.Errorf("PreviousInstance = %q, %v; want %q", got, err, id)
		}
	}
}

// logDir opens a state dir whose warnings are captured.
func logDir(t *testing.T) (*Dir, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	d, err := Open(filepath.Join(t.TempDir(), "state"), slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return d, &logs
}

// A damaged current-instance record reads as "no previous instance" with a
// warning naming it; one that cannot be read at all is an error naming it.
func TestDamagedCurrentInstance(t *testing.T) {
	tests := []struct {
		name    string
		make    func(path string) error
		wantErr bool
	}{
		{"path in it", func(p string) error { return os.WriteFile(p, []byte("../x\n"), 0o600) }, false},
		{"empty", func(p string) error { return os.WriteFile(p, nil, 0o600) }, false},
		{"binary", func(p string) error { return os.WriteFile(p, []byte{0, 1, 2, 0xff}, 0o600) }, false},
		{"huge", func(p string) error { return os.WriteFile(p, bytes.Repeat([]byte("i"), 1<<20), 0o600) }, false},
		{"a directory", func(p string) error { return os.Mkdir(p, 0o700) }, true},
		{"a fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, logs := logDir(t)
			p := filepath.Join(d.Path(), instanceIDName)
			if err := tt.make(p); err != nil {
				t.Fatal(err)
			}
			id, err := d.PreviousInstance()
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), p) {
					t.Fatalf("PreviousInstance = %q, %v; want an error naming %s", id, err, p)
				}
				return
			}
			if err != nil || id != "" {
				t.Fatalf("PreviousInstance = %q, %v; want \"\" and no error", id, err)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), p) {
				t.Errorf("no warning naming %s: %s", p, logs)
			}
			if err := d.SetCurrentInstance("i-2"); err != nil {
				t.Fatal(err)
			}
			if id, err := d.PreviousInstance(); id != "i-2" || err != nil {
				t.Errorf("after SetCurrentInstance: %q, %v", id, err)
			}
		})
	}
}

// A damaged steps.json: no step done, a warning naming it, and the first
// MarkDone keeps the damaged file aside before writing a good one.
func TestDamagedStepsFile(t *testing.T) {
	good := `{"instance": "i-1", "steps": {"files": {"done": "2026-03-01T10:00:00Z", "run": "r0"}}}`
	tests := []struct {
		name     string
		content  string
		damaged  bool
		wantDone bool
	}{
		{"good", good, false, true},
		{"not json", `{"steps": {`, true, false},
		{"another instance's", strings.Replace(good, "i-1", "i-9", 1), true, false},
		{"wrong type", `{"instance": "i-1", "steps": []}`, true, false},
		{"too big", `{"instance": "i-1", "x": "` + strings.Repeat("x", maxStepsFile) + `"}`, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, logs := logDir(t)
			dir := filepath.Join(d.Path(), instancesName, "i-1")
			p := filepath.Join(dir, stepsName)
			os.MkdirAll(dir, 0o700)
			os.WriteFile(p, []byte(tt.content), 0o600)
			inst, err := d.Instance("i-1")
			if err != nil {
				t.Fatal(err)
			}
			if _, done := inst.Done("files"); done != tt.wantDone {
				t.Errorf("files done = %v, want %v", done, tt.wantDone)
			}
			warned := strings.Contains(logs.String(), "level=WARN") && strings.Contains(logs.String(), p)
			if warned != tt.damaged {
				t.Errorf("warning naming %s: %v, want %v: %s", p, warned, tt.damaged, logs)
			}
			if err := inst.MarkDone("scripts", "r1"); err != nil {
				t.Fatal(err)
			}
			kept, err := os.ReadFile(p + corruptSuffix)
			if tt.damaged && string(kept) != tt.content {
				t.Errorf("damaged file not kept aside: %v", err)
			}
			if !tt.damaged && err == nil {
				t.Error("a good file was set aside")
			}
			d2, _ := Open(d.Path(), nil)
			inst2, err := d2.Instance("i-1")
			if err != nil {
				t.Fatal(err)
			}
			if _, done := inst2.Done("scripts"); !done {
				t.Error("MarkDone after the damage was not recorded")
			}
		})
	}
}

// Directories someone opened are tightened; ones of another user refused.
func TestOpenTightensDirectories(t *testing.T) {
	parent := t.TempDir()
	p := filepath.Join(parent, "state")
	os.Mkdir(p, 0o777)
	os.Chmod(p, 0o777)
	var logs bytes.Buffer
	d, err := Open(p, slog.New(slog.NewTextHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != dirPerm {
		t.Errorf("state dir mode %v", fi.Mode().Perm())
	}
	if !strings.Contains(logs.String(), "mode=0777") {
		t.Errorf("no warning: %s", logs.String())
	}
	scratch := filepath.Join(p, scratchName)
	os.Mkdir(scratch, 0o755)
	os.WriteFile(filepath.Join(scratch, "left-by-a-killed-run"), []byte("x"), 0o600)
	s, err := d.Scratch("run-1")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{scratch, s} {
		if fi, _ := os.Stat(dir); fi.Mode().Perm() != dirPerm {
			t.Errorf("%s mode %v", dir, fi.Mode().Perm())
		}
	}
	if ents, _ := os.ReadDir(scratch); len(ents) != 1 || ents[0].Name() != "run-1" {
		t.Errorf("scratch holds %v, want only run-1", ents)
	}

	// A symlink as the state directory is followed (an operator's choice);
	// inside it, a symlink where a directory belongs is refused.
	link := filepath.Join(parent, "link")
	os.Symlink(p, link)
	d, err = Open(link, nil)
	if err != nil {
		t.Fatalf("symlinked state dir: %v", err)
	}
	os.RemoveAll(scratch)
	os.Symlink(t.TempDir(), scratch)
	if _, err := d.Scratch("run-2"); err == nil || !strings.Contains(err.Error(), "symlink") {
		t.Errorf("Scratch through a symlink: %v", err)
	}

	if os.Geteuid() == 0 {
		other := filepath.Join(parent, "other")
		os.Mkdir(other, 0o700)
		os.Chown(other, 65534, 65534)
		if _, err := Open(other, nil); err == nil || !strings.Contains(err.Error(), "uid 65534") {
			t.Errorf("Open of another user's directory: %v", err)
		}
	}
}

// TestMarkDoneCrash SIGKILLs a child that keeps marking steps done and checks
// steps.json is always whole, holds a gap-free prefix of the steps, and that
// the next MarkDone sweeps the temp file the killed run may have left.
func TestMarkDoneCrash(t *testing.T) {
	delays := []time.Duration{0, time.Millisecond, 3 * time.Millisecond, 7 * time.Millisecond, 15 * time.Millisecond, 30 * time.Millisecond}
	leftovers := 0
	for _, delay := range delays {
		t.Run(delay.String(), func(t *testing.T) {
			d := openDir(t)
			c := startChild(t, "markdone", d.Path())
			time.Sleep(delay)
			c.kill(t)

			dir := filepath.Join(d.Path(), instancesName, "i-crash")
			data, err := os.ReadFile(filepath.Join(dir, stepsName))
			if err != nil {
				t.Fatal(err)
			}
			var sf stepsFile
			if err := json.Unmarshal(data, &sf); err != nil {
				t.Fatalf("steps.json is not whole after SIGKILL: %v", err)
			}
			n := len(sf.Steps)
			if n == 0 {
				t.Fatal("steps.json lost the step recorded before ready")
			}
			for i := range n {
				if _, ok := sf.Steps[fmt.Sprintf("step-%06d", i)]; !ok {
					t.Fatalf("steps.json has %d steps but not step-%06d", n, i)
				}
			}
			ents, _ := os.ReadDir(dir)
			leftovers += len(ents) - 1

			// The re-run loads the same records and finishes cleanly.
			d2, _ := Open(d.Path(), nil)
			inst, err := d2.Instance("i-crash")
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := inst.Done(fmt.Sprintf("step-%06d", n-1)); !ok {
				t.Error("re-run does not see the last recorded step")
			}
			if err := inst.MarkDone("after", "run-2"); err != nil {
				t.Fatal(err)
			}
			ents, _ = os.ReadDir(dir)
			if len(ents) != 1 {
				var names []string
				for _, e := range ents {
					names = append(names, e.Name())
				}
				t.Errorf("instance dir after re-run holds %v, want only %s", names, stepsName)
			}
		})
	}
	t.Logf("killed runs left %d temp files (all swept)", leftovers)
}

func TestIsRenameioTemp(t *testing.T) {
	tests := []struct {
		name, base string
		want       bool
	}{
		{".steps.json123456", "steps.json", true},
		{".steps.json", "steps.json", false},
		{"steps.json", "steps.json", false},
		{".steps.jsonx1", "steps.json", false},
		{".instance-id42", "instance-id", true},
		{".instance-id42", "steps.json", false},
	}
	for _, tt := range tests {
		if got := isRenameioTemp(tt.name, tt.base); got != tt.want {
			t.Errorf("isRenameioTemp(%q, %q) = %v, want %v", tt.name, tt.base, got, tt.want)
		}
	}
}

// TestReadOnlyUse checks what `status` and `plan` do leaves no state behind.
func TestReadOnlyUse(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "state")
	if _, err := OpenExisting(missing, nil); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenExisting(missing, nil) err = %v, want ErrNotExist", err)
	}
	if _, err := os.Stat(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("OpenExisting created the directory")
	}
	dir := t.TempDir()
	d, err := OpenExisting(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := d.Instance("i-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := inst.Done("files"); ok {
		t.Error("fresh instance has a step done")
	}
	entries, err := d.Journal()
	if err != nil || len(entries) != 0 {
		t.Errorf("Journal of empty state = %v, %v", entries, err)
	}
	if pid, held := d.Holder(); held {
		t.Errorf("Holder = %d, true", pid)
	}
	if id, err := d.PreviousInstance(); err != nil || id != "" {
		t.Errorf("PreviousInstance = %q, %v", id, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("read-only use wrote %d entries into the state directory", len(ents))
	}
}
