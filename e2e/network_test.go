//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestNetworkThroughTheBinary runs the static binary inside a guest network
// namespace the test makes (veth eth0..eth1, peers in a second namespace):
// the private_network adapter gets its address on eth1, the ifupdown file is
// written under the root, and eth0 — the primary — is left as it was.
func TestNetworkThroughTheBinary(t *testing.T) {
	needRoot(t)
	guest, peer := fmt.Sprintf("bsbin%d", os.Getpid()), fmt.Sprintf("bsbinp%d", os.Getpid())
	ip := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	ip("netns", "add", guest)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", guest).Run() })
	ip("netns", "add", peer)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", peer).Run() })
	for i := 0; i < 2; i++ {
		ip("link", "add", fmt.Sprintf("eth%d", i), "netns", guest, "type", "veth", "peer", "name", fmt.Sprintf("p%d", i), "netns", peer)
	}
	ip("-n", guest, "link", "set", "eth0", "up")
	ip("-n", guest, "addr", "add", "10.0.0.2/24", "dev", "eth0")
	ip("-n", guest, "route", "add", "default", "via", "10.0.0.1", "dev", "eth0")
	primary := func() string {
		return ip("-n", guest, "addr", "show", "eth0") + ip("-n", guest, "route", "show", "dev", "eth0")
	}
	eth0Before := primary()

	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/network"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/network/interfaces"), []byte("auto lo\niface lo inet loopback\n"), 0o644)
	cfg := writeConfig(t, "network:\n  hostname: web1.example.internal\n  renderer: ifupdown\n  adapters:\n    - kind: private_network\n      ip: 192.168.56.10\n")
	state := t.TempDir()
	run := func() result {
		b := &bed{}
		return b.runProgram(t, "ip", "netns", "exec", guest, bin, "run", "--datasource", "none", "--config", cfg, "--root", root, "--state-dir", state)
	}
	r := run()
	if r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	if got := ip("-n", guest, "addr", "show", "eth1"); !strings.Contains(got, "192.168.56.10/24") {
		t.Errorf("eth1 lacks its address:\n%s", got)
	}
	if after := primary(); after != eth0Before {
		t.Errorf("eth0 changed:\nbefore\n%s\nafter\n%s", eth0Before, after)
	}
	interfaces := mustRead(t, filepath.Join(root, "etc/network/interfaces"))
	if !strings.HasPrefix(interfaces, "auto lo\niface lo inet loopback\n") || !strings.Contains(interfaces, "192.168.56.10") {
		t.Errorf("interfaces:\n%s", interfaces)
	}
	if got := mustRead(t, filepath.Join(root, "etc/hostname")); got != "web1\n" {
		t.Errorf("/etc/hostname = %q", got)
	}
	// A reboot: nothing changes.
	before := ip("-n", guest, "addr") + interfaces
	if r := run(); r.code != 0 {
		t.Fatalf("rerun: %s", r)
	}
	if after := ip("-n", guest, "addr") + mustRead(t, filepath.Join(root, "etc/network/interfaces")); after != before {
		t.Errorf("a rerun changed something:\n%s\n---\n%s", before, after)
	}
}
