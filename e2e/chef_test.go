//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/chef"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/testbed"
)

// startGoiardi runs Debian's goiardi (a Chef server) with authentication on
// 127.0.0.1 for one test; it writes admin.pem and chef-validator.pem.
func startGoiardi(t *testing.T) (serverURL, confDir string) {
	t.Helper()
	bin, err := exec.LookPath("goiardi")
	if err != nil {
		t.Fatal("goiardi is missing: scripts/setup.sh installs it")
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-A", "-I", "127.0.0.1", "-H", "127.0.0.1", "-P", fmt.Sprint(port), "--conf-root="+dir, "-g", "error")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(dir, "chef-validator.pem")); err == nil {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
				c.Close()
				return fmt.Sprintf("http://127.0.0.1:%d", port), dir
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("goiardi did not come up within 10s")
	return "", ""
}

// TestChefThroughTheBinary: `bootstrap run` on an emulated EC2 instance
// whose user-data has a chef: section: the validator key in MinIO is read
// with the role's STS credentials, the client and node are registered on
// goiardi, client.pem is 0600 and no validator key is on disk; the first
// run calls chef-client (a stand-in that records its argv, in a Debian
// root, as chef-client is not in Debian); a second run makes no server
// request; a reused node name exits 1 naming the knife commands.
func TestChefThroughTheBinary(t *testing.T) {
	needRoot(t)
	serverURL, conf := startGoiardi(t)
	validator, err := os.ReadFile(filepath.Join(conf, "chef-validator.pem"))
	if err != nil {
		t.Fatal(err)
	}
	scanFor("chef validator key", strings.Split(strings.TrimSpace(string(validator)), "\n")[5])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s3.Put(ctx, "config", "chef/validator.pem", validator); err != nil {
		t.Fatal(err)
	}
	chefYAML := fmt.Sprintf(`chef:
  server_url: %s
  validation_key_source: s3://config/chef/validator.pem
  install_type: none
  run_list: ['recipe[base]', 'role[web]']
  environment: production
  chef_license: accept
`, serverURL)
	const id = "i-0c4ef000000000001"
	b := newBed(t, testbed.IMDSConfig{InstanceID: id, UserData: userData(s3.URL, chefYAML)})
	b.root = imageRoot(t)
	standIn := "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'Chef Infra Client: 18.4.12'; exit 0; fi\n" +
		"echo \"$* CHEF_LICENSE=$CHEF_LICENSE\" >> /var/log/chef-client-stand-in\n"
	if err := os.WriteFile(filepath.Join(b.root, "usr/bin/chef-client"), []byte(standIn), 0o755); err != nil {
		t.Fatal(err)
	}

	r := b.run(t, "run")
	if r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	t.Logf("first run, registration included: %s", r.elapsed.Round(time.Millisecond))
	if m := mode(t, filepath.Join(b.root, "etc/chef/client.pem")); m.Perm() != 0o600 {
		t.Errorf("client.pem mode %v", m)
	}
	clientPEM := mustRead(t, filepath.Join(b.root, "etc/chef/client.pem"))
	scanFor("chef client key", strings.Split(strings.TrimSpace(clientPEM), "\n")[5])
	for _, dir := range []string{b.root, b.state} {
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() && fi.Size() < 1<<20 {
				if data, _ := os.ReadFile(p); strings.Contains(string(data), strings.Split(string(validator), "\n")[5]) {
					t.Errorf("the validator key is in %s", p)
				}
			}
			return nil
		})
	}
	if got := mustRead(t, filepath.Join(b.root, "var/log/chef-client-stand-in")); got != "-c /etc/chef/client.rb -j /etc/chef/first-boot.json -E production --no-color CHEF_LICENSE=accept\n" {
		t.Errorf("chef-client stand-in ran with %q", got)
	}
	u, _ := url.Parse(serverURL)
	admin, err := config.ParseRSAKey([]byte(mustRead(t, filepath.Join(conf, "admin.pem"))))
	if err != nil {
		t.Fatal(err)
	}
	srv := &chef.Server{URL: u, HTTP: &http.Client{}, Deadline: 10 * time.Second}
	var node struct {
		RunList []string `json:"run_list"`
		Env     string   `json:"chef_environment"`
	}
	if err := srv.Do(ctx, chef.Signer{UserID: "admin", Key: admin}, "GET", "/nodes/"+id, nil, &node); err != nil {
		t.Fatal(err)
	}
	if strings.Join(node.RunList, ",") != "recipe[base],role[web]" || node.Env != "production" {
		t.Errorf("node on the server: %+v", node)
	}
	logLine(t, r.stderr, "chef client created")

	// Second run: every chef step is done for this instance; no request.
	r = b.run(t, "run")
	if r.code != 0 {
		t.Fatalf("second run: %s", r)
	}
	if strings.Contains(r.stderr, "chef server requests") {
		t.Errorf("second run talked to the Chef server:\n%s", r.stderr)
	}
	if got := mustRead(t, filepath.Join(b.root, "var/log/chef-client-stand-in")); strings.Count(got, "\n") != 1 {
		t.Errorf("chef-client ran again: %q", got)
	}

	// Another instance given the same node name.
	other := newBed(t, testbed.IMDSConfig{InstanceID: "i-0c4ef000000000002", UserData: userData(s3.URL, chefYAML+"  node_name: "+id+"\n")})
	other.root = imageRoot(t)
	os.WriteFile(filepath.Join(other.root, "usr/bin/chef-client"), []byte(standIn), 0o755)
	r = other.run(t, "run")
	if r.code != 1 || !strings.Contains(r.stderr, "knife node delete "+id+" && knife client delete "+id) || !strings.Contains(r.stderr, serverURL) {
		t.Errorf("reused node name: %s", r)
	}
}
