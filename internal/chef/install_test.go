package chef

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/fetch"
	"github.com/opsboot/bootstrap/internal/pkgmgr"
)

func TestDetectPlatform(t *testing.T) {
	for _, tt := range []struct{ osRelease, want, err string }{
		{"ID=debian\nVERSION_ID=\"12\"\n", "debian 12", ""},
		{"ID=ubuntu\nVERSION_ID=\"22.04\"\n", "ubuntu 22.04", ""},
		{"ID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\nVERSION_ID=\"9.3\"\n", "el 9", ""},
		{"ID=amzn\nVERSION_ID=\"2023\"\n", "amazon 2023", ""},
		{"ID=alpine\nVERSION_ID=3.19.0\n", "", `omnitruck has no builds for "alpine"`},
		{"", "", "no os-release"},
	} {
		dir := t.TempDir()
		if tt.osRelease != "" {
			os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
			os.WriteFile(filepath.Join(dir, "etc/os-release"), []byte(tt.osRelease), 0o644)
		}
		p, err := DetectPlatform(dir)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: %v, want %q", tt.osRelease, err, tt.err)
			}
			continue
		}
		if err != nil || p.Name+" "+p.Version != tt.want || p.Machine == "" {
			t.Errorf("%q: %+v %v, want %s", tt.osRelease, p, err, tt.want)
		}
	}
	if got := MetadataURL("https://omnitruck.chef.io/", "stable", "18", Platform{"debian", "12", "x86_64"}); got != "https://omnitruck.chef.io/stable/chef/metadata?m=x86_64&p=debian&pv=12&v=18" {
		t.Errorf("MetadataURL = %s", got)
	}
	for _, c := range []struct {
		installed, pin string
		want           bool
	}{{"18.4.12-1", "18", true}, {"18.4.12-1", "18.4", true}, {"18.4.12-1", "18.4.12", true}, {"18.4.12-1", "18.41", false}, {"17.10.3-1", "18", false}, {"17.1", "", true}} {
		if got := versionMatches(c.installed, c.pin); got != c.want {
			t.Errorf("versionMatches(%s, %s) = %v", c.installed, c.pin, got)
		}
	}
}

// TestOmnitruckInstall: metadata asked with the root's platform and the
// pin; the package file fetched through the real fetcher, which checks
// omnitruck's sha256: a wrong one fails naming the URL and both digests,
// and nothing is installed.
func TestOmnitruckInstall(t *testing.T) {
	deb := []byte("!<arch>\na test chef package")
	sum := sha256.Sum256(deb)
	good := hex.EncodeToString(sum[:])
	var answerSHA string
	var queries []string
	mux := http.NewServeMux()
	var ts *httptest.Server
	mux.HandleFunc("/stable/chef/metadata", func(w http.ResponseWriter, r *http.Request) {
		queries = append(queries, r.URL.RawQuery)
		json.NewEncoder(w).Encode(Artifact{URL: ts.URL + "/files/chef_18.4.12-1_amd64.deb", SHA256: answerSHA, Version: "18.4.12"})
	})
	mux.HandleFunc("/files/chef_18.4.12-1_amd64.deb", func(w http.ResponseWriter, r *http.Request) { w.Write(deb) })
	ts = httptest.NewServer(mux)
	defer ts.Close()
	cfgText := "chef:\n  server_url: https://c\n  validation_key_source: s3://acme-chef/validator.pem\n  install_type: omnitruck\n" +
		"  omnibus_url: " + ts.URL + "\n  omnibus_version: '18.4'\n  interval: 0\n  exec: false\n"
	for _, tt := range []struct {
		name, sha, err string
	}{
		{"right digest installs", good, ""},
		{"wrong digest", strings.Repeat("0", 64), "sha256"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			answerSHA, queries = tt.sha, nil
			cfg, _ := loadConfig(t, "c.yaml", []byte(cfgText))
			in, env := newInput(t, cfg, nil)
			in.Fetcher = fetch.New(fetch.Options{Deadline: 5e9})
			os.WriteFile(filepath.Join(in.Root.Dir(), "etc/os-release"), []byte("ID=debian\nVERSION_ID=\"12\"\n"), 0o644)
			mgr := &pkgmgr.Fake{ManagerName: "apt", FileInfos: map[string]pkgmgr.Request{"chef_18.4.12-1_amd64.deb": {Name: "chef", Version: "18.4.12-1"}}}
			// Install only: registration is not under test here.
			s, err := Capability{PackageManager: mgr}.installStep(context.Background(), in, cfg.Chef)
			if len(queries) != 1 || !strings.Contains(queries[0], "p=debian&pv=12&v=18.4") {
				t.Errorf("metadata queries %v", queries)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), ts.URL+"/files/chef_18.4.12-1_amd64.deb") ||
					!strings.Contains(err.Error(), good) || !strings.Contains(err.Error(), tt.sha) {
					t.Errorf("err = %v; want the URL and both digests", err)
				}
				t.Logf("the operator reads: %v", err)
				if strings.Contains(strings.Join(mgr.Calls, ";"), "install ") {
					t.Errorf("installed after a digest mismatch: %v", mgr.Calls)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range s.Actions {
				if err := a.Apply(context.Background(), env); err != nil {
					t.Fatal(err)
				}
			}
			if got := strings.Join(mgr.Calls, ";"); !strings.Contains(got, "install ") || !strings.Contains(got, "chef_18.4.12-1_amd64.deb") {
				t.Errorf("manager calls %q", got)
			}
		})
	}
	// Already installed at a matching version: no query, nothing to do.
	queries = nil
	cfg, _ := loadConfig(t, "c.yaml", []byte(cfgText))
	in, _ := newInput(t, cfg, nil)
	s, err := Capability{PackageManager: installed()}.installStep(context.Background(), in, cfg.Chef)
	if err != nil || len(queries) != 0 || !strings.Contains(s.Actions[0].Describe().Note, "already installed: 18.4.12-1") {
		t.Errorf("installed: %v, queries %v, %+v", err, queries, s)
	}
}
