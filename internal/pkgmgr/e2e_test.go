//go:build e2e

package pkgmgr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/testbed"
)

// These tests change this machine's packages: they need root and apt, and
// purge what they install before and after. Without them they skip, unless
// BOOTSTRAP_E2E=1 makes that a failure.

func requireAptRoot(t *testing.T, programs ...string) {
	t.Helper()
	missing := ""
	if os.Geteuid() != 0 {
		missing = "root"
	}
	for _, p := range append([]string{"apt-get", "dpkg-query", "dpkg-deb"}, programs...) {
		if _, err := exec.LookPath(p); err != nil && missing == "" {
			missing = p + " (scripts/packages.txt)"
		}
	}
	if missing == "" {
		return
	}
	if os.Getenv("BOOTSTRAP_E2E") == "1" {
		t.Fatalf("needs %s", missing)
	}
	t.Skipf("needs %s (BOOTSTRAP_E2E=1 makes this a failure)", missing)
}

// counting wraps the real runner and records every argv.
type counting struct {
	mu    sync.Mutex
	real  command.Runner
	calls []string
}

func (c *counting) Run(ctx context.Context, s command.Spec, out func(string)) (command.Result, error) {
	c.mu.Lock()
	c.calls = append(c.calls, filepath.Base(s.Argv[0])+" "+strings.Join(s.Argv[1:], " "))
	c.mu.Unlock()
	return c.real.Run(ctx, s, out)
}

func (c *counting) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	calls := c.calls
	c.calls = nil
	return calls
}

func run(t *testing.T, argv ...string) string {
	t.Helper()
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	return string(out)
}

// hostVersion is the host's installed version of name, "" when none.
func hostVersion(admindir, name string) string {
	out, _ := exec.Command("dpkg-query", "--admindir="+admindir, "-W", "-f=${db:Status-Abbrev}${Version}", name).Output()
	s := string(out)
	if !strings.HasPrefix(s, "ii ") {
		return ""
	}
	return s[3:]
}

func purge(t *testing.T, names ...string) {
	t.Helper()
	args := append([]string{"-q", "-y", "-o", "DPkg::Lock::Timeout=300", "purge"}, names...)
	cmd := exec.Command("apt-get", args...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	if out, err := cmd.CombinedOutput(); err != nil && !strings.Contains(string(out), "Unable to locate") {
		t.Logf("purge %v: %v\n%s", names, err, out)
	}
}

// buildDeb builds a tiny package with dpkg-deb and returns its path.
func buildDeb(t *testing.T, name, version string) string {
	t.Helper()
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(pkg, "DEBIAN"), 0o755))
	must(os.MkdirAll(filepath.Join(pkg, "usr/share/doc", name), 0o755))
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: bootstrap tests <root@localhost>\nDescription: a package the bootstrap e2e tests install\n", name, version)
	must(os.WriteFile(filepath.Join(pkg, "DEBIAN/control"), []byte(control), 0o644))
	must(os.WriteFile(filepath.Join(pkg, "usr/share/doc", name, "README"), []byte("test\n"), 0o644))
	deb := filepath.Join(dir, name+"_"+version+"_all.deb")
	run(t, "dpkg-deb", "--root-owner-group", "--build", pkg, deb)
	return deb
}

func fileSHA256(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func planAndApply(t *testing.T, c Capability, rootDir, yaml string) ([]*plan.Step, error) {
	t.Helper()
	var logs bytes.Buffer
	in, env := testInput(t, rootDir, yaml, &logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs.String())
		}
	})
	steps, err := c.Steps(context.Background(), in)
	if err != nil {
		return nil, err
	}
	return steps, applyAll(t, steps, env)
}

func TestE2EAptOnThisMachine(t *testing.T) {
	requireAptRoot(t)
	testbed.LockHostPackages(t) // e2e/ installs hello on this machine too
	const testPkg = "bootstrap-e2e-hello"
	purge(t, "hello", testPkg)
	t.Cleanup(func() { purge(t, "hello", testPkg) })
	rec := &counting{real: command.Exec{}}
	c := Capability{Runner: rec}

	t.Run("install hello", func(t *testing.T) {
		start := time.Now()
		if _, err := planAndApply(t, c, "/", "packages:\n  install: [hello]\n"); err != nil {
			t.Fatal(err)
		}
		if v := hostVersion("/var/lib/dpkg", "hello"); v == "" {
			t.Fatal("hello is not installed")
		}
		t.Logf("installed hello in %s: %q", time.Since(start).Round(time.Millisecond), rec.take())
	})

	t.Run("second plan: no apt call at all", func(t *testing.T) {
		start := time.Now()
		steps, err := planAndApply(t, c, "/", "packages:\n  update: true\n  install: [hello]\n")
		if err != nil {
			t.Fatal(err)
		}
		calls := rec.take()
		for _, call := range calls {
			if !strings.HasPrefix(call, "dpkg-query ") {
				t.Errorf("ran %q; want only the dpkg-query", call)
			}
		}
		if got := steps[0].Actions[0].Describe().String(); !strings.HasPrefix(got, "package hello (already installed: 2.10") {
			t.Errorf("described as %q", got)
		}
		t.Logf("no-op plan+apply in %s: %q", time.Since(start).Round(time.Millisecond), calls)
	})

	t.Run("a pin to a missing version names what apt offers", func(t *testing.T) {
		_, err := planAndApply(t, c, "/", "packages:\n  install: [hello=9.9]\n")
		if err == nil || !strings.Contains(err.Error(), "hello=9.9 is not available; apt offers 2.10-3") {
			t.Fatalf("err = %v", err)
		}
		for _, call := range rec.take() {
			if strings.HasPrefix(call, "apt-get ") {
				t.Errorf("ran %q", call)
			}
		}
	})

	deb := buildDeb(t, testPkg, "1.0")
	sum := fileSHA256(t, deb)

	t.Run("package file with a wrong sha256: nothing installed", func(t *testing.T) {
		wrong := strings.Repeat("0", 64)
		_, err := planAndApply(t, c, "/", fmt.Sprintf("packages:\n  install: [hello]\n  files:\n    - source: file://%s\n      sha256: %s\n", deb, wrong))
		if err == nil {
			t.Fatal("no error")
		}
		for _, want := range []string{"file://" + deb, "expected " + wrong, "got " + sum, "nothing was installed"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q lacks %q", err, want)
			}
		}
		if v := hostVersion("/var/lib/dpkg", testPkg); v != "" {
			t.Errorf("%s installed (%s)", testPkg, v)
		}
		if calls := rec.take(); len(calls) != 0 {
			t.Errorf("ran %q before verifying", calls)
		}
	})

	t.Run("package file with its sha256: installed, then skipped", func(t *testing.T) {
		cfg := fmt.Sprintf("packages:\n  files:\n    - source: file://%s\n      sha256: %s\n", deb, sum)
		if _, err := planAndApply(t, c, "/", cfg); err != nil {
			t.Fatal(err)
		}
		if v := hostVersion("/var/lib/dpkg", testPkg); v != "1.0" {
			t.Fatalf("%s version %q, want 1.0", testPkg, v)
		}
		rec.take()
		steps, err := planAndApply(t, c, "/", cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := steps[0].Actions[0].Describe().String(); !strings.Contains(got, "already installed: 1.0") {
			t.Errorf("described as %q", got)
		}
		for _, call := range rec.take() {
			if strings.HasPrefix(call, "apt-get ") {
				t.Errorf("ran %q", call)
			}
		}
		if _, err := os.Stat(filepath.Join("/", filesDir)); !os.IsNotExist(err) {
			t.Errorf("/%s left behind: %v", filesDir, err)
		}
	})
}

// imageRoot extracts a minimal Debian root made by mmdebstrap from this
// machine's apt sources; the tarball is cached for the day (15 s to build).
func imageRoot(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("BOOTSTRAP_CI_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "bootstrap-ci")
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		t.Fatal(err)
	}
	// The same name as e2e/'s image root: one build a day serves both.
	tarball := filepath.Join(cache, "bookworm-minbase-"+time.Now().UTC().Format("20060102")+".tar")
	if _, err := os.Stat(tarball); err != nil {
		old, _ := filepath.Glob(filepath.Join(cache, "bookworm-minbase-*.tar"))
		// mmdebstrap picks its output format from the name: it must end in
		// .tar, and be this process's own while it is written.
		tmp := fmt.Sprintf("%s.tmp-%d.tar", tarball, os.Getpid())
		start := time.Now()
		run(t, "mmdebstrap", "--quiet", "--variant=minbase", "--mode=root", "bookworm", tmp, "/etc/apt/sources.list.d/debian.sources")
		if err := os.Rename(tmp, tarball); err != nil {
			t.Fatal(err)
		}
		for _, o := range old {
			os.Remove(o)
		}
		t.Logf("built %s in %s", tarball, time.Since(start).Round(time.Second))
	}
	dir := t.TempDir()
	run(t, "tar", "-xf", tarball, "-C", dir)
	return dir
}

func TestE2EImageRootThroughChroot(t *testing.T) {
	requireAptRoot(t, "mmdebstrap", "tar")
	testbed.LockHostPackages(t) // the host's dpkg -l is compared before and after
	root := imageRoot(t)
	// mmdebstrap leaves the host's resolv.conf in; an image has none.
	if err := os.Remove(filepath.Join(root, "etc/resolv.conf")); err != nil {
		t.Fatal(err)
	}
	before := run(t, "dpkg", "-l")
	rec := &counting{real: command.Exec{}}
	// Another apt holds the root's lists lock for the first 3 s (as
	// cloud-init's may at boot): apt-get update waits for it, within the bound.
	const held = 3 * time.Second
	lock, err := os.OpenFile(filepath.Join(root, "var/lib/apt/lists/lock"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.FcntlFlock(lock.Fd(), syscall.F_SETLK, &syscall.Flock_t{Type: syscall.F_WRLCK}); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(held, func() { lock.Close() })
	start := time.Now()
	steps, err := planAndApply(t, Capability{Runner: rec}, root, "packages:\n  update: true\n  install: [hello]\n")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	calls := rec.take()
	t.Logf("installed hello into the image in %s (lock held %s): %q", took.Round(time.Millisecond), held, calls)
	updates := 0
	for _, c := range calls {
		if strings.HasSuffix(c, " update") {
			updates++
		}
	}
	if took < held || updates < 2 {
		t.Errorf("took %s with %d apt-get update calls; want a wait for the held lock", took, updates)
	}
	if got := steps[0].Actions[0].Describe().String(); got != "package apt update (refresh the index first)" {
		t.Errorf("first action %q", got)
	}
	if v := hostVersion(filepath.Join(root, "var/lib/dpkg"), "hello"); v != "2.10-3" {
		t.Errorf("hello in the image: %q, want 2.10-3", v)
	}
	if after := run(t, "dpkg", "-l"); after != before {
		t.Errorf("the host's dpkg -l changed")
	}
	for _, p := range []string{"etc/resolv.conf", "usr/sbin/policy-rc.d", filesDir} {
		if _, err := os.Lstat(filepath.Join(root, p)); err == nil {
			t.Errorf("%s left in the image", p)
		}
	}
	// The image now has hello: a plan for it asks dpkg-query only.
	if _, err := planAndApply(t, Capability{Runner: rec}, root, "packages:\n  update: true\n  install: [hello]\n"); err != nil {
		t.Fatal(err)
	}
	if calls := rec.take(); len(calls) != 1 || !strings.HasPrefix(calls[0], "dpkg-query --admindir="+root) {
		t.Errorf("second plan ran %q", calls)
	}
}
