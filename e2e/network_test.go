//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/testbed"
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
		return b.runProgram(t, nil, "ip", "netns", "exec", guest, bin, "run", "--datasource", "none", "--config", cfg, "--root", root, "--state-dir", state)
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
	before := strings.ReplaceAll(ip("-n", guest, "addr"), " tentative", "") + interfaces
	if r := run(); r.code != 0 {
		t.Fatalf("rerun: %s", r)
	}
	if after := strings.ReplaceAll(ip("-n", guest, "addr"), " tentative", "") + mustRead(t, filepath.Join(root, "etc/network/interfaces")); after != before {
		t.Errorf("a rerun changed something:\n%s\n---\n%s", before, after)
	}
}

// TestSecondaryENIsThroughTheBinary: the IMDS emulator (listening inside
// the guest namespace) describes two secondary ENIs; the static binary,
// run in the guest namespace, publishes their facts and gives each its
// addresses, a routing table and a rule per address, so a reply leaves by
// the ENI the request came in on. The IMDS request count is the spine's
// plus the ENI paths; a rerun changes nothing.
func TestSecondaryENIsThroughTheBinary(t *testing.T) {
	g := newNetGuest(t)
	// eth1 has the ENI's primary private address, as DHCP gives it: the
	// control shows replies leave by the primary's default route.
	g.ip("-n", g.ns, "link", "set", "eth1", "up")
	g.ip("-n", g.ns, "addr", "add", "10.1.0.10/24", "dev", "eth1")
	if dev := g.replyDevice("10.1.0.10"); dev != "eth0" {
		t.Fatalf("before: replies leave by %s; the control must show the primary's route", dev)
	}
	m := testbed.NewIMDS(testbed.IMDSConfig{InstanceID: "i-0e2e0000000e0001", MAC: "02:00:00:00:00:10", LocalIPv4: "10.0.0.2",
		UserData: []byte("#bootstrap-config\nnetwork: {}\nfiles:\n  - path: /etc/enis\n    content: \"${eni_macs}\\n\"\n"),
		ENIs: []testbed.ENI{
			{MAC: "02:00:00:00:00:11", DeviceNumber: "1", LocalIPv4s: []string{"10.1.0.10", "10.1.0.11"}, Subnet: "10.1.0.0/24"},
			{MAC: "02:00:00:00:00:12", DeviceNumber: "2", LocalIPv4s: []string{"10.2.0.10"}, Subnet: "10.2.0.0/24"},
		}})
	u, err := m.StartOn(g.listen())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	b := &bed{imds: m, url: u, root: t.TempDir(), state: t.TempDir(), env: []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + u}}
	eth0 := g.primary()
	run := func() (result, int) {
		before := m.RequestCount()
		r := b.runProgram(t, nil, "ip", "netns", "exec", g.ns, bin, "run", "--datasource", "ec2", "--root", b.root, "--state-dir", b.state, "--log-format", "json")
		if r.code != 0 {
			t.Fatalf("run: %s", r)
		}
		return r, m.RequestCount() - before
	}
	r, served := run()
	fin := logLine(t, r.stderr, "run finished")
	// The spine without S3 (token, identity document, mac, local-hostname,
	// user-data: 5), the ENI paths (the MAC list, 3 device-numbers,
	// local-ipv4s and subnet of the 2 secondaries: 8), and the role list
	// the engine asks before actions other than file writes, to mask the
	// role's credentials (none here: a 404).
	if n, _ := fin["imds_requests"].(float64); n != 14 || served != 14 {
		t.Errorf("imds_requests logged %v, emulator served %d: want both 14\n%v", n, served, m.Requests())
	}
	if got := mustRead(t, filepath.Join(b.root, "etc/enis")); got != "020000000010 020000000011 020000000012\n" {
		t.Errorf("${eni_macs} = %q", got)
	}
	rules := g.ip("-n", g.ns, "-4", "rule", "show")
	for _, want := range []string{"10001:\tfrom 10.1.0.10 lookup 10001", "10001:\tfrom 10.1.0.11 lookup 10001", "10002:\tfrom 10.2.0.10 lookup 10002"} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules lack %q:\n%s", want, rules)
		}
	}
	for table, want := range map[string]string{"10001": "default via 10.1.0.1 dev eth1", "10002": "default via 10.2.0.1 dev eth2"} {
		if got := g.ip("-n", g.ns, "-4", "route", "show", "table", table); !strings.Contains(got, want) {
			t.Errorf("table %s lacks %q:\n%s", table, want, got)
		}
	}
	for addr, want := range map[string]string{"10.1.0.11": "eth1", "10.2.0.10": "eth2"} {
		if dev := g.replyDevice(addr); dev != want {
			t.Errorf("replies to %s leave by %s, want %s", addr, dev, want)
		}
	}
	if after := g.primary(); after != eth0 {
		t.Errorf("eth0 changed:\nbefore\n%s\nafter\n%s", eth0, after)
	}
	state := g.addrs() + g.ip("-n", g.ns, "rule") + g.ip("-n", g.ns, "route", "show", "table", "all")
	r, _ = run()
	if strings.Contains(r.stderr, "network changed") {
		t.Errorf("rerun changed something:\n%s", r.stderr)
	}
	if after := g.addrs() + g.ip("-n", g.ns, "rule") + g.ip("-n", g.ns, "route", "show", "table", "all"); after != state {
		t.Errorf("a rerun changed the guest:\n%s\n---\n%s", state, after)
	}
}
