//go:build e2e

package chef

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientRBLoadsInChefConfig loads every client.rb of the golden cases
// with Chef's own config loader (Debian's ruby-chef-config) and reads back
// the values Chef will use.
func TestClientRBLoadsInChefConfig(t *testing.T) {
	need(t, "/usr/bin/ruby", "ruby")
	need(t, "/usr/share/rubygems-integration/all/gems/chef-config-16.12.3", "ruby-chef-config")
	goldens, _ := filepath.Glob("testdata/cases/*.golden")
	n := 0
	for _, g := range goldens {
		data, err := os.ReadFile(g)
		if err != nil {
			t.Fatal(err)
		}
		_, rest, ok := strings.Cut(string(data), "-- /etc/chef/client.rb --\n")
		if !ok {
			continue
		}
		rb, _, _ := strings.Cut(rest, "\n-- ")
		n++
		t.Run(filepath.Base(g), func(t *testing.T) {
			f := filepath.Join(t.TempDir(), "client.rb")
			os.WriteFile(f, []byte(rb+"\n"), 0o644)
			out, err := exec.Command("ruby", "-ropenssl", "-e", `require "chef-config/config"
ChefConfig::Config.from_file(ARGV[0])
c = ChefConfig::Config
puts [c.chef_server_url, c.node_name, c.ssl_verify_mode.inspect, c.client_key, c.environment, c.json_attribs].join("|")`, f).CombinedOutput()
			if err != nil {
				t.Fatalf("Chef's loader refused %s: %v\n%s\n%s", g, err, out, rb)
			}
			var want []string
			for _, key := range []string{"chef_server_url", "node_name", "ssl_verify_mode", "client_key", "environment", "json_attribs"} {
				for _, line := range strings.Split(rb, "\n") {
					if f := strings.Fields(line); len(f) == 2 && f[0] == key {
						want = append(want, strings.Trim(f[1], `"`))
					}
				}
			}
			if got := strings.TrimSpace(string(out)); got != strings.Join(want, "|") {
				t.Errorf("Chef read %q, the file says %q", got, strings.Join(want, "|"))
			}
		})
	}
	if n == 0 {
		t.Fatal("no client.rb in the goldens")
	}
}
