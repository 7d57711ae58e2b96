//go:build e2e

package chef

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/fetch"
)

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// debianRoot extracts the minimal Debian root the pkgmgr and e2e suites
// cache for the day (mmdebstrap, 15 s to build when missing).
func debianRoot(t *testing.T) string {
	for _, p := range []string{"mmdebstrap", "tar", "dpkg-deb"} {
		if _, err := exec.LookPath(p); err != nil {
			if os.Getenv("BOOTSTRAP_E2E") != "" {
				t.Fatalf("%s missing (scripts/setup.sh)", p)
			}
			t.Skip(p, " missing")
		}
	}
	if os.Geteuid() != 0 {
		t.Skip("installing into a root with chroot needs root")
	}
	cache := os.Getenv("BOOTSTRAP_CI_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "bootstrap-ci")
	}
	os.MkdirAll(cache, 0o755)
	tarball := filepath.Join(cache, "bookworm-minbase-"+time.Now().UTC().Format("20060102")+".tar")
	if _, err := os.Stat(tarball); err != nil {
		tmp := fmt.Sprintf("%s.tmp-%d.tar", tarball, os.Getpid())
		sh(t, "mmdebstrap", "--quiet", "--variant=minbase", "--mode=root", "bookworm", tmp, "/etc/apt/sources.list.d/debian.sources")
		if err := os.Rename(tmp, tarball); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	sh(t, "tar", "-xf", tarball, "-C", dir)
	os.Remove(filepath.Join(dir, "etc/resolv.conf"))
	return dir
}

// buildChefDeb builds a package named chef, as omnibus lays it out, whose
// chef-client prints its version: a stand-in for Chef's own .deb.
func buildChefDeb(t *testing.T, version string) []byte {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "pkg")
	os.MkdirAll(filepath.Join(pkg, "DEBIAN"), 0o755)
	os.MkdirAll(filepath.Join(pkg, "opt/chef/bin"), 0o755)
	os.MkdirAll(filepath.Join(pkg, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(pkg, "DEBIAN/control"), []byte("Package: chef\nVersion: "+version+"\nArchitecture: all\n"+
		"Maintainer: bootstrap tests <test@example.com>\nDescription: stand-in for Chef Infra Client (test package)\n"), 0o644)
	os.WriteFile(filepath.Join(pkg, "opt/chef/bin/chef-client"), []byte("#!/bin/sh\necho \"Chef Infra Client: "+strings.Split(version, "-")[0]+"\"\n"), 0o755)
	os.Symlink("/opt/chef/bin/chef-client", filepath.Join(pkg, "usr/bin/chef-client"))
	deb := filepath.Join(dir, "chef.deb")
	sh(t, "dpkg-deb", "--root-owner-group", "--build", pkg, deb)
	b, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestE2EOmnitruckInstall: a loopback omnitruck serves metadata and a .deb
// built here; a wrong sha256 installs nothing and names the URL and both
// digests; the right one installs the package into a Debian root through
// its apt (chroot), and chef-client --version then runs there.
func TestE2EOmnitruckInstall(t *testing.T) {
	root := debianRoot(t)
	deb := buildChefDeb(t, "18.4.12-1")
	sum := sha256.Sum256(deb)
	good := hex.EncodeToString(sum[:])
	var answer string
	var ts *httptest.Server
	mux := http.NewServeMux()
	mux.HandleFunc("/stable/chef/metadata", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("p") != "debian" || r.URL.Query().Get("pv") != "12" || r.URL.Query().Get("v") != "18" {
			http.NotFound(w, r)
			return
		}
		json.NewEncoder(w).Encode(Artifact{URL: ts.URL + "/files/chef_18.4.12-1_all.deb", SHA256: answer, Version: "18.4.12"})
	})
	mux.HandleFunc("/files/chef_18.4.12-1_all.deb", func(w http.ResponseWriter, r *http.Request) { w.Write(deb) })
	ts = httptest.NewServer(mux)
	defer ts.Close()
	cfgText := "chef:\n  server_url: https://c\n  validation_key_source: s3://b/k\n  install_type: omnitruck\n" +
		"  omnibus_url: " + ts.URL + "\n  omnibus_version: '18'\n"
	plan := func() (func() error, error) {
		cfg, _ := loadConfig(t, "c.yaml", []byte(cfgText))
		in, env := newInputAt(t, cfg, root)
		in.Fetcher = fetch.New(fetch.Options{Deadline: 10 * time.Second})
		s, err := Capability{}.installStep(context.Background(), in, cfg.Chef)
		return func() error {
			for _, a := range s.Actions {
				if err := a.Apply(context.Background(), env); err != nil {
					return err
				}
			}
			return nil
		}, err
	}
	answer = strings.Repeat("ab", 32)
	_, err := plan()
	if err == nil || !strings.Contains(err.Error(), ts.URL+"/files/chef_18.4.12-1_all.deb") || !strings.Contains(err.Error(), good) || !strings.Contains(err.Error(), answer) {
		t.Fatalf("wrong sha256: %v", err)
	}
	if _, err := os.Stat(filepath.Join(root, "opt/chef")); err == nil {
		t.Fatal("installed despite the wrong digest")
	}
	answer = good
	apply, err := plan()
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := apply(); err != nil {
		t.Fatal(err)
	}
	t.Logf("installed the omnitruck package into the root in %s", time.Since(start).Round(time.Millisecond))
	if out := sh(t, "chroot", root, "/usr/bin/chef-client", "--version"); !strings.Contains(out, "18.4.12") {
		t.Errorf("chef-client --version: %q", out)
	}
	// Installed at the pinned version: nothing asked, nothing to do.
	_, err = plan()
	if err != nil {
		t.Fatal(err)
	}
}
