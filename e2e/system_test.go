//go:build e2e

package e2e

// The shared system actions end to end, with the real tools: apt and dpkg
// on this machine and in an image root that mmdebstrap builds from the
// machine's own apt sources. Packages are installed for real.

import (
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

	"github.com/opsboot/bootstrap/internal/testbed"
)

// needRoot skips (or under BOOTSTRAP_E2E=1 fails) where installing
// packages is impossible.
func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("BOOTSTRAP_E2E") == "1" {
			t.Fatal("installing packages needs root")
		}
		t.Skip("installing packages needs root")
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// dpkgList is `dpkg -l` of a root ("/" for this machine).
func dpkgList(t *testing.T, root string) string {
	t.Helper()
	return sh(t, "dpkg", "--admindir", filepath.Join(root, "var/lib/dpkg"), "-l")
}

func installed(root, pkg string) bool {
	out, err := exec.Command("dpkg-query", "--admindir", filepath.Join(root, "var/lib/dpkg"), "-W", "-f", "${Status}", pkg).Output()
	return err == nil && strings.Contains(string(out), "install ok installed")
}

// aptWrapper puts an apt-get and a dpkg on PATH that log each call to a
// file and then run the real tools, so a test can count them.
func aptWrapper(t *testing.T) (pathEnv string, calls func() []string) {
	t.Helper()
	dir := t.TempDir()
	logf := filepath.Join(dir, "calls.log")
	for _, tool := range []string{"apt-get", "dpkg"} {
		script := fmt.Sprintf("#!/bin/sh\necho \"%s $*\" >> %s\nexec /usr/bin/%s \"$@\"\n", tool, logf, tool)
		if err := os.WriteFile(filepath.Join(dir, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return "PATH=" + dir + ":" + os.Getenv("PATH"), func() []string {
		b, _ := os.ReadFile(logf)
		return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), "\n", " | "))
	}
}

// buildDeb makes a small real package. postinst, when set, is its
// maintainer script.
func buildDeb(t *testing.T, name, version, postinst string) (path, digest string) {
	t.Helper()
	dir := t.TempDir()
	pkg := filepath.Join(dir, name)
	os.MkdirAll(filepath.Join(pkg, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(pkg, "usr/share/doc", name), 0o755)
	os.WriteFile(filepath.Join(pkg, "usr/share/doc", name, "README"), []byte("built by the bootstrap e2e suite\n"), 0o644)
	control := fmt.Sprintf("Package: %s\nVersion: %s\nArchitecture: all\nMaintainer: e2e <e2e@example.invalid>\nDescription: bootstrap e2e test package\n", name, version)
	os.WriteFile(filepath.Join(pkg, "DEBIAN/control"), []byte(control), 0o644)
	if postinst != "" {
		os.WriteFile(filepath.Join(pkg, "DEBIAN/postinst"), []byte(postinst), 0o755)
	}
	path = filepath.Join(dir, name+"_"+version+"_all.deb")
	sh(t, "dpkg-deb", "--root-owner-group", "--build", pkg, path)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return path, hex.EncodeToString(sum[:])
}

// localRun runs the binary with the none datasource and a local config.
func localRun(t *testing.T, env []string, args ...string) result {
	t.Helper()
	b := &bed{env: env}
	return b.runRaw(t, args...)
}

func (b *bed) runRaw(t *testing.T, args ...string) result {
	t.Helper()
	return b.runProgram(t, nil, append([]string{bin}, args...)...)
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestPackagesWithRealApt installs Debian's hello on this machine through
// `bootstrap run`, then shows the next run makes no apt call at all, and a
// pin to a version that does not exist names what apt offers.
func TestPackagesWithRealApt(t *testing.T) {
	needRoot(t)
	testbed.LockHostPackages(t)
	exec.Command("apt-get", "purge", "-y", "-qq", "hello").Run()
	t.Cleanup(func() { exec.Command("apt-get", "purge", "-y", "-qq", "hello").Run() })
	path, calls := aptWrapper(t)
	cfg := writeConfig(t, "packages:\n  update: true\n  install: [hello]\n")
	common := []string{"--datasource", "none", "--config", cfg, "--root", "/", "--log-format", "json"}

	r := localRun(t, []string{path}, append([]string{"run", "--state-dir", t.TempDir()}, common...)...)
	if r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	if !installed("/", "hello") {
		t.Fatal("hello is not installed after the run")
	}
	if got := strings.Join(calls(), " "); !strings.Contains(got, "apt-get") || !strings.Contains(got, "install") {
		t.Errorf("apt calls: %s", got)
	}
	t.Logf("figure: install of one package: %s wall, bootstrap's own peak RSS %v KB", r.elapsed.Round(time.Millisecond), logLine(t, r.stderr, "run finished")["max_rss_kb"])

	// A fresh state dir is a new instance: the step runs again, and finds
	// hello installed, so no apt or dpkg command runs at all.
	path2, calls2 := aptWrapper(t)
	r = localRun(t, []string{path2}, append([]string{"run", "--state-dir", t.TempDir()}, common...)...)
	if r.code != 0 {
		t.Fatalf("second run: %s", r)
	}
	if got := calls2(); len(got) != 0 {
		t.Errorf("second run called the package manager: %v", got)
	}
	t.Logf("figure: the same with the package already there: %s wall, bootstrap's own peak RSS %v KB", r.elapsed.Round(time.Millisecond), logLine(t, r.stderr, "run finished")["max_rss_kb"])

	cfg = writeConfig(t, "packages:\n  install:\n    - {name: hello, version: 9.9-does-not-exist}\n")
	r = localRun(t, nil, "run", "--state-dir", t.TempDir(), "--datasource", "none", "--config", cfg, "--root", "/")
	if r.code != 1 || !strings.Contains(r.stderr, "hello") || !strings.Contains(r.stderr, "9.9-does-not-exist") {
		t.Fatalf("pin to a missing version: %s", r)
	}
	offered := strings.Fields(sh(t, "dpkg-query", "-W", "-f", "${Version}", "hello"))[0]
	if !strings.Contains(r.stderr, offered) {
		t.Errorf("the error does not name the version apt offers (%s):\n%s", offered, r.stderr)
	}
}

// TestPackageFileFromS3WithWrongDigest fetches a .deb from MinIO with the
// role's STS credentials; its sha256 does not match: nothing is installed
// and the message names both digests.
func TestPackageFileFromS3WithWrongDigest(t *testing.T) {
	needRoot(t)
	testbed.LockHostPackages(t)
	deb, digest := buildDeb(t, "bootstrap-e2e-digest", "1.0", "")
	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.Put(t.Context(), "config", "debs/digest.deb", data); err != nil {
		t.Fatal(err)
	}
	wrong := strings.Repeat("0", 64)
	b := newBed(t, testbed.IMDSConfig{InstanceID: "i-0e2e00000000dead"})
	b.imds.SetUserData(userData(s3.URL, "packages:\n  files:\n    - source: s3://config/debs/digest.deb\n      sha256: "+wrong+"\n"))
	r := b.run(t, "run", "--root", "/")
	if r.code != 1 {
		t.Fatalf("want exit 1: %s", r)
	}
	for _, want := range []string{"s3://config/debs/digest.deb", digest, wrong} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("error lacks %q:\n%s", want, r.stderr)
		}
	}
	if installed("/", "bootstrap-e2e-digest") {
		exec.Command("dpkg", "--purge", "bootstrap-e2e-digest").Run()
		t.Fatal("the package was installed despite the wrong digest")
	}
}

var (
	imageOnce sync.Once
	imageTar  string
	imageErr  error
)

// imageRoot is a fresh minimal Debian root. mmdebstrap builds it once per
// day into the CI cache (15 s); each test unpacks a copy.
func imageRoot(t *testing.T) string {
	t.Helper()
	imageOnce.Do(func() {
		cache := os.Getenv("BOOTSTRAP_CI_CACHE")
		if cache == "" {
			home, _ := os.UserHomeDir()
			cache = filepath.Join(home, ".cache", "bootstrap-ci")
		}
		os.MkdirAll(cache, 0o755)
		imageTar = filepath.Join(cache, "bookworm-minbase-"+time.Now().UTC().Format("20060102")+".tar")
		if _, err := os.Stat(imageTar); err == nil {
			return
		}
		// mmdebstrap picks the output format from the name: keep .tar.
		tmp := fmt.Sprintf("%s.tmp-%d.tar", strings.TrimSuffix(imageTar, ".tar"), os.Getpid())
		out, err := exec.Command("mmdebstrap", "--variant=minbase", "--mode=root", "--quiet", "bookworm", tmp,
			"/etc/apt/sources.list.d/debian.sources").CombinedOutput()
		if err != nil {
			imageErr = fmt.Errorf("mmdebstrap: %v\n%s", err, out)
			return
		}
		imageErr = os.Rename(tmp, imageTar)
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	dir := filepath.Join(t.TempDir(), "image")
	os.Mkdir(dir, 0o755)
	sh(t, "tar", "-C", dir, "-xf", imageTar)
	return dir
}

// TestImageBuildInstallsIntoTheRoot builds an image: packages from the
// mirror and a local .deb (whose maintainer script creates a user) are
// installed inside the root, a deferred file gets that user as its owner,
// and this machine's package database is unchanged.
func TestImageBuildInstallsIntoTheRoot(t *testing.T) {
	needRoot(t)
	testbed.LockHostPackages(t) // the host's dpkg -l is compared before and after
	if _, err := exec.LookPath("mmdebstrap"); err != nil {
		t.Fatal("mmdebstrap is missing: scripts/setup.sh installs it")
	}
	root := imageRoot(t)
	hostBefore := dpkgList(t, "/")

	// The user is added the way adduser would, without needing adduser in
	// a minbase root.
	deb, digest := buildDeb(t, "bootstrap-e2e-svc", "1.0", `#!/bin/sh
set -e
if ! grep -q '^demosvc:' /etc/passwd; then
  echo 'demosvc:x:991:991:bootstrap e2e:/nonexistent:/usr/sbin/nologin' >> /etc/passwd
  echo 'demosvc:x:991:' >> /etc/group
fi
`)
	cfg := writeConfig(t, fmt.Sprintf(`packages:
  update: true
  install: [hello]
  files:
    - source: file://%s
      sha256: %s
files:
  - path: /etc/demosvc/app.conf
    content: "listen=8080\n"
    owner: demosvc
    group: demosvc
    mode: "0640"
    defer: true
`, deb, digest))
	state := t.TempDir()
	r := localRun(t, nil, "run", "--image", "--datasource", "none", "--config", cfg, "--root", root, "--state-dir", state)
	if r.code != 0 {
		t.Fatalf("image run: %s", r)
	}
	for _, pkg := range []string{"hello", "bootstrap-e2e-svc"} {
		if !installed(root, pkg) {
			t.Errorf("%s not installed in the image", pkg)
		}
		if installed("/", pkg) && pkg != "hello" {
			t.Errorf("%s installed on this machine", pkg)
		}
	}
	fi, err := os.Stat(filepath.Join(root, "etc/demosvc/app.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != 991 || st.Gid != 991 || fi.Mode().Perm() != 0o640 {
		t.Errorf("deferred file: owner %d:%d mode %o, want 991:991 0640", st.Uid, st.Gid, fi.Mode().Perm())
	}
	if hostAfter := dpkgList(t, "/"); hostAfter != hostBefore {
		t.Errorf("this machine's package database changed")
	}
}
