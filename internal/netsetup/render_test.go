package netsetup

import (
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/golden"
	"github.com/opsboot/bootstrap/internal/rootfs"
)

func static(entry int, dev, addr string) Iface {
	return Iface{Entry: entry, Name: dev, Addr: netip.MustParsePrefix(addr)}
}

// renderCases are the adapters of every golden case.
var renderCases = []struct {
	name string
	ifs  []Iface
}{
	// The dotted mask and the prefix reach the renderers as the same
	// prefix (config converts); both cases pin that the output is one.
	{"static4-dotted", []Iface{static(0, "eth1", "192.168.56.10/24")}},
	{"static4-prefix", []Iface{static(0, "eth1", "10.1.0.5/16")}},
	{"dhcp", []Iface{{Entry: 0, Name: "eth1", DHCP: true}}},
	{"static6", []Iface{static(0, "eth1", "fde4:8dba:82e1::c4/64")}},
	{"public-static-gateway", []Iface{func() Iface {
		f := static(0, "enp0s8", "192.168.1.20/24")
		f.Gate = netip.MustParseAddr("192.168.1.254")
		return f
	}()}},
	{"public-dhcp-default-route", []Iface{{Entry: 0, Name: "enp0s8", DHCP: true, KeepDHCPRoute: true}}},
	{"several", []Iface{
		static(0, "eth1", "192.168.56.10/24"),
		{Entry: 1, Name: "eth2", DHCP: true},
		func() Iface {
			f := static(2, "eth3", "fd00:1::5/64")
			f.Gate = netip.MustParseAddr("fd00:1::1")
			return f
		}(),
	}},
	{"mac-match", []Iface{{Entry: 0, Name: "eth2", MAC: "08:00:27:aa:bb:cc", Addr: netip.MustParsePrefix("10.9.0.2/24")}}},
}

// debianInterfaces is Debian's file with the primary's stanza and an
// operator's line after it: both must survive.
const debianInterfaces = "# interfaces(5) file used by ifup(8) and ifdown(8)\nsource /etc/network/interfaces.d/*\n\nauto lo\niface lo inet loopback\n\nauto eth0\niface eth0 inet dhcp\n"

func stackFor(name string) Stack {
	st := Stack{Renderer: name}
	if name == "netplan" {
		st.Backend = "networkd"
	}
	return st
}

func showFiles(files []File, removed []string) string {
	var b strings.Builder
	for _, f := range files {
		fmt.Fprintf(&b, "== %s (%04o) ==\n%s", f.Path, uint32(f.Mode), f.Content)
	}
	for _, r := range removed {
		fmt.Fprintf(&b, "== remove %s ==\n", r)
	}
	return b.String()
}

func TestRenderGolden(t *testing.T) {
	for _, name := range rendererNames {
		for _, c := range renderCases {
			t.Run(name+"/"+c.name, func(t *testing.T) {
				read := func(p string) ([]byte, error) {
					if p == interfacesPath {
						return []byte(debianInterfaces), nil
					}
					return nil, fs.ErrNotExist
				}
				files, err := renderers[name].Render(c.ifs, stackFor(name), read)
				if err != nil {
					t.Fatal(err)
				}
				golden.Check(t, filepath.Join("testdata", name, c.name+".golden"), []byte(showFiles(files, nil)))
			})
		}
	}
}

// writeAll puts files under dir as a run would.
func writeAll(t *testing.T, dir string, files []File) {
	t.Helper()
	for _, f := range files {
		p := filepath.Join(dir, f.Path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, f.Content, f.Mode); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRemovedOnRerun: a run with two adapters, then one with only the
// first. The second adapter's files are removed (or its stanza dropped);
// a file of the operator's in the same directory, even one named like
// ours, is never listed.
func TestRemovedOnRerun(t *testing.T) {
	two := []Iface{static(0, "eth1", "192.168.56.10/24"), {Entry: 1, Name: "eth2", DHCP: true}}
	for _, name := range rendererNames {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeAll(t, dir, []File{
				{Path: interfacesPath, Mode: 0o644, Content: []byte(debianInterfaces)},
				{Path: "/etc/systemd/network/50-bootstrap-eth9.network", Mode: 0o644, Content: []byte("[Match]\nName=eth9\n")},
				{Path: "/etc/sysconfig/network-scripts/ifcfg-eth0", Mode: 0o644, Content: []byte("DEVICE=eth0\n")},
				{Path: "/etc/NetworkManager/system-connections/bootstrap-mine.nmconnection", Mode: 0o600, Content: []byte("[connection]\n")},
			})
			root, err := rootfs.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			first, stale, err := renderAll(root, two, stackFor(name))
			if err != nil {
				t.Fatal(err)
			}
			if len(stale) != 0 {
				t.Fatalf("first run removes %v; nothing of ours was there", stale)
			}
			writeAll(t, dir, first)
			again, stale, err := renderAll(root, two, stackFor(name))
			if err != nil || len(stale) != 0 || showFiles(again, nil) != showFiles(first, nil) {
				t.Fatalf("a rerun with the same adapters differs: err %v, stale %v\n%s", err, stale, showFiles(again, nil))
			}
			second, stale, err := renderAll(root, two[:1], stackFor(name))
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", name, "removed-on-rerun.golden"), []byte(showFiles(second, stale)))
		})
	}
}

func TestSpliceBlock(t *testing.T) {
	block := []string{blockBegin, "auto eth1", blockEnd}
	tests := []struct {
		name, cur string
		block     []string
		want      string
		err       string
	}{
		{"appended, newline added", "auto lo", block, "auto lo\n" + blockBegin + "\nauto eth1\n" + blockEnd + "\n", ""},
		{"replaced whole, text around kept", "a\n" + blockBegin + "\nold\n" + blockEnd + "\nb\n" + blockBegin + "\nold2\n" + blockEnd + "\nc\n", block,
			"a\n" + blockBegin + "\nauto eth1\n" + blockEnd + "\nc\n", ""},
		{"removed", "a\n" + blockBegin + "\nold\n" + blockEnd + "\nc\n", nil, "a\nc\n", ""},
		{"nothing to remove", "a\n", nil, "a\n", ""},
		{"begin without end", "a\n" + blockBegin + "\nold\n", block, "", "line 2 opens our block"},
		{"end without begin", "a\n" + blockEnd + "\n", block, "", "line 2 closes our block"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := spliceBlock(tt.cur, tt.block)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v\nwant %q", got, err, tt.want)
			}
		})
	}
}

func TestUUIDStablePerDevice(t *testing.T) {
	a, b := uuid5("bootstrap-eth1"), uuid5("bootstrap-eth1")
	if a != b || a == uuid5("bootstrap-eth2") {
		t.Fatalf("uuid5 not stable per device: %s %s %s", a, b, uuid5("bootstrap-eth2"))
	}
	if len(a) != 36 || a[14] != '5' || !strings.ContainsAny(a[19:20], "89ab") {
		t.Fatalf("%s is not a version 5 RFC 9562 UUID", a)
	}
}
