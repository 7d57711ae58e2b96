package chef

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/fetch"
	"github.com/opsboot/bootstrap/internal/golden"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
	"github.com/opsboot/bootstrap/internal/userdata"
)

var facts = map[string]string{"instance_id": "i-0123456789abcdef0", "region": "eu-west-1"}

// mapFetcher serves sources from a map and records what was fetched.
type mapFetcher struct {
	objects map[string][]byte
	fetched []string
}

func (f *mapFetcher) Bytes(_ context.Context, src, _ string, limit int64) ([]byte, error) {
	f.fetched = append(f.fetched, src)
	b, ok := f.objects[src]
	if !ok {
		return nil, fmt.Errorf("fetch %s: NoSuchKey: the object does not exist", src)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("fetch %s: larger than %d bytes", src, limit)
	}
	return b, nil
}

func (f *mapFetcher) File(_ context.Context, src, want, dir string) (*fetch.Blob, error) {
	f.fetched = append(f.fetched, src)
	b, ok := f.objects[src]
	if !ok {
		return nil, errors.New("fetch " + src + ": 404")
	}
	sum := sha256.Sum256(b)
	if got := hex.EncodeToString(sum[:]); want != "" && got != want {
		return nil, fmt.Errorf("fetch %s: sha256 %s, want %s", src, got, want)
	}
	p := filepath.Join(dir, filepath.Base(src))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		return nil, err
	}
	return &fetch.Blob{Path: p, Size: int64(len(b)), SHA256: hex.EncodeToString(sum[:])}, nil
}

// omnitruck answers omnitruck metadata queries for any host, with art.
type omnitruck struct {
	art     Artifact
	queries []string
}

func (o *omnitruck) RoundTrip(r *http.Request) (*http.Response, error) {
	o.queries = append(o.queries, r.URL.String())
	b, _ := json.Marshal(o.art)
	return &http.Response{StatusCode: 200, Body: io.NopCloser(bytes.NewReader(b)), Header: http.Header{}, Request: r}, nil
}

// loadConfig reads our YAML or, starting with #cloud-config, user-data.
func loadConfig(t *testing.T, name string, data []byte) (*config.Config, []string) {
	t.Helper()
	if !strings.HasPrefix(string(data), "#cloud-config") {
		cfg, err := config.ParseConfig(name, data, facts)
		if err != nil {
			t.Fatal(err)
		}
		return cfg, nil
	}
	d, err := userdata.Decode(name, data)
	if err != nil {
		t.Fatal(err)
	}
	m, err := config.Merge(d.Layers)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := m.Decode(facts)
	if err != nil {
		t.Fatal(err)
	}
	return cfg, d.Warnings
}

func newInput(t *testing.T, cfg *config.Config, f capability.Fetcher) (*capability.Input, *plan.Env) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\n"), 0o644)
	in, env := newInputAt(t, cfg, dir)
	in.Fetcher = f
	return in, env
}

// newInputAt is newInput on an existing root directory.
func newInputAt(t *testing.T, cfg *config.Config, dir string) (*capability.Input, *plan.Env) {
	t.Helper()
	var f capability.Fetcher
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	if os.Geteuid() != 0 {
		root.KeepOwnership()
	}
	red := &secret.Redactor{}
	log := slog.New(slog.DiscardHandler)
	in := &capability.Input{Config: cfg, Facts: facts, Datasource: "ec2", Fetcher: f, Redactor: red, Log: log, Root: root, Scratch: t.TempDir()}
	return in, &plan.Env{Root: root, Log: log, Redactor: red, Scratch: in.Scratch}
}

// TestGoldenPlans plans each case, applies its files step, and records the
// plan, client.rb and first-boot.json. testdata/cases/*.yaml (ours) and
// *.cloud-config (user-data).
func TestGoldenPlans(t *testing.T) {
	cases, _ := filepath.Glob("testdata/cases/*")
	var n int
	for _, file := range cases {
		if strings.HasSuffix(file, ".golden") {
			continue
		}
		n++
		t.Run(filepath.Base(file), func(t *testing.T) {
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			data = []byte(strings.ReplaceAll(string(data), "VALIDATOR_KEY", indentKey(t)))
			cfg, warnings := loadConfig(t, filepath.Base(file), data)
			in, env := newInput(t, cfg, &mapFetcher{objects: map[string][]byte{
				"s3://acme-chef/validator.pem":   EncodeKey(testKey(t)),
				"s3://acme-chef/data_bag_secret": []byte("s3cr3t-data-bag-passphrase\n"),
				"s3://acme-chef/repo.tgz":        tgz(t, map[string]string{"cookbooks/web/recipes/default.rb": "package 'nginx'\n"}),
			}})
			in.Image = strings.Contains(file, "image")
			os.WriteFile(filepath.Join(in.Root.Dir(), "etc/os-release"), []byte("ID=debian\nVERSION_ID=\"12\"\n"), 0o644)
			deb := []byte("a chef .deb")
			sum := sha256.Sum256(deb)
			ot := &omnitruck{art: Artifact{URL: "https://packages.chef.io/files/stable/chef/18.4.12/debian/12/chef_18.4.12-1_amd64.deb", SHA256: hex.EncodeToString(sum[:]), Version: "18.4.12"}}
			in.Fetcher.(*mapFetcher).objects[ot.art.URL] = deb
			steps, err := Capability{ChefClient: "/stand-in/chef-client", PackageManager: offered(), Transport: ot}.Steps(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			for _, w := range warnings {
				fmt.Fprintf(&b, "warning: %s\n", w)
			}
			p := &plan.Plan{Instance: facts["instance_id"], Datasource: "ec2", Steps: steps}
			p.Write(&b)
			for _, s := range steps {
				if s.Name != StepFiles {
					continue
				}
				for _, a := range s.Actions {
					if err := a.Apply(context.Background(), env); err != nil {
						t.Fatal(err)
					}
				}
			}
			var written []string
			filepath.WalkDir(in.Root.Dir(), func(p string, d os.DirEntry, err error) error {
				rel, _ := filepath.Rel(in.Root.Dir(), p)
				if strings.HasPrefix(rel, "etc/chef") {
					fi, _ := d.Info()
					written = append(written, fmt.Sprintf("%s %v", rel, fi.Mode()))
				}
				return nil
			})
			sort.Strings(written)
			fmt.Fprintf(&b, "-- written --\n%s\n", strings.Join(written, "\n"))
			for _, f := range []string{cfg.Chef.ConfigPath, cfg.Chef.JSONAttribs} {
				if data, err := os.ReadFile(filepath.Join(in.Root.Dir(), f)); err == nil {
					fmt.Fprintf(&b, "-- %s --\n%s", f, data)
				}
			}
			out := b.String()
			for _, secret := range []string{"s3cr3t-data-bag", "PRIVATE KEY"} {
				if strings.Contains(out, secret) {
					t.Errorf("plan or files show %q", secret)
				}
			}
			golden.Check(t, file+".golden", []byte(out))
		})
	}
	if n == 0 {
		t.Fatal("no cases")
	}
}

// indentKey is the test key as a YAML block scalar's lines.
func indentKey(t *testing.T) string {
	return strings.TrimSpace(strings.ReplaceAll(string(EncodeKey(testKey(t))), "\n", "\n    "))
}
