//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"github.com/opsboot/bootstrap/internal/testbed"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// twoAdapters configures eth1 by index and eth2 by MAC (listed first, so
// order does not decide), with a default route through eth2.
const twoAdapters = `network:
  renderer: %s
  adapters:
    - {kind: public_network, ip: 10.2.0.5, gateway: 10.2.0.1, mac: '02:00:00:00:00:12'}
    - {kind: private_network, ip: 10.1.0.5, netmask: '24', adapter: 1}
`

// oneAdapter is twoAdapters after the public network was removed.
const oneAdapter = `network:
  renderer: %s
  adapters:
    - {kind: private_network, ip: 10.1.0.5, netmask: '24', adapter: 1}
`

// stackCheck runs the stack's own parser on what bootstrap wrote under
// root and returns its complaint, or "".
type stackCheck func(t *testing.T, root string) string

func runTool(stdin string, argv ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// ourFiles lists the files bootstrap wrote under root (its marker line).
func ourFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "# Written by bootstrap from network.adapters") {
				out = append(out, strings.TrimPrefix(p, root))
			}
		}
		return nil
	})
	sort.Strings(out)
	return out
}

// TestNetworkStacksThroughTheBinary runs `bootstrap run` in a guest
// namespace for each stack whose real tool Debian has, and has that tool
// read what was written: netplan generate --root-dir, nmcli --offline,
// systemd-networkd's own parser, ifup --no-act. (Debian has no ifcfg
// tool: that renderer is checked by its goldens only.) Then a rerun changes nothing, and a rerun without the
// second adapter removes what was written for it. The durations of the
// first run and of the rerun are logged (go test -v).
func TestNetworkStacksThroughTheBinary(t *testing.T) {
	cases := []struct {
		renderer string
		// files written for two adapters, then for one
		two, one []string
		check    stackCheck
	}{
		{
			renderer: "netplan",
			two:      []string{"/etc/netplan/60-bootstrap.yaml"},
			one:      []string{"/etc/netplan/60-bootstrap.yaml"},
			check: func(t *testing.T, root string) string {
				netplan := testbed.Need(t, "netplan")
				os.RemoveAll(filepath.Join(root, "run/systemd/network"))
				if out, err := runTool("", netplan, "generate", "--root-dir", root); err != nil || strings.Contains(out, "WARNING") {
					return fmt.Sprintf("netplan generate: %v\n%s", err, out)
				}
				units, _ := filepath.Glob(filepath.Join(root, "run/systemd/network/10-netplan-*.network"))
				n := strings.Count(mustRead(t, filepath.Join(root, "etc/netplan/60-bootstrap.yaml")), "addresses:")
				if len(units) != n || n == 0 {
					return fmt.Sprintf("netplan generated %v for %d adapters", units, n)
				}
				return ""
			},
		},
		{
			renderer: "networkmanager",
			two: []string{"/etc/NetworkManager/system-connections/bootstrap-eth1.nmconnection",
				"/etc/NetworkManager/system-connections/bootstrap-eth2.nmconnection"},
			one: []string{"/etc/NetworkManager/system-connections/bootstrap-eth1.nmconnection"},
			check: func(t *testing.T, root string) string {
				nmcli := testbed.Need(t, "nmcli")
				for _, f := range ourFiles(t, root) {
					if out, err := runTool(mustRead(t, filepath.Join(root, f)), nmcli, "--offline", "connection", "modify", "connection.autoconnect", "yes"); err != nil {
						return fmt.Sprintf("nmcli --offline on %s: %v\n%s", f, err, out)
					}
				}
				return ""
			},
		},
		{
			renderer: "networkd",
			two:      []string{"/etc/systemd/network/50-bootstrap-eth1.network", "/etc/systemd/network/50-bootstrap-eth2.network"},
			one:      []string{"/etc/systemd/network/50-bootstrap-eth1.network"},
			check:    networkdParses,
		},
		{
			renderer: "ifupdown",
			two:      []string{"/etc/network/interfaces"},
			one:      []string{"/etc/network/interfaces"},
			check: func(t *testing.T, root string) string {
				ifup := testbed.Need(t, "ifup")
				p := filepath.Join(root, "etc/network/interfaces")
				for _, dev := range []string{"eth1", "eth2"} {
					if !strings.Contains(mustRead(t, p), "iface "+dev) {
						continue
					}
					if out, err := runTool("", ifup, "--no-act", "-i", p, "--state-dir", t.TempDir(), dev); err != nil {
						return fmt.Sprintf("ifup --no-act %s: %v\n%s", dev, err, out)
					}
				}
				return ""
			},
		},
	}
	for _, c := range cases {
		t.Run(c.renderer, func(t *testing.T) {
			g := newNetGuest(t)
			root := t.TempDir()
			os.MkdirAll(filepath.Join(root, "etc/network"), 0o755)
			os.WriteFile(filepath.Join(root, "etc/network/interfaces"), []byte("auto lo\niface lo inet loopback\n"), 0o644)
			state := t.TempDir()
			run := func(cfg string) result {
				t.Helper()
				b := &bed{}
				r := b.runProgram(t, nil, "ip", "netns", "exec", g.ns, bin, "run", "--datasource", "none",
					"--config", writeConfig(t, fmt.Sprintf(cfg, c.renderer)), "--root", root, "--state-dir", state)
				if r.code != 0 {
					t.Fatalf("run: %s", r)
				}
				return r
			}
			eth0 := g.primary()
			first := run(twoAdapters)
			if got := ourFiles(t, root); strings.Join(got, " ") != strings.Join(c.two, " ") {
				t.Errorf("files written: %v, want %v", got, c.two)
			}
			if msg := c.check(t, root); msg != "" {
				t.Error(msg)
			}
			for dev, want := range map[string]string{"eth1": "10.1.0.5/24", "eth2": "10.2.0.5/24"} {
				if got := g.ip("-n", g.ns, "addr", "show", dev); !strings.Contains(got, want) {
					t.Errorf("%s lacks %s:\n%s", dev, want, got)
				}
			}
			if got := g.ip("-n", g.ns, "route", "show", "default"); !strings.Contains(got, "default via 10.2.0.1 dev eth2") {
				t.Errorf("no default route through eth2:\n%s", got)
			}
			if after := g.primary(); after != eth0 {
				t.Errorf("eth0 changed:\nbefore\n%s\nafter\n%s", eth0, after)
			}

			before := treeState(t, root) + g.addrs() + g.ip("-n", g.ns, "route")
			rerun := run(twoAdapters)
			if after := treeState(t, root) + g.addrs() + g.ip("-n", g.ns, "route"); after != before {
				t.Errorf("a rerun changed something:\n%s\n---\n%s", before, after)
			}
			if strings.Contains(rerun.stderr, "network changed") {
				t.Errorf("a rerun logged changes:\n%s", rerun.stderr)
			}
			t.Logf("%s: run configuring two adapters %s, rerun changing nothing %s",
				c.renderer, first.elapsed.Round(time.Millisecond), rerun.elapsed.Round(time.Millisecond))

			run(oneAdapter)
			if got := ourFiles(t, root); strings.Join(got, " ") != strings.Join(c.one, " ") {
				t.Errorf("after removing the adapter: files %v, want %v", got, c.one)
			}
			for _, f := range c.one {
				if s := mustRead(t, filepath.Join(root, f)); strings.Contains(s, "10.2.0.5") || strings.Contains(s, "02:00:00:00:00:12") {
					t.Errorf("%s still configures the removed adapter:\n%s", f, s)
				}
			}
			if msg := c.check(t, root); msg != "" {
				t.Errorf("after removing the adapter: %s", msg)
			}
		})
	}
}

// treeState is every file under root with its mode, mtime and content.
func treeState(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() && !strings.Contains(p, "/run/") {
			c, _ := os.ReadFile(p)
			fmt.Fprintf(&b, "%s %s %s\n%s\n", strings.TrimPrefix(p, root), fi.Mode(), fi.ModTime(), c)
		}
		return nil
	})
	return b.String()
}

// TestNetworkBadInputThroughTheBinary: each invalid network section exits
// 2 with a message naming the adapter entry and field, and nothing is
// written under the root nor changed in the guest.
func TestNetworkBadInputThroughTheBinary(t *testing.T) {
	g := newNetGuest(t)
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc/network"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/network/interfaces"), []byte("auto lo\niface lo inet loopback\n"), 0o644)
	tests := []struct {
		name, adapters string
		want           []string
	}{
		{"overlapping subnets", "{kind: private_network, ip: 10.1.0.5}\n    - {kind: private_network, ip: 10.1.0.9, netmask: 255.255.0.0}",
			[]string{"network.adapters[1].ip:", "overlaps", "network.adapters[0]"}},
		{"gateway outside the subnet", "{kind: public_network, ip: 10.1.0.5, gateway: 10.9.0.1}",
			[]string{"network.adapters[0].gateway:"}},
		{"non-contiguous netmask", "{kind: private_network, ip: 10.1.0.5, netmask: 255.0.255.0}",
			[]string{"network.adapters[0].netmask:"}},
		{"adapter 0", "{kind: private_network, ip: 10.1.0.5, adapter: 0}",
			[]string{"network.adapters[0].adapter:"}},
		{"two adapters on one device by index", "{kind: private_network, ip: 10.1.0.5, adapter: 1}\n    - {kind: private_network, ip: 10.2.0.5, adapter: 1}",
			[]string{"network.adapters[1].adapter:", "network.adapters[0]"}},
		{"two adapters on one device by MAC", "{kind: private_network, ip: 10.1.0.5, mac: '02:00:00:00:00:11'}\n    - {kind: private_network, ip: 10.2.0.5, mac: '020000000011'}",
			[]string{"network.adapters[1].mac:", "network.adapters[0]"}},
		{"unknown kind", "{kind: internal_network, ip: 10.1.0.5}",
			[]string{"network.adapters[0].kind:", "internal_network"}},
		{"unknown type", "{kind: private_network, type: bootp, ip: 10.1.0.5}",
			[]string{"network.adapters[0].type:", "bootp"}},
		{"no such device by index", "{kind: private_network, ip: 10.1.0.5, adapter: 7}",
			[]string{"network.adapters[0].adapter:", "eth1", "eth2"}},
		{"no such device by MAC", "{kind: private_network, ip: 10.1.0.5, mac: '02:00:00:00:00:99'}",
			[]string{"network.adapters[0].mac:", "02:00:00:00:00:99"}},
	}
	guest := func() string { return g.addrs() + g.ip("-n", g.ns, "route") }
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before, live := treeState(t, root), guest()
			cfg := writeConfig(t, "network:\n  hostname: web1\n  renderer: ifupdown\n  adapters:\n    - "+tt.adapters+"\n")
			r := (&bed{}).runProgram(t, nil, "ip", "netns", "exec", g.ns, bin, "run", "--datasource", "none",
				"--config", cfg, "--root", root, "--state-dir", t.TempDir())
			if r.code != 2 {
				t.Fatalf("exit %d, want 2: %s", r.code, r)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("the error lacks %q:\n%s", w, r.stderr)
				}
			}
			if after := treeState(t, root); after != before {
				t.Errorf("the root changed:\n%s\n---\n%s", before, after)
			}
			if after := guest(); after != live {
				t.Errorf("the guest changed:\n%s\n---\n%s", live, after)
			}
		})
	}
}

// networkdParses runs systemd-networkd itself for a moment, in an empty
// network namespace and a mount namespace where /etc/systemd/network
// holds only our files and a control file with a bad key, and returns
// its complaints about our files.
func networkdParses(t *testing.T, root string) string {
	networkd := "/lib/systemd/systemd-networkd"
	if _, err := os.Stat(networkd); err != nil {
		testbed.Need(t, networkd)
	}
	src := t.TempDir()
	for _, f := range ourFiles(t, root) {
		os.WriteFile(filepath.Join(src, filepath.Base(f)), []byte(mustRead(t, filepath.Join(root, f))), 0o644)
	}
	os.WriteFile(filepath.Join(src, "99-control.network"), []byte("[Match]\nName=eth9\n[Network]\nAddres=10.0.0.1/24\n"), 0o644)
	ns := fmt.Sprintf("bsnd%d", os.Getpid())
	if out, err := runTool("", "ip", "netns", "add", ns); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	defer runTool("", "ip", "netns", "del", ns)
	script := `set -e
mount -t tmpfs none /etc/systemd/network
cp "$1"/* /etc/systemd/network/
mount -t tmpfs none /run/systemd
mkdir -p /run/systemd/netif
chown systemd-network /run/systemd/netif 2>/dev/null || true
timeout 3 "$2" || true`
	out, _ := runTool("", "ip", "netns", "exec", ns, "unshare", "-m", "sh", "-c", script, "sh", src, networkd)
	if !strings.Contains(out, "99-control.network:4: Unknown key") {
		return "networkd did not report the control file's bad key, so this check proves nothing:\n" + out
	}
	var bad []string
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "bootstrap-") {
			bad = append(bad, line)
		}
	}
	if len(bad) > 0 {
		return "networkd: " + strings.Join(bad, "\n")
	}
	return ""
}
