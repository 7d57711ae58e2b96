package rootfs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestLookup(t *testing.T) {
	const passwd = `# comment
+nisuser::::::
root:x:0:0:root:/root:/bin/bash
app:x:1234:1234::/srv/app:/usr/sbin/nologin
broken:x:notanumber:0::/:/bin/false
short
`
	const group = `root:x:0:
app:x:2345:
wheel:x:10:app
`
	withDB := t.TempDir()
	mustWriteHost(t, filepath.Join(withDB, "etc/passwd"), passwd)
	mustWriteHost(t, filepath.Join(withDB, "etc/group"), group)
	empty := t.TempDir() // no /etc at all
	rootless := t.TempDir()
	mustWriteHost(t, filepath.Join(rootless, "etc/passwd"), "app:x:7:7::/:/bin/sh\n")
	mustWriteHost(t, filepath.Join(rootless, "etc/group"), "app:x:8:\n")

	tests := []struct {
		name    string
		root    string
		group   bool
		in      string
		want    int
		wantErr error // nil: no error; errAny: some error
	}{
		{"user from target passwd", withDB, false, "app", 1234, nil},
		{"root from passwd", withDB, false, "root", 0, nil},
		{"numeric user", withDB, false, "1000", 1000, nil},
		{"numeric zero", empty, false, "0", 0, nil},
		{"unknown user", withDB, false, "ghost", 0, ErrUnknownUser},
		{"nis line not a user", withDB, false, "+nisuser", 0, errAny},
		{"malformed id", withDB, false, "broken", 0, errAny},
		{"root without passwd", empty, false, "root", 0, nil},
		{"root missing from passwd", rootless, false, "root", 0, nil},
		{"user without passwd", empty, false, "app", 0, ErrUnknownUser},
		{"empty name", withDB, false, "", 0, errAny},
		{"minus one", withDB, false, "4294967295", 0, errAny},
		{"too large", withDB, false, "99999999999", 0, errAny},
		{"colon in name", withDB, false, "a:b", 0, errAny},
		{"group from target group", withDB, true, "wheel", 10, nil},
		{"group app", withDB, true, "app", 2345, nil},
		{"root group without file", empty, true, "root", 0, nil},
		{"unknown group", withDB, true, "ghosts", 0, ErrUnknownGroup},
		{"numeric group", empty, true, "65534", 65534, nil},
		{"other root's db", rootless, true, "app", 8, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(tt.root)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			lookup := r.LookupUser
			if tt.group {
				lookup = r.LookupGroup
			}
			got, err := lookup(tt.in)
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("lookup(%q) err = %v", tt.in, err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("lookup(%q) = %d, want an error", tt.in, got)
			case tt.wantErr != nil && tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Fatalf("lookup(%q) err = %v, want %v", tt.in, err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("lookup(%q) = %d, want %d", tt.in, got, tt.want)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "rootfs: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

var errAny = errors.New("any error")

// TestLookupConfinedToRoot checks a symlinked /etc/passwd pointing at the
// host's database is refused, not read.
func TestLookupConfinedToRoot(t *testing.T) {
	base := t.TempDir()
	host := filepath.Join(base, "host")
	mustWriteHost(t, filepath.Join(host, "passwd"), "hostonly:x:999:999::/:/bin/sh\n")
	rootDir := filepath.Join(base, "root")
	os.MkdirAll(rootDir, 0o755)
	if err := os.Symlink(host, filepath.Join(rootDir, "etc")); err != nil {
		t.Fatal(err)
	}
	r, err := Open(rootDir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if id, err := r.LookupUser("hostonly"); err == nil {
		t.Fatalf("LookupUser read the host's passwd through a symlink: uid %d", id)
	}
}

// TestLookupUserDBNotRegular: a target whose /etc/passwd or /etc/group is a
// FIFO, a device or too large fails the lookup at once, naming the file,
// instead of hanging or reading without end.
func TestLookupUserDBNotRegular(t *testing.T) {
	giant := "app:x:7:7::/:/bin/sh\n" + strings.Repeat("x", maxUserDB) + "\n"
	tests := []struct {
		name  string
		group bool
		make  func(path string) error
		want  string
	}{
		{"passwd is a FIFO", false, func(p string) error { return syscall.Mkfifo(p, 0o600) }, "etc/passwd: not a regular file: it is a FIFO"},
		{"group is a FIFO", true, func(p string) error { return syscall.Mkfifo(p, 0o600) }, "etc/group: not a regular file: it is a FIFO"},
		{"passwd is a directory", false, func(p string) error { return os.Mkdir(p, 0o755) }, "etc/passwd: not a regular file: it is a directory"},
		{"passwd with a giant line", false, func(p string) error { return os.WriteFile(p, []byte(giant), 0o644) }, "etc/passwd: file too large: more than 8388608 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "etc"), 0o755); err != nil {
				t.Fatal(err)
			}
			name := "etc/passwd"
			if tt.group {
				name = "etc/group"
			}
			if err := tt.make(filepath.Join(dir, name)); err != nil {
				t.Fatal(err)
			}
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			lookup := r.LookupUser
			if tt.group {
				lookup = r.LookupGroup
			}
			done := make(chan error, 1)
			go func() { _, err := lookup("app"); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), dir) {
					t.Fatalf("error %v, want one naming %s and containing %q", err, dir, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("lookup hangs")
			}
		})
	}
}
