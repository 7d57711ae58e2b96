package rootfs

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSymlinkIsAtomicAndIdempotent(t *testing.T) {
	r, dir := openRoot(t)
	for i, tt := range []struct {
		target      string
		wantChanged bool
	}{
		{"/etc/systemd/system/a.service", true},
		{"/etc/systemd/system/a.service", false}, // already right: left alone
		{"/usr/lib/systemd/system/a.service", true},
	} {
		changed, err := r.Symlink(tt.target, "/etc/systemd/system/x.target.wants/a.service")
		if err != nil || changed != tt.wantChanged {
			t.Fatalf("step %d: changed %v err %v, want changed %v", i, changed, err, tt.wantChanged)
		}
		got, err := os.Readlink(filepath.Join(dir, "etc/systemd/system/x.target.wants/a.service"))
		if err != nil || got != tt.target {
			t.Fatalf("step %d: link = %q %v", i, got, err)
		}
	}
	if temps := tempsIn(t, filepath.Join(dir, "etc/systemd/system/x.target.wants")); len(temps) != 0 {
		t.Errorf("temp links left: %v", temps)
	}
	// A regular file at the path is replaced, as systemctl mask replaces nothing but links: the caller decides.
	mustWriteHost(t, filepath.Join(dir, "etc/f"), "x")
	if _, err := r.Symlink("/dev/null", "/etc/f"); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.Readlink(filepath.Join(dir, "etc/f")); got != "/dev/null" {
		t.Errorf("etc/f -> %q", got)
	}
}

func TestLinkOpsStayInsideTheRoot(t *testing.T) {
	r, dir := openRoot(t)
	outside := t.TempDir()
	mustWriteHost(t, filepath.Join(outside, "secret"), "host file")
	// etc points outside with an absolute link: inside the root it means <root>/<outside>.
	if err := os.Symlink(outside, filepath.Join(dir, "etc")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Symlink("/x", "/etc/link"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(outside, "link")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a link was made outside the root: %v", err)
	}
	if _, err := r.ReadFile("/etc/secret", 1<<10); err == nil {
		t.Fatal("read a host file through a link out of the root")
	}
	if removed, err := r.Remove("/etc/secret"); removed || err != nil {
		t.Fatalf("Remove outside: removed %v err %v", removed, err)
	}
	if _, err := os.Stat(filepath.Join(outside, "secret")); err != nil {
		t.Fatalf("host file gone: %v", err)
	}
}

func TestRemoveTidiesEmptyParent(t *testing.T) {
	r, dir := openRoot(t)
	for _, p := range []string{"/etc/a.wants/x", "/etc/b.wants/x", "/etc/b.wants/y"} {
		if _, err := r.Symlink("/t", p); err != nil {
			t.Fatal(err)
		}
	}
	for _, p := range []string{"/etc/a.wants/x", "/etc/b.wants/x"} {
		if removed, err := r.Remove(p); !removed || err != nil {
			t.Fatalf("Remove(%s): %v %v", p, removed, err)
		}
	}
	if removed, err := r.Remove("/etc/a.wants/x"); removed || err != nil {
		t.Fatalf("second Remove: %v %v", removed, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "etc/a.wants")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("empty a.wants left: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "etc/b.wants/y")); err != nil {
		t.Errorf("b.wants/y: %v", err)
	}
	if _, err := r.Remove("/etc/b.wants"); err == nil {
		t.Error("removed a directory")
	}
	names, err := r.ReadDir("/etc")
	if err != nil || strings.Join(names, ",") != "b.wants" {
		t.Errorf("ReadDir = %v %v", names, err)
	}
	if names, err := r.ReadDir("/nope/x"); err != nil || names != nil {
		t.Errorf("ReadDir missing = %v %v", names, err)
	}
}
