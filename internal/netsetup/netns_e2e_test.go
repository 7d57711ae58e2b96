//go:build e2e

package netsetup

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/opsboot/bootstrap/internal/testbed"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

// childEnv makes the test binary a one-shot run of the capability (plan,
// then apply) with the real netlink, for the parent to start under
// `ip netns exec`: "CONFIG ROOT".
const childEnv = "BOOTSTRAP_NETSETUP_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(eniEnv); spec != "" {
		os.Exit(eniChild(spec))
	}
	if spec := os.Getenv(childEnv); spec != "" {
		cfgPath, rootDir, _ := strings.Cut(spec, " ")
		os.Exit(child(cfgPath, rootDir))
	}
	os.Exit(m.Run())
}

func child(cfgPath, rootDir string) int {
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	fail := func(err error) int {
		fmt.Println("ERROR", err)
		if badinput.Is(err) {
			return 2
		}
		return 1
	}
	src, err := os.ReadFile(cfgPath)
	if err != nil {
		return fail(err)
	}
	l, err := config.ParseLayer("net.yaml", src)
	if err != nil {
		return fail(badinput.Wrap(err))
	}
	merged, err := config.Merge([]*config.Layer{l})
	if err != nil {
		return fail(badinput.Wrap(err))
	}
	cfg, err := merged.Decode(map[string]string{"instance_id": "i-e2e"})
	if err != nil {
		return fail(badinput.Wrap(err))
	}
	root, err := rootfs.Open(rootDir)
	if err != nil {
		return fail(err)
	}
	red := &secret.Redactor{}
	in := &capability.Input{Config: cfg, Redactor: red, Log: log, Root: root, Scratch: os.TempDir()}
	steps, err := Network{}.Steps(context.Background(), in)
	if err != nil {
		return fail(err)
	}
	(&plan.Plan{Instance: "i-e2e", Datasource: "none", Steps: steps}).Write(os.Stdout)
	env := &plan.Env{Root: root, Log: log, Redactor: red, Scratch: os.TempDir()}
	for _, s := range steps {
		for _, a := range s.Actions {
			if err := a.Apply(context.Background(), env); err != nil {
				return fail(err)
			}
		}
	}
	return 0
}

type guest struct {
	t        *testing.T
	ns, peer string
}

func (g *guest) ip(args ...string) string {
	g.t.Helper()
	out, err := run(g.t, nil, append([]string{"ip"}, args...)...)
	if err != nil {
		g.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// newGuest makes a guest namespace with eth0..eth2, veth pairs whose peers
// (p0..p2) are in a peer namespace; eth0 is the primary with an address
// and a default route, as the NAT adapter would have.
func newGuest(t *testing.T) *guest {
	testbed.Need(t, "ip")
	testbed.Need(t, "ping")
	g := &guest{t: t, ns: fmt.Sprintf("bsg%d", os.Getpid()), peer: fmt.Sprintf("bsp%d", os.Getpid())}
	g.ip("netns", "add", g.ns)
	t.Cleanup(func() { run(t, nil, "ip", "netns", "del", g.ns) })
	g.ip("netns", "add", g.peer)
	t.Cleanup(func() { run(t, nil, "ip", "netns", "del", g.peer) })
	for i := 0; i < 3; i++ {
		g.ip("link", "add", fmt.Sprintf("eth%d", i), "netns", g.ns, "address", fmt.Sprintf("02:00:00:00:00:1%d", i),
			"type", "veth", "peer", "name", fmt.Sprintf("p%d", i), "netns", g.peer)
		g.ip("-n", g.peer, "link", "set", fmt.Sprintf("p%d", i), "up")
	}
	g.ip("-n", g.peer, "addr", "add", "10.0.0.1/24", "dev", "p0")
	g.ip("-n", g.peer, "addr", "add", "10.1.0.1/24", "dev", "p1")
	g.ip("-n", g.peer, "addr", "add", "10.2.0.1/24", "dev", "p2")
	g.ip("-n", g.ns, "link", "set", "lo", "up")
	g.ip("-n", g.ns, "link", "set", "eth0", "up")
	g.ip("-n", g.ns, "addr", "add", "10.0.0.2/24", "dev", "eth0")
	g.ip("-n", g.ns, "route", "add", "default", "via", "10.0.0.1", "dev", "eth0")
	return g
}

// state is what `ip` shows of a device: link flags, addresses, routes.
func (g *guest) state(dev string) string {
	var links []struct {
		Flags     []string `json:"flags"`
		Operstate string   `json:"operstate"`
		Address   string   `json:"address"`
		AddrInfo  []struct {
			Local     string `json:"local"`
			Prefixlen int    `json:"prefixlen"`
			Scope     string `json:"scope"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(g.ip("-n", g.ns, "-j", "addr", "show", "dev", dev)), &links); err != nil || len(links) != 1 {
		g.t.Fatalf("ip addr show %s: %v", dev, err)
	}
	var b strings.Builder
	l := links[0]
	fmt.Fprintf(&b, "%s %s %v", l.Address, l.Operstate, l.Flags)
	for _, a := range l.AddrInfo {
		if a.Scope != "link" {
			fmt.Fprintf(&b, " %s/%d", a.Local, a.Prefixlen)
		}
	}
	b.WriteString("\n" + g.ip("-n", g.ns, "-4", "route", "show", "dev", dev) + g.ip("-n", g.ns, "-6", "route", "show", "dev", dev))
	return b.String()
}

// runBootstrap runs the capability in the guest namespace; it returns the
// output, the exit status and how long it took.
func (g *guest) runBootstrap(cfg, root string) (string, int, time.Duration) {
	g.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", g.ns, os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"="+cfg+" "+root)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	took := time.Since(start)
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		g.t.Fatal(err)
	}
	return string(out), code, took
}

const netnsConfig = `network:
  adapters:
    # given by MAC: found on eth2 although it is listed first
    - {kind: public_network, ip: 10.2.0.5, gateway: 10.2.0.1, mac: '02:00:00:00:00:12'}
    - {kind: private_network, ip: %s, netmask: '24', adapter: 1}
`

func TestLiveInGuestNamespace(t *testing.T) {
	g := newGuest(t)
	root := debianRoot(t)
	cfg := filepath.Join(t.TempDir(), "net.yaml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(netnsConfig, "10.1.0.5")), 0o644)
	eth0Before := g.state("eth0")

	// The primary keeps answering while the run happens.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ping := exec.CommandContext(ctx, "ip", "netns", "exec", g.peer, "ping", "-n", "-i", "0.05", "-c", "40", "-W", "1", "10.0.0.2")
	var pingOut bytes.Buffer
	ping.Stdout, ping.Stderr = &pingOut, &pingOut
	if err := ping.Start(); err != nil {
		t.Fatal(err)
	}

	out, code, first := g.runBootstrap(cfg, root)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s", code, out)
	}
	if err := ping.Wait(); err != nil || !strings.Contains(pingOut.String(), " 0% packet loss") {
		t.Errorf("ping over eth0 during the run: %v\n%s", err, pingOut.String())
	}
	for _, want := range []string{
		"configure eth2 (network.adapters[0] → eth2 because has MAC 02:00:00:00:00:12",
		"configure eth1 (network.adapters[1] → eth1 because adapter 1: index 1 of [eth0 eth1 eth2]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan does not say %q:\n%s", want, out)
		}
	}
	if after := g.state("eth0"); after != eth0Before {
		t.Errorf("eth0 changed:\nbefore %s\nafter  %s", eth0Before, after)
	}
	eth1, eth2 := g.state("eth1"), g.state("eth2")
	if !strings.Contains(eth1, " 10.1.0.5/24") || !strings.Contains(eth1, "UP") {
		t.Errorf("eth1: %s", eth1)
	}
	if !strings.Contains(eth2, " 10.2.0.5/24") || !strings.Contains(eth2, "default via 10.2.0.1 metric 2001") {
		t.Errorf("eth2: %s", eth2)
	}
	if out, err := run(t, nil, "ip", "netns", "exec", g.ns, "ping", "-n", "-c", "1", "-W", "2", "10.1.0.1"); err != nil {
		t.Errorf("ping over eth1: %v\n%s", err, out)
	}
	interfaces, _ := os.ReadFile(filepath.Join(root, interfacesPath))
	if !strings.HasPrefix(string(interfaces), debianInterfaces) || !strings.Contains(string(interfaces), "iface eth1 inet static") {
		t.Errorf("/etc/network/interfaces:\n%s", interfaces)
	}

	// A second run changes nothing.
	files := snapshot(t, root)
	state := g.state("eth0") + g.state("eth1") + g.state("eth2")
	out, code, rerun := g.runBootstrap(cfg, root)
	if code != 0 || strings.Contains(out, "network changed") || strings.Contains(out, "file written") {
		t.Errorf("rerun: exit %d, changed something:\n%s", code, out)
	}
	if !equalMaps(files, snapshot(t, root)) || state != g.state("eth0")+g.state("eth1")+g.state("eth2") {
		t.Errorf("rerun changed files or devices")
	}
	t.Logf("first run (two adapters): %s; rerun changing nothing: %s", first.Round(time.Millisecond), rerun.Round(time.Millisecond))

	// A changed config converges: eth1's old address goes, also when the
	// new one is of the other family.
	for _, next := range []struct{ ip, want, gone string }{{"10.1.0.9", " 10.1.0.9/24", "10.1.0.5"}, {"'fd00:1::9'", " fd00:1::9/24", "10.1.0.9"}} {
		os.WriteFile(cfg, []byte(fmt.Sprintf(netnsConfig, next.ip)), 0o644)
		if out, code, _ := g.runBootstrap(cfg, root); code != 0 {
			t.Fatalf("changed run: exit %d\n%s", code, out)
		}
		eth1 := g.state("eth1")
		if !strings.Contains(eth1, next.want) || strings.Contains(eth1, next.gone) {
			t.Errorf("eth1 after the change to %s: %s", next.ip, eth1)
		}
	}
	if after := g.state("eth0"); after != eth0Before {
		t.Errorf("eth0 changed by the changed run:\n%s", after)
	}
}

// TestLiveBadInput: a device that does not exist is exit 2 naming the
// entry and field, and nothing is written or configured.
func TestLiveBadInput(t *testing.T) {
	g := newGuest(t)
	root := debianRoot(t)
	cfg := filepath.Join(t.TempDir(), "net.yaml")
	os.WriteFile(cfg, []byte("network:\n  adapters:\n    - {kind: private_network, ip: 10.1.0.5, adapter: 3}\n"), 0o644)
	files, state := snapshot(t, root), g.state("eth1")
	out, code, _ := g.runBootstrap(cfg, root)
	if code != 2 || !strings.Contains(out, "net.yaml:3:54: network.adapters[0].adapter: adapter 3: there is no such device; devices seen, in Vagrant's order: 0=eth0, 1=eth1, 2=eth2") {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	if !equalMaps(files, snapshot(t, root)) || g.state("eth1") != state {
		t.Error("bad input changed something")
	}
}
