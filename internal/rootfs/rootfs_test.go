package rootfs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func sum(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// mine is a spec owned by the test process, so tests that are not about
// ownership also pass when not run as root.
func mine(mode os.FileMode) FileSpec {
	return FileSpec{Mode: mode, Owner: strconv.Itoa(os.Geteuid()), Group: strconv.Itoa(os.Getegid())}
}

func openRoot(t *testing.T) (*Root, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir
}

func mustWriteHost(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// tempsIn lists our temp files in dir.
func tempsIn(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if strings.Contains(e.Name(), tmpMarker) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	mustWriteHost(t, file, "x")
	tests := []struct {
		name    string
		dir     string
		wantErr bool
	}{
		{"existing dir", dir, false},
		{"missing dir", filepath.Join(dir, "nope"), true},
		{"regular file", file, true},
		{"empty", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := Open(tt.dir)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Open(%q) err = %v, wantErr %v", tt.dir, err, tt.wantErr)
			}
			if err == nil {
				if r.Dir() != tt.dir {
					t.Errorf("Dir() = %q, want %q", r.Dir(), tt.dir)
				}
				r.Close()
			}
		})
	}
}

func TestWriteFileModeExactDespiteUmask(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	r, dir := openRoot(t)
	tests := []struct {
		name string
		path string
		mode os.FileMode
		want os.FileMode
	}{
		{"world readable", "/etc/motd", 0o644, 0o644},
		{"group writable", "/srv/app/shared", 0o664, 0o664},
		{"secret", "/etc/app/key", 0o600, 0o600},
		{"executable", "/usr/local/bin/tool", 0o755, 0o755},
		{"setuid go bits", "/usr/local/bin/suid", os.ModeSetuid | 0o755, os.ModeSetuid | 0o755},
		{"setgid unix octal", "/usr/local/bin/sgid", 0o2755, os.ModeSetgid | 0o755},
		{"sticky unix octal", "/srv/drop/f", 0o1777, os.ModeSticky | 0o777},
		{"no bits", "/etc/none", 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			content := "content of " + tt.name
			got, n, err := r.WriteFile(tt.path, strings.NewReader(content), mine(tt.mode))
			if err != nil {
				t.Fatal(err)
			}
			if got != sum(content) || n != int64(len(content)) {
				t.Errorf("WriteFile = (%s, %d), want (%s, %d)", got, n, sum(content), len(content))
			}
			host := filepath.Join(dir, tt.path)
			fi, err := os.Lstat(host)
			if err != nil {
				t.Fatal(err)
			}
			if m := statMode(fi); m != tt.want {
				t.Errorf("mode = %v, want %v", m, tt.want)
			}
			if tt.mode&0o400 == 0 && os.Geteuid() != 0 {
				return // unreadable to us: nothing more to check
			}
			b, _ := os.ReadFile(host)
			if string(b) != content {
				t.Errorf("content = %q, want %q", b, content)
			}
			// Parent directories are exactly 0755 too.
			pfi, err := os.Stat(filepath.Dir(host))
			if err != nil {
				t.Fatal(err)
			}
			if pfi.Mode().Perm() != 0o755 {
				t.Errorf("parent mode = %v, want 0755", pfi.Mode().Perm())
			}
			ok, err := r.Current(tt.path, got, mine(tt.mode))
			if err != nil || !ok {
				t.Errorf("Current after write = %v, %v; want true", ok, err)
			}
		})
	}
}

func TestWriteFileRejectsBadInput(t *testing.T) {
	r, _ := openRoot(t)
	tests := []struct {
		name string
		path string
		spec FileSpec
		want string
	}{
		{"empty path", "", mine(0o644), "empty path"},
		{"root itself", "/", mine(0o644), "root directory"},
		{"dot dot", "/etc/../../x", mine(0o644), `".."`},
		{"directory mode bit", "/etc/x", FileSpec{Mode: os.ModeDir | 0o755}, "unsupported file mode"},
		{"unknown owner", "/etc/x", FileSpec{Mode: 0o644, Owner: "nobody-here"}, "unknown user"},
		{"unknown group", "/etc/x", FileSpec{Mode: 0o644, Group: "nogroup-here"}, "unknown group"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := r.WriteFile(tt.path, strings.NewReader("SECRET-CONTENT"), tt.spec)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.want)
			}
			if strings.Contains(err.Error(), "SECRET-CONTENT") {
				t.Errorf("error leaks content: %v", err)
			}
		})
	}
}

func TestWriteFileOwnerFromTargetPasswd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give files to other users")
	}
	r, dir := openRoot(t)
	mustWriteHost(t, filepath.Join(dir, "etc/passwd"), "root:x:0:0:root:/root:/bin/sh\napp:x:1234:1234::/srv/app:/bin/false\n")
	mustWriteHost(t, filepath.Join(dir, "etc/group"), "root:x:0:\napp:x:2345:\nwheel:x:10:app\n")
	tests := []struct {
		name             string
		spec             FileSpec
		wantUID, wantGID uint32
	}{
		{"names", FileSpec{Mode: 0o640, Owner: "app", Group: "app"}, 1234, 2345},
		{"mixed", FileSpec{Mode: 0o640, Owner: "app", Group: "wheel"}, 1234, 10},
		{"numeric", FileSpec{Mode: 0o640, Owner: "4321", Group: "5432"}, 4321, 5432},
		{"default root", FileSpec{Mode: 0o640}, 0, 0},
		{"setuid survives chown", FileSpec{Mode: os.ModeSetuid | os.ModeSetgid | 0o750, Owner: "app", Group: "app"}, 1234, 2345},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := "/srv/app/" + strings.ReplaceAll(tt.name, " ", "-")
			digest, _, err := r.WriteFile(p, strings.NewReader(tt.name), tt.spec)
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Lstat(filepath.Join(dir, p))
			if err != nil {
				t.Fatal(err)
			}
			st := fi.Sys().(*syscall.Stat_t)
			if st.Uid != tt.wantUID || st.Gid != tt.wantGID {
				t.Errorf("owner = %d:%d, want %d:%d", st.Uid, st.Gid, tt.wantUID, tt.wantGID)
			}
			want, _ := fileMode(tt.spec.Mode)
			if statMode(fi) != want {
				t.Errorf("mode = %v, want %v", statMode(fi), want)
			}
			if ok, err := r.Current(p, digest, tt.spec); err != nil || !ok {
				t.Errorf("Current = %v, %v; want true", ok, err)
			}
		})
	}
}

func TestWriteFileChownNotPermitted(t *testing.T) {
	r, dir := openRoot(t)
	mustWriteHost(t, filepath.Join(dir, "etc/passwd"), "app:x:1234:1234::/:/bin/false\n")
	if os.Geteuid() == 0 {
		// Running as root the kernel would allow it: simulate the EPERM a
		// non-root run gets.
		orig := chownFile
		chownFile = func(f *os.File, uid, gid int) error {
			return &fs.PathError{Op: "fchown", Path: f.Name(), Err: syscall.EPERM}
		}
		t.Cleanup(func() { chownFile = orig })
	}
	_, _, err := r.WriteFile("/etc/app.conf", strings.NewReader("SECRET-CONTENT"), FileSpec{Mode: 0o600, Owner: "app", Group: "0"})
	if err == nil {
		t.Fatal("WriteFile succeeded, want a chown error")
	}
	msg := err.Error()
	for _, want := range []string{filepath.Join(dir, "etc/app.conf"), "app:0", "uid 1234", "needs root"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not mention %q", msg, want)
		}
	}
	if strings.Contains(msg, "SECRET-CONTENT") || strings.Contains(msg, tmpMarker) {
		t.Errorf("error leaks content or temp name: %q", msg)
	}
	if !errors.Is(err, syscall.EPERM) {
		t.Errorf("error does not wrap EPERM: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "etc/app.conf")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("final path exists after failed write: %v", err)
	}
	if tmps := tempsIn(t, filepath.Join(dir, "etc")); len(tmps) != 0 {
		t.Errorf("temp files left after failed write: %v", tmps)
	}
}

type failingReader struct{ n int }

func (f *failingReader) Read(p []byte) (int, error) {
	if f.n > 0 {
		f.n = 0
		return copy(p, "SECRET-"), nil
	}
	return 0, errors.New("source broke")
}

func TestWriteFileSourceErrorKeepsOldContent(t *testing.T) {
	r, dir := openRoot(t)
	if _, _, err := r.WriteFile("/etc/x", strings.NewReader("old"), mine(0o644)); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.WriteFile("/etc/x", &failingReader{n: 1}, mine(0o644))
	if err == nil || !strings.Contains(err.Error(), "source broke") || strings.Contains(err.Error(), "SECRET") {
		t.Fatalf("err = %v, want the source error without content", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "etc/x")); string(b) != "old" {
		t.Errorf("content = %q, want old content kept", b)
	}
	if tmps := tempsIn(t, filepath.Join(dir, "etc")); len(tmps) != 0 {
		t.Errorf("temp files left: %v", tmps)
	}
}

// TestSymlinksResolveInsideTheRoot: links in the tree mean what they mean
// on the booted machine (an absolute target starts at the root, ".." stops
// there), and no link can lead a write or a read outside the root.
func TestSymlinksResolveInsideTheRoot(t *testing.T) {
	symlink := func(t *testing.T, target, link string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		// setup builds the tree and returns where, relative to the root,
		// the content must land; "" means the write must fail.
		setup   func(t *testing.T, root, outside string) string
		path    string
		wantErr string
	}{
		{
			name: "absolute dir symlink to a host path lands inside the root",
			setup: func(t *testing.T, root, outside string) string {
				symlink(t, outside, filepath.Join(root, "etc"))
				return filepath.Join(outside, "motd")
			},
			path: "/etc/motd",
		},
		{
			name: "Debian's /var/run -> /run",
			setup: func(t *testing.T, root, outside string) string {
				os.MkdirAll(filepath.Join(root, "run"), 0o755)
				symlink(t, "/run", filepath.Join(root, "var/run"))
				return "run/app.pid"
			},
			path: "/var/run/app.pid",
		},
		{
			name: "relative dir symlink climbing out stops at the root",
			setup: func(t *testing.T, root, outside string) string {
				rel, _ := filepath.Rel(filepath.Join(root, "srv"), outside)
				symlink(t, rel, filepath.Join(root, "srv/data"))
				return filepath.Join(filepath.Base(outside), "motd")
			},
			path: "/srv/data/motd",
		},
		{
			name: "chain of absolute links",
			setup: func(t *testing.T, root, outside string) string {
				symlink(t, "/real/etc", filepath.Join(root, "etc"))
				symlink(t, "/other", filepath.Join(root, "real"))
				return "other/etc/motd"
			},
			path: "/etc/motd",
		},
		{
			name: "final component symlink is replaced, not followed",
			setup: func(t *testing.T, root, outside string) string {
				symlink(t, filepath.Join(outside, "motd"), filepath.Join(root, "etc/motd"))
				return "etc/motd"
			},
			path: "/etc/motd",
		},
		{
			name: "relative symlink inside the tree",
			setup: func(t *testing.T, root, outside string) string {
				os.MkdirAll(filepath.Join(root, "real/etc"), 0o755)
				symlink(t, "real/etc", filepath.Join(root, "etc"))
				return "real/etc/motd"
			},
			path: "/etc/motd",
		},
		{
			name: "link loop",
			setup: func(t *testing.T, root, outside string) string {
				symlink(t, "/b", filepath.Join(root, "a"))
				symlink(t, "a", filepath.Join(root, "b"))
				return ""
			},
			path: "/a/motd", wantErr: "too many levels of symbolic links",
		},
		{
			name: "a file where a directory should be",
			setup: func(t *testing.T, root, outside string) string {
				mustWriteHost(t, filepath.Join(root, "etc"), "not a dir")
				return ""
			},
			path: "/etc/motd", wantErr: "not a directory",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			rootDir := filepath.Join(base, "root")
			outside := filepath.Join(base, "host")
			os.MkdirAll(rootDir, 0o755)
			os.MkdirAll(outside, 0o755)
			wantAt := tt.setup(t, rootDir, outside)
			r, err := Open(rootDir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			_, _, err = r.WriteFile(tt.path, strings.NewReader("hello"), mine(0o644))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), rootDir) {
					t.Fatalf("WriteFile err = %v, want one naming the root and %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Fatalf("WriteFile: %v", err)
			}
			if ents, _ := os.ReadDir(outside); len(ents) != 0 {
				t.Errorf("wrote outside the root: %v", ents)
			}
			if tt.wantErr != "" {
				return
			}
			fi, err := os.Lstat(filepath.Join(rootDir, wantAt))
			if err != nil || !fi.Mode().IsRegular() {
				t.Fatalf("%s is not a regular file: %v %v", wantAt, fi, err)
			}
			if b, _ := os.ReadFile(filepath.Join(rootDir, wantAt)); string(b) != "hello" {
				t.Errorf("%s = %q", wantAt, b)
			}
			// Current resolves the same way, so a rerun leaves it alone.
			if ok, err := r.Current(tt.path, sum("hello"), mine(0o644)); !ok || err != nil {
				t.Errorf("Current = %v, %v; want true", ok, err)
			}
		})
	}
}

func TestCurrentThroughMissingOrFileComponent(t *testing.T) {
	r, dir := openRoot(t)
	mustWriteHost(t, filepath.Join(dir, "etc"), "a file")
	for _, p := range []string{"/etc/motd", "/nope/motd"} {
		if ok, err := r.Current(p, sum("hello"), mine(0o644)); ok || err != nil {
			t.Errorf("Current(%s) = %v, %v; want false, nil", p, ok, err)
		}
	}
}

func TestStaleTempCleanup(t *testing.T) {
	r, dir := openRoot(t)
	etc := filepath.Join(dir, "etc")
	stale := []string{
		".motd" + tmpMarker + "0123456789abcdef",
		".motd" + tmpMarker + "fedcba9876543210",
	}
	keep := []string{
		".motd" + tmpMarker + "notours",           // wrong suffix
		".motd" + tmpMarker + "0123456789ABCDEF",  // not our alphabet
		".motd12345",                              // someone else's temp
		".other" + tmpMarker + "0123456789abcdef", // another file's temp
		"motd.orig",
	}
	for _, n := range append(append([]string{}, stale...), keep...) {
		mustWriteHost(t, filepath.Join(etc, n), "partial")
	}
	if _, _, err := r.WriteFile("/etc/motd", strings.NewReader("new"), mine(0o644)); err != nil {
		t.Fatal(err)
	}
	for _, n := range stale {
		if _, err := os.Lstat(filepath.Join(etc, n)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("stale temp %s not removed (%v)", n, err)
		}
	}
	for _, n := range keep {
		if _, err := os.Lstat(filepath.Join(etc, n)); err != nil {
			t.Errorf("%s removed, but it is not our stale temp: %v", n, err)
		}
	}
}

func TestIsTemp(t *testing.T) {
	long := strings.Repeat("a", 250)
	tests := []struct {
		name, file, base string
		want             bool
	}{
		{"ours", ".motd" + tmpMarker + "0123456789abcdef", "motd", true},
		{"short suffix", ".motd" + tmpMarker + "0123", "motd", false},
		{"other base", ".motd" + tmpMarker + "0123456789abcdef", "mot", false},
		{"nested marker", ".a" + tmpMarker + "x" + tmpMarker + "0123456789abcdef", "a", false},
		{"long base truncated", "." + long[:maxTmpBase] + tmpMarker + "0123456789abcdef", long, true},
		{"the file itself", "motd", "motd", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isTemp(tt.file, tt.base); got != tt.want {
				t.Errorf("isTemp(%q, %q) = %v, want %v", tt.file, tt.base, got, tt.want)
			}
		})
	}
}

func TestLongFileName(t *testing.T) {
	r, dir := openRoot(t)
	name := "/etc/" + strings.Repeat("n", 250)
	if _, _, err := r.WriteFile(name, strings.NewReader("x"), mine(0o644)); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, name)); string(b) != "x" {
		t.Errorf("content = %q", b)
	}
}

func TestCurrent(t *testing.T) {
	r, dir := openRoot(t)
	spec := mine(0o640)
	digest, _, err := r.WriteFile("/etc/app.conf", strings.NewReader("v1"), spec)
	if err != nil {
		t.Fatal(err)
	}
	mustWriteHost(t, filepath.Join(dir, "etc/real"), "v1")
	os.Chmod(filepath.Join(dir, "etc/real"), 0o640)
	os.Symlink("real", filepath.Join(dir, "etc/link"))
	os.MkdirAll(filepath.Join(dir, "etc/adir"), 0o755)
	tests := []struct {
		name    string
		path    string
		digest  string
		spec    FileSpec
		want    bool
		wantErr bool
	}{
		{"same", "/etc/app.conf", digest, spec, true, false},
		{"other content", "/etc/app.conf", sum("v2"), spec, false, false},
		{"other mode", "/etc/app.conf", digest, mine(0o644), false, false},
		{"other owner", "/etc/app.conf", digest, FileSpec{Mode: 0o640, Owner: "4242"}, false, false},
		{"other group", "/etc/app.conf", digest, FileSpec{Mode: 0o640, Group: "4242"}, false, false},
		{"missing", "/etc/missing", digest, spec, false, false},
		{"parent is a file", "/etc/app.conf/x", digest, spec, false, false},
		{"symlink is not current", "/etc/link", digest, spec, false, false},
		{"directory", "/etc/adir", digest, spec, false, false},
		{"upper-case digest", "/etc/app.conf", strings.ToUpper(digest), spec, true, false},
		{"empty digest: unknown, so not current", "/etc/app.conf", "", spec, false, false},
		{"bad digest", "/etc/app.conf", "abc", spec, false, true},
		{"unknown user", "/etc/app.conf", digest, FileSpec{Mode: 0o640, Owner: "ghost"}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := r.Current(tt.path, tt.digest, tt.spec)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("Current = %v, %v; want %v, err %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestKeepOwnershipWritesAsInvokingUser(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.KeepOwnership()
	spec := FileSpec{Mode: 0o640, Owner: "65534", Group: "65534"}
	if _, _, err := r.WriteFile("/etc/kept", strings.NewReader("x"), spec); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "etc/kept"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != os.Geteuid() || int(st.Gid) != os.Getegid() || fi.Mode().Perm() != 0o640 {
		t.Fatalf("uid %d gid %d mode %v: want the invoking user's ids and 0640", st.Uid, st.Gid, fi.Mode())
	}
	// Current agrees, so a rerun does not rewrite the file.
	sum := sha256.Sum256([]byte("x"))
	if ok, err := r.Current("/etc/kept", hex.EncodeToString(sum[:]), spec); err != nil || !ok {
		t.Fatalf("Current = %v, %v", ok, err)
	}
	// A misspelt owner is still an error.
	if _, _, err := r.WriteFile("/etc/bad", strings.NewReader("x"), FileSpec{Mode: 0o644, Owner: "no-such-user"}); err == nil {
		t.Fatal("unknown owner accepted")
	}
}

// TestWriteFileFromStagedFile: a staged download (an *os.File, or a Staged
// with its digest) is linked into place when it is on the root's file
// system and copied by the kernel otherwise; a copy's digest is always read
// back, never taken on trust.
func TestWriteFileFromStagedFile(t *testing.T) {
	content := strings.Repeat("staged content\n", 100_000) // 1.5 MB: more than one copy buffer
	sameFS := func(t *testing.T, root string) string { return t.TempDir() }
	otherFS := func(t *testing.T, root string) string {
		var st, rt syscall.Stat_t
		if syscall.Stat("/dev/shm", &st) != nil || syscall.Stat(root, &rt) != nil || st.Dev == rt.Dev {
			t.Skip("no /dev/shm on another file system")
		}
		d, err := os.MkdirTemp("/dev/shm", "rootfs-test-")
		if err != nil {
			t.Skip(err)
		}
		t.Cleanup(func() { os.RemoveAll(d) })
		return d
	}
	tests := []struct {
		name       string
		stageDir   func(t *testing.T, root string) string
		declared   string // "" → a plain *os.File; else a *Staged with this digest
		wantLinked bool
	}{
		{"same file system: linked, read back", sameFS, "", true},
		{"same file system, digest known: linked", sameFS, sum(content), true},
		{"other file system: copied", otherFS, "", false},
		{"other file system, wrong digest: copied and read back", otherFS, sum("something else"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, dir := openRoot(t)
			staged := filepath.Join(tt.stageDir(t, dir), "blob")
			if err := os.WriteFile(staged, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			sf, err := os.Open(staged)
			if err != nil {
				t.Fatal(err)
			}
			defer sf.Close()
			var src io.Reader = sf
			if tt.declared != "" {
				src = &Staged{File: sf, SHA256: tt.declared}
			}
			got, n, err := r.WriteFile("/opt/app/big.bin", src, mine(0o640))
			if err != nil {
				t.Fatal(err)
			}
			if got != sum(content) || n != int64(len(content)) {
				t.Fatalf("WriteFile = %s, %d; want %s, %d", got, n, sum(content), len(content))
			}
			final := filepath.Join(dir, "opt/app/big.bin")
			if b, _ := os.ReadFile(final); string(b) != content {
				t.Fatal("content differs")
			}
			fi, err := os.Lstat(final)
			if err != nil || fi.Mode() != 0o640 {
				t.Fatalf("mode %v, %v; want 0640", fi.Mode(), err)
			}
			si, _ := os.Stat(staged)
			if linked := os.SameFile(fi, si); linked != tt.wantLinked {
				t.Errorf("linked = %v, want %v", linked, tt.wantLinked)
			}
			if temps := tempsIn(t, filepath.Dir(final)); len(temps) != 0 {
				t.Errorf("temp files left: %v", temps)
			}
			if ok, err := r.Current("/opt/app/big.bin", sum(content), mine(0o640)); !ok || err != nil {
				t.Errorf("Current = %v, %v", ok, err)
			}
		})
	}
}

func TestReadFileIsBoundedAndRegularOnly(t *testing.T) {
	dir := t.TempDir()
	r, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/small"), []byte("hello\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/big"), make([]byte, 100), 0o644)
	if err := syscall.Mkfifo(filepath.Join(dir, "etc/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Symlink("/etc/small", filepath.Join(dir, "etc/link"))
	os.Symlink("/etc", filepath.Join(dir, "conf"))
	os.Symlink("loop", filepath.Join(dir, "etc/loop"))
	os.Symlink("../../../../etc/small", filepath.Join(dir, "etc/up"))
	cases := []struct {
		path, want, err string
	}{
		{"/etc/small", "hello\n", ""},
		{"/conf/small", "hello\n", ""}, // a symlinked directory resolves inside the root
		{"/etc/big", "", "larger than the limit"},
		{"/etc/fifo", "", "not a regular file"},
		{"/etc", "", "not a regular file"},
		{"/etc/link", "hello\n", ""}, // an absolute link starts again at the root
		{"/etc/loop", "", "more than 40 symlinks"},
		{"/etc/up", "hello\n", ""}, // ".." stops at the root
		{"/etc/missing", "", "no such file"},
	}
	for _, c := range cases {
		done := make(chan struct{})
		var got []byte
		var err error
		go func() { got, err = r.ReadFile(c.path, 64); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: ReadFile hangs", c.path)
		}
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: err = %v, want %q", c.path, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != c.want {
			t.Errorf("%s: %q, %v", c.path, got, err)
		}
	}
}
