//go:build e2e

package netsetup

import (
	"bytes"
	"context"
	"fmt"
	"github.com/opsboot/bootstrap/internal/testbed"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func run(t *testing.T, stdin []byte, argv ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func renderFor(t *testing.T, name string, ifs []Iface) []File {
	t.Helper()
	read := func(p string) ([]byte, error) {
		if p == interfacesPath {
			return []byte(debianInterfaces), nil
		}
		return nil, fs.ErrNotExist
	}
	files, err := renderers[name].Render(ifs, stackFor(name), read)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestNetplanGenerateAcceptsOurYAML: netplan's own generator reads our
// file (mode 0600, or it warns) and writes networkd units for it.
func TestNetplanGenerateAcceptsOurYAML(t *testing.T) {
	netplanBin := testbed.Need(t, "netplan")
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeAll(t, dir, renderFor(t, "netplan", c.ifs))
			out, err := run(t, nil, netplanBin, "generate", "--root-dir", dir)
			if err != nil || strings.TrimSpace(out) != "" {
				t.Fatalf("netplan generate: %v\n%s", err, out)
			}
			units, _ := filepath.Glob(filepath.Join(dir, "run/systemd/network/10-netplan-*.network"))
			if len(units) != len(c.ifs) {
				t.Fatalf("netplan generated %v for %d adapters", units, len(c.ifs))
			}
		})
	}
	t.Run("a broken file fails (the check can fail)", func(t *testing.T) {
		dir := t.TempDir()
		writeAll(t, dir, []File{{Path: netplanPath, Mode: 0o600, Content: []byte("network:\n  version: 2\n  ethernets:\n    eth1:\n      addresses: [300.1.1.1/24]\n")}})
		if out, err := run(t, nil, netplanBin, "generate", "--root-dir", dir); err == nil {
			t.Fatalf("netplan generate accepted a bad address:\n%s", out)
		}
	})
}

// TestIfupNoActAcceptsOurBlock: ifup parses the whole interfaces file (the
// operator's stanzas and our block) and prints what it would run.
func TestIfupNoActAcceptsOurBlock(t *testing.T) {
	ifup := testbed.Need(t, "ifup")
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			files := renderFor(t, "ifupdown", c.ifs)
			p := filepath.Join(dir, "interfaces")
			if err := os.WriteFile(p, files[0].Content, 0o644); err != nil {
				t.Fatal(err)
			}
			for _, f := range c.ifs {
				out, err := run(t, nil, ifup, "--no-act", "-i", p, "--state-dir", dir, f.Name)
				if err != nil {
					t.Fatalf("ifup --no-act %s: %v\n%s", f.Name, err, out)
				}
				want := "dhcp" // ifup --no-act names the DHCP client it would run, or that none is installed
				if !f.DHCP {
					want = f.Addr.Addr().String()
				}
				if !strings.Contains(strings.ToLower(out), want) {
					t.Errorf("ifup --no-act %s does not mention %s:\n%s", f.Name, want, out)
				}
			}
		})
	}
	t.Run("a broken stanza fails (the check can fail)", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "interfaces")
		os.WriteFile(p, []byte("auto eth1\niface eth1 inet statik\n    address 10.0.0.1/24\n"), 0o644)
		if out, err := run(t, nil, ifup, "--no-act", "-i", p, "--state-dir", dir, "eth1"); err == nil {
			t.Fatalf("ifup accepted an unknown method:\n%s", out)
		}
	})
}

// TestNMKeyfileParser: nmcli --offline (NetworkManager ≥ 1.40) reads a
// keyfile on stdin with NetworkManager's own parser and validator.
func TestNMKeyfileParser(t *testing.T) {
	nmcli := testbed.Need(t, "nmcli")
	check := func(content []byte) (string, error) {
		return run(t, content, nmcli, "--offline", "connection", "modify", "connection.autoconnect", "yes")
	}
	for _, c := range renderCases {
		t.Run(c.name, func(t *testing.T) {
			for _, f := range renderFor(t, "networkmanager", c.ifs) {
				out, err := check(f.Content)
				if err != nil {
					t.Fatalf("%s: %v\n%s", f.Path, err, out)
				}
				id := strings.TrimSuffix(filepath.Base(f.Path), ".nmconnection")
				if !strings.Contains(out, "uuid="+uuid5(id)) {
					t.Errorf("%s: NetworkManager changed the uuid:\n%s", f.Path, out)
				}
			}
		})
	}
	t.Run("a broken keyfile fails (the check can fail)", func(t *testing.T) {
		if out, err := check([]byte("[connection]\nid=x\ntype=ethernet\n[ipv4]\nmethod=manual\naddress1=300.1.1.1/24\n")); err == nil {
			t.Fatalf("nmcli accepted a bad address:\n%s", out)
		}
	})
}

// TestNetworkdParsesOurFiles runs systemd-networkd itself for a moment in
// a network namespace of its own, with our files on a private tmpfs over
// /etc/systemd/network, and reads its parse warnings.
func TestNetworkdParsesOurFiles(t *testing.T) {
	ip := testbed.Need(t, "ip")
	testbed.Need(t, "unshare")
	networkdBin := "/lib/systemd/systemd-networkd"
	if _, err := os.Stat(networkdBin); err != nil {
		testbed.Need(t, networkdBin)
	}
	var all []File
	for _, c := range renderCases {
		all = append(all, renderFor(t, "networkd", c.ifs)...)
	}
	src := t.TempDir()
	for i, f := range all {
		// Cases reuse device names: number the files apart.
		name := fmt.Sprintf("%02d-%s", i, filepath.Base(f.Path))
		os.WriteFile(filepath.Join(src, name), f.Content, 0o644)
	}
	os.WriteFile(filepath.Join(src, "99-control.network"), []byte("[Match]\nName=eth9\n[Network]\nAddres=10.0.0.1/24\n"), 0o644)

	ns := fmt.Sprintf("bsnd%d", os.Getpid())
	if out, err := run(t, nil, ip, "netns", "add", ns); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { run(t, nil, ip, "netns", "del", ns) })
	script := `set -e
mount -t tmpfs none /etc/systemd/network
cp "$1"/* /etc/systemd/network/
mount -t tmpfs none /run/systemd
mkdir -p /run/systemd/netif
chown systemd-network /run/systemd/netif 2>/dev/null || true
timeout 3 "$2" || true`
	out, _ := run(t, nil, ip, "netns", "exec", ns, "unshare", "-m", "sh", "-c", script, "sh", src, networkdBin)
	if !strings.Contains(out, "99-control.network:4: Unknown key") {
		t.Fatalf("networkd did not report the control file's bad key, so this check proves nothing:\n%s", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "bootstrap-") {
			t.Errorf("networkd: %s", line)
		}
	}
}
