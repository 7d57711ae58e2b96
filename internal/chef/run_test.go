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

// TestClassicRegistration: validation.pem is written 0600 for chef-client
// (a stand-in here) to register with, and removed only once its first run
// succeeded; no register step, so we make no server request.
func TestClassicRegistration(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "chef-client-stand-in")
	os.WriteFile(bin, []byte("#!/bin/sh\ntest -f \"$BOOTSTRAP_TEST_ROOT/etc/chef/validation.pem\" || exit 9\nexit $(cat "+dir+"/code)\n"), 0o755)
	cfgText := "chef:\n  server_url: https://chef.example.com\n  registration: classic\n  validation_key_source: s3://acme-chef/validator.pem\n  interval: 0\n"
	for _, tt := range []struct {
		code     string
		removed  bool
		failWith string
	}{{"0", true, ""}, {"172", false, "license"}} {
		t.Run(tt.code, func(t *testing.T) {
			os.WriteFile(filepath.Join(dir, "code"), []byte(tt.code), 0o644)
			cfg, _ := loadConfig(t, "c.yaml", []byte(cfgText))
			in, env := newInput(t, cfg, &mapFetcher{objects: map[string][]byte{"s3://acme-chef/validator.pem": EncodeKey(testKey(t))}})
			t.Setenv("BOOTSTRAP_TEST_ROOT", in.Root.Dir())
			steps, err := Capability{ChefClient: bin, PackageManager: installed()}.Steps(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			var runErr error
			for _, s := range steps {
				names = append(names, s.Name)
				for _, a := range s.Actions {
					if ca, ok := a.(*command.Action); ok {
						ca.Spec.Backoff = retry.Policy{Initial: time.Millisecond, Max: time.Millisecond}
					}
					if runErr = a.Apply(context.Background(), env); runErr != nil {
						break
					}
				}
				if runErr != nil {
					break
				}
			}
			if strings.Contains(strings.Join(names, " "), StepRegister) {
				t.Errorf("steps %v include registration", names)
			}
			fi, err := os.Stat(filepath.Join(in.Root.Dir(), "etc/chef/validation.pem"))
			switch {
			case tt.removed && err == nil:
				t.Error("validation.pem left after a successful first run")
			case !tt.removed && (err != nil || fi.Mode().Perm() != 0o600):
				t.Errorf("validation.pem after a failed run: %v %v (kept 0600 for the retry)", fi, err)
			}
			if (runErr == nil) != (tt.failWith == "") || (runErr != nil && !strings.Contains(runErr.Error(), tt.failWith)) {
				t.Errorf("run: %v", runErr)
			}
			rb, _ := os.ReadFile(filepath.Join(in.Root.Dir(), "etc/chef/client.rb"))
			if !strings.Contains(string(rb), `validation_key             "/etc/chef/validation.pem"`) {
				t.Errorf("client.rb:\n%s", rb)
			}
		})
	}
}
