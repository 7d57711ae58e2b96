package chef

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tgz(t testing.TB, entries map[string]string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	tw := tar.NewWriter(zw)
	for name, body := range entries {
		h := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}
		if strings.HasSuffix(name, "/") {
			h = &tar.Header{Name: name, Mode: 0o755, Typeflag: tar.TypeDir}
		} else if strings.HasPrefix(body, "->") {
			h = &tar.Header{Name: name, Linkname: body[2:], Typeflag: tar.TypeSymlink}
		}
		tw.WriteHeader(h)
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(body))
		}
	}
	tw.Close()
	zw.Close()
	return b.Bytes()
}

// TestLocalMode: no server, no registration; the repository tarball is
// unpacked under repo_path (one top directory stripped); chef-client runs
// with --local-mode; bad archives fail the plan.
func TestLocalMode(t *testing.T) {
	const cfgText = "chef:\n  local_mode: true\n  repo_source: s3://b/repo.tgz\n  run_list: ['recipe[web]']\n  interval: 0\n"
	for _, tt := range []struct {
		name    string
		archive map[string]string
		err     string
	}{
		{"one top directory", map[string]string{"repo/": "", "repo/cookbooks/web/recipes/default.rb": "package 'nginx'\n", "repo/roles/web.json": "{}"}, ""},
		{"cookbooks at the top", map[string]string{"cookbooks/web/recipes/default.rb": "package 'nginx'\n"}, ""},
		{"escape", map[string]string{"cookbooks/x": "x", "../etc/passwd": "x"}, "leads out of the archive's directory"},
		{"symlink", map[string]string{"cookbooks/x": "->/etc/shadow"}, "only files and directories"},
		{"no cookbooks", map[string]string{"README": "x"}, "no cookbooks/ directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := loadConfig(t, "c.yaml", []byte(cfgText))
			f := &mapFetcher{objects: map[string][]byte{"s3://b/repo.tgz": tgz(t, tt.archive)}}
			in, env := newInput(t, cfg, f)
			steps, err := Capability{ChefClient: "/stand-in/chef-client", PackageManager: installed()}.Steps(context.Background(), in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range steps {
				names = append(names, s.Name)
				if s.Name == StepFirstRun {
					if got := strings.Join(s.Actions[0].Describe().Command, " "); got != "/stand-in/chef-client -c /etc/chef/client.rb -j /etc/chef/first-boot.json --local-mode --no-color" {
						t.Errorf("first run: %s", got)
					}
					continue
				}
				for _, a := range s.Actions {
					if err := a.Apply(context.Background(), env); err != nil {
						t.Fatal(err)
					}
				}
			}
			if got := strings.Join(names, " "); got != "chef:install chef:files chef:repo chef:first-run" {
				t.Errorf("steps %s", got)
			}
			b, err := os.ReadFile(filepath.Join(in.Root.Dir(), "var/chef/repo/cookbooks/web/recipes/default.rb"))
			if err != nil || string(b) != "package 'nginx'\n" {
				t.Errorf("recipe: %q %v", b, err)
			}
			rb, _ := os.ReadFile(filepath.Join(in.Root.Dir(), "etc/chef/client.rb"))
			if !strings.Contains(string(rb), "local_mode                 true\nchef_repo_path             \"/var/chef/repo\"") || strings.Contains(string(rb), "chef_server_url") {
				t.Errorf("client.rb:\n%s", rb)
			}
		})
	}
}
