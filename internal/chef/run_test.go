package chef

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/retry"
)

// TestFirstRunExitCodes runs the first-run step with a stand-in for
// chef-client (chef-client is not in Debian) that exits with a chosen code,
// and checks the sentence each code gets.
func TestFirstRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "chef-client-stand-in")
	os.WriteFile(bin, []byte("#!/bin/sh\necho \"$*\" >> "+dir+"/argv\nexit $(cat "+dir+"/code)\n"), 0o755)
	for _, tt := range []struct {
		code  string
		want  string
		calls int
	}{
		{"0", "", 1},
		{"172", "the Chef license was not accepted: set chef.chef_license", 1},
		{"213", "chef-client upgraded itself", 1},
		{"35", "a reboot is scheduled", 1},
		{"1", "the chef-client run failed", 3}, // retried twice
	} {
		t.Run(tt.code, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, "code"), []byte(tt.code), 0o644)
			os.Remove(filepath.Join(dir, "argv"))
			cfg, _ := loadConfig(t, "c.yaml", []byte("chef:\n  server_url: https://c\n  validation_key_source: s3://acme-chef/validator.pem\n  interval: 0\n"))
			in, env := newInput(t, cfg, &mapFetcher{objects: map[string][]byte{"s3://acme-chef/validator.pem": EncodeKey(testKey(t))}})
			s := Capability{ChefClient: bin}.firstRunStep(in, cfg.Chef)
			a := s.Actions[0].(*command.Action)
			a.Spec.Backoff = retry.Policy{Initial: time.Millisecond, Max: time.Millisecond}
			err := s.Actions[0].Apply(context.Background(), env)
			argv, _ := os.ReadFile(filepath.Join(dir, "argv"))
			if n := strings.Count(string(argv), "\n"); n != tt.calls {
				t.Errorf("chef-client ran %d times, want %d", n, tt.calls)
			}
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.code) {
				t.Errorf("exit %s: %v, want %q", tt.code, err, tt.want)
			}
		})
	}
}
