package rootfs

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMkdir(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	os.MkdirAll(filepath.Join(dir, "real"), 0o755)
	os.Symlink("/real", filepath.Join(dir, "etc"))
	for i, want := range []bool{true, false} {
		changed, err := r.Mkdir("/etc/chef", 0o750)
		if err != nil || changed != want {
			t.Fatalf("call %d: changed %v, %v; want %v", i, changed, err, want)
		}
	}
	fi, err := os.Stat(filepath.Join(dir, "real/chef"))
	if err != nil || fi.Mode().Perm() != 0o750 {
		t.Fatalf("real/chef: %v %v (the symlink /etc is resolved inside the root)", fi, err)
	}
	os.Chmod(filepath.Join(dir, "real/chef"), 0o777)
	if changed, err := r.Mkdir("/etc/chef", 0o750); !changed || err != nil {
		t.Errorf("mode fix: %v %v", changed, err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, "real/chef")); fi.Mode().Perm() != 0o750 {
		t.Errorf("mode %v", fi.Mode())
	}
	os.WriteFile(filepath.Join(dir, "f"), nil, 0o644)
	if _, err := r.Mkdir("/f", 0o750); err == nil {
		t.Error("a file became a directory")
	}
	if _, err := r.Mkdir("/a/b/c", 0o700); err != nil {
		t.Error(err)
	}
}
