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
			// Every key the file sets, read back through Chef's loader.
			var keys, want []string
			for _, line := range strings.Split(rb, "\n") {
				if fl := strings.Fields(line); len(fl) == 2 && !strings.HasPrefix(fl[0], "#") {
					keys = append(keys, fl[0])
					want = append(want, strings.Trim(fl[1], `"`))
				}
			}
			args := append([]string{"-ropenssl", "-e", `require "chef-config/config"
ChefConfig::Config.from_file(ARGV[0])
puts ARGV[1..].map { |k| v = ChefConfig::Config[k.to_sym]; v.equal?(STDOUT) ? "STDOUT" : v.is_a?(Symbol) ? v.inspect : v.to_s }.join("|")`, f}, keys...)
			out, err := exec.Command("ruby", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("Chef's loader refused %s: %v\n%s\n%s", g, err, out, rb)
			}
			if got := strings.TrimSpace(string(out)); got != strings.Join(want, "|") || len(keys) < 10 {
				t.Errorf("Chef read %q, the file says %q", got, strings.Join(want, "|"))
			}
		})
	}
	if n == 0 {
		t.Fatal("no client.rb in the goldens")
	}
}
