//go:build e2e

package netsetup

import (
	"context"
	"github.com/opsboot/bootstrap/internal/testbed"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// privateHost runs the capability with --root / in the guest namespace
// and a private mount namespace whose /etc/network, /run, /var/lib/dhcp
// and /etc/resolv.conf are the test's directories (kept across runs):
// ifupdown's reload (ifdown/ifup DEV, dhclient) then runs for real without
// touching this machine's files.
const privateHost = `set -e
mount --bind "$1" /etc/network
mount --bind "$2" /run
mount --bind "$3" /var/lib/dhcp
mount --bind "$4" /etc/resolv.conf
exec "$5"`

const dhcpConfig = `network:
  renderer: ifupdown
  adapters:
    - {kind: private_network, type: dhcp, ip: 10.1.0.1}
    - {kind: public_network, use_dhcp_assigned_default_route: true}
`

// TestDHCPThroughIfupdown: with dnsmasq serving both extra adapters, the
// per-device reload leases an address on each; the private network's
// default route is dropped and the public one's kept behind the primary's;
// eth0 is unchanged and a rerun reloads nothing.
func TestDHCPThroughIfupdown(t *testing.T) {
	for _, p := range []string{"dnsmasq", "dhclient", "ifup", "unshare"} {
		testbed.Need(t, p)
	}
	g := newGuest(t)
	t.Cleanup(func() { g.killAll() })
	leases := filepath.Join(t.TempDir(), "leases")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dnsmasq := exec.CommandContext(ctx, "ip", "netns", "exec", g.peer, "dnsmasq", "--no-daemon", "--port=0", "--no-resolv", "--no-hosts",
		"--bind-interfaces", "--interface=p1", "--interface=p2", "--except-interface=lo",
		"--dhcp-range=10.1.0.50,10.1.0.60,255.255.255.0,1h", "--dhcp-range=10.2.0.50,10.2.0.60,255.255.255.0,1h",
		"--dhcp-leasefile="+leases, "--pid-file=")
	if err := dnsmasq.Start(); err != nil {
		t.Fatal(err)
	}
	defer dnsmasq.Process.Signal(syscall.SIGTERM)

	cfg := filepath.Join(t.TempDir(), "net.yaml")
	os.WriteFile(cfg, []byte(dhcpConfig), 0o644)
	etcNetwork, run, dhcpState := t.TempDir(), t.TempDir(), t.TempDir()
	for _, d := range []string{"if-pre-up.d", "if-up.d", "if-down.d", "if-post-down.d"} {
		os.Mkdir(filepath.Join(etcNetwork, d), 0o755)
	}
	os.WriteFile(filepath.Join(etcNetwork, "interfaces"), []byte("auto lo\niface lo inet loopback\n"), 0o644)
	os.Mkdir(filepath.Join(run, "network"), 0o755)
	os.WriteFile(filepath.Join(run, "network/ifstate"), nil, 0o644)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	os.WriteFile(resolv, nil, 0o644)
	eth0 := g.state("eth0")
	runHost := func() (string, int) {
		cctx, ccancel := context.WithTimeout(ctx, 90*time.Second)
		defer ccancel()
		cmd := exec.CommandContext(cctx, "ip", "netns", "exec", g.ns, "unshare", "-m", "sh", "-c", privateHost, "sh", etcNetwork, run, dhcpState, resolv, os.Args[0])
		cmd.Env = append(os.Environ(), childEnv+"="+cfg+" /")
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	out, code := runHost()
	if code != 0 {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "then, when its file changed: ifdown --force eth1; ifup eth1") {
		t.Errorf("the plan does not name the per-device reload:\n%s", out)
	}
	eth1, eth2 := g.state("eth1"), g.state("eth2")
	leased := regexp.MustCompile(` 10\.[12]\.0\.(5\d|60)/24`)
	if len(leased.FindAllString(eth1+eth2, -1)) != 2 {
		t.Fatalf("no leases:\neth1 %s\neth2 %s\n%s", eth1, eth2, out)
	}
	defaults := g.ip("-n", g.ns, "-4", "route", "show", "default")
	want := "default via 10.0.0.1 dev eth0 \ndefault via 10.2.0.1 dev eth2 metric 2002 \n"
	if defaults != want {
		t.Errorf("default routes:\n%s\nwant\n%s", defaults, want)
	}
	if after := g.state("eth0"); after != eth0 {
		t.Errorf("eth0 changed:\n%s\n%s", eth0, after)
	}

	out, code = runHost()
	if code != 0 || strings.Contains(out, "command=ifup") || strings.Contains(out, "file written") || strings.Contains(out, "network changed") {
		t.Errorf("rerun: exit %d, reloaded or wrote:\n%s", code, out)
	}
}

// killAll ends the processes left in the guest namespace (the dhclients
// ifup started), before the namespace goes.
func (g *guest) killAll() {
	out, _ := run(g.t, nil, "ip", "netns", "pids", g.ns)
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid > 1 {
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
}
