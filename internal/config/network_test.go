package config

import (
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
)

func TestNetworkDecode(t *testing.T) {
	tests := []struct {
		name string
		src  string
		// want is one line per adapter: kind type ip/prefix adapter mac gateway ignored
		want []string
	}{
		{
			name: "dotted and prefix masks, defaults",
			src: "network:\n  adapters:\n" +
				"    - {kind: private_network, ip: 192.168.56.10}\n" +
				"    - {kind: private_network, ip: 10.1.0.5, netmask: '16'}\n" +
				"    - {kind: private_network, ip: 10.2.0.5, netmask: 255.255.252.0}\n" +
				"    - {kind: private_network, ip: 'fde4:8dba:82e1::c4'}\n",
			want: []string{
				"private_network static 192.168.56.10/24 1  ",
				"private_network static 10.1.0.5/16 2  ",
				"private_network static 10.2.0.5/22 3  ",
				"private_network static fde4:8dba:82e1::c4/64 4  ",
			},
		},
		{
			name: "dhcp ignores the host adapter's ip; public without ip is dhcp",
			src: "network:\n  adapters:\n" +
				"    - {kind: private_network, type: DHCP, ip: 192.168.56.1}\n" +
				"    - {kind: public_network, use_dhcp_assigned_default_route: true}\n",
			want: []string{
				"private_network dhcp - 1  ignored",
				"public_network dhcp - 2  ",
			},
		},
		{
			name: "explicit indexes are skipped, MACs take a slot, forwarded ports take none",
			src: "network:\n  adapters:\n" +
				"    - {kind: forwarded_port, guest: 80, host: 8080}\n" +
				"    - {kind: private_network, ip: 10.0.1.2, adapter: 2}\n" +
				"    - {kind: public_network, ip: 10.0.2.2, mac: 080027AABBCC, gateway: 10.0.2.1}\n" +
				"    - {kind: private_network, ip: 10.0.3.2}\n",
			want: []string{
				"forwarded_port  - 0  ",
				"private_network static 10.0.1.2/24 2  ",
				"public_network static 10.0.2.2/24 0 08:00:27:aa:bb:cc 10.0.2.1 ",
				"private_network static 10.0.3.2/24 3  ",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := decodeOne(t, tt.src)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range cfg.Network.Adapters {
				addr := "-"
				if p, ok := a.Address(); ok {
					addr = p.String()
				}
				ign := ""
				if a.IPIgnored {
					ign = "ignored"
				}
				gw := a.Gateway
				if gw != "" {
					gw += " "
				}
				got = append(got, strings.Join([]string{a.Kind, a.Type, addr, strconv.Itoa(a.Adapter), a.MAC, gw + ign}, " "))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if cfg.Network.Renderer != RendererAuto {
				t.Errorf("renderer = %q, want auto", cfg.Network.Renderer)
			}
		})
	}
}

func TestNetworkValidation(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "overlapping subnets name both entries",
			src:  "network:\n  adapters:\n    - {kind: private_network, ip: 10.0.0.5, netmask: 255.255.0.0}\n    - {kind: private_network, ip: 10.0.9.5}\n",
			want: []string{`c.yaml:4:35: network.adapters[1].ip: subnet 10.0.9.0/24 overlaps 10.0.0.0/16 of network.adapters[0] at c.yaml:3:35; each adapter needs its own subnet`},
		},
		{
			name: "gateway outside its subnet, of the other family, with dhcp",
			src: "network:\n  adapters:\n" +
				"    - {kind: public_network, ip: 10.0.0.5, gateway: 10.0.1.1}\n" +
				"    - {kind: public_network, ip: 10.0.2.5, gateway: 'fd00::1'}\n" +
				"    - {kind: public_network, type: dhcp, gateway: 10.0.3.1}\n",
			want: []string{
				`c.yaml:3:53: network.adapters[0].gateway: gateway 10.0.1.1 is outside the adapter's subnet 10.0.0.0/24`,
				`c.yaml:4:53: network.adapters[1].gateway: gateway fd00::1 and ip 10.0.2.5 are not the same IP version`,
				`c.yaml:5:51: network.adapters[2].gateway: gateway applies to a static ip; with DHCP use use_dhcp_assigned_default_route`,
			},
		},
		{
			name: "non-contiguous, out of range and v6 dotted masks",
			src: "network:\n  adapters:\n" +
				"    - {kind: private_network, ip: 10.0.0.5, netmask: 255.0.255.0}\n" +
				"    - {kind: private_network, ip: 10.0.1.5, netmask: '33'}\n" +
				"    - {kind: private_network, ip: 'fd00::5', netmask: 255.255.255.0}\n",
			want: []string{
				`c.yaml:3:54: network.adapters[0].netmask: 255.0.255.0 is not a contiguous netmask (ones, then zeros, such as 255.255.255.0)`,
				`c.yaml:4:54: network.adapters[1].netmask: want a dotted netmask (IPv4 only) or a prefix length from 1 to 32, got "33"`,
				`c.yaml:5:55: network.adapters[2].netmask: 255.255.255.0: an IPv6 address takes a prefix length such as 64`,
			},
		},
		{
			name: "adapter 0, two adapters on one device, by index and by MAC",
			src: "network:\n  adapters:\n" +
				"    - {kind: private_network, ip: 10.0.0.5, adapter: 0}\n" +
				"    - {kind: private_network, ip: 10.0.1.5, adapter: 2}\n" +
				"    - {kind: private_network, ip: 10.0.2.5, adapter: 2}\n" +
				"    - {kind: private_network, ip: 10.0.3.5, mac: '08:00:27:00:00:01'}\n" +
				"    - {kind: private_network, ip: 10.0.4.5, mac: 080027000001}\n",
			want: []string{
				`c.yaml:3:54: network.adapters[0].adapter: adapter 0 is the NAT/primary device, which is never configured; the first extra device is 1`,
				`c.yaml:5:54: network.adapters[2].adapter: adapter 2 is also the device of network.adapters[1] at c.yaml:4:54: two adapters on one device`,
				`c.yaml:7:50: network.adapters[4].mac: mac 08:00:27:00:00:01 is also the device of network.adapters[3] at c.yaml:6:50: two adapters on one device`,
			},
		},
		{
			name: "unknown kind and type, missing ip, bad ip and mac",
			src: "network:\n  hostname: -bad-\n  renderer: wicked\n  adapters:\n" +
				"    - {kind: bridged, ip: 10.0.0.5}\n" +
				"    - {kind: private_network, type: dhcp6}\n" +
				"    - {kind: private_network}\n" +
				"    - {kind: private_network, ip: 10.0.0.256, mac: zz}\n" +
				"    - {kind: private_network, ip: 10.0.5.5, use_dhcp_assigned_default_route: true, guest: 80}\n",
			want: []string{
				`c.yaml:2:13: network.hostname: "-bad-" is not a hostname: labels of letters, digits and -, 1 to 63 characters, not starting or ending with -`,
				`c.yaml:3:13: network.renderer: unknown renderer "wicked"; want auto, ifupdown, netplan, networkd, networkmanager, ifcfg`,
				`c.yaml:5:14: network.adapters[0].kind: unknown adapter kind "bridged"; want private_network, public_network or forwarded_port`,
				`c.yaml:6:37: network.adapters[1].type: unknown type "dhcp6"; want static or dhcp`,
				`c.yaml:7:7: network.adapters[2].ip: required: a private_network needs ip, or type: dhcp`,
				`c.yaml:8:35: network.adapters[3].ip: "10.0.0.256" is not an IPv4 or IPv6 address`,
				`c.yaml:8:52: network.adapters[3].mac: "zz" is not a MAC address; want 08:00:27:aa:bb:cc or VirtualBox's 080027AABBCC`,
				`c.yaml:9:78: network.adapters[4].use_dhcp_assigned_default_route: applies to type: dhcp only; a static adapter takes gateway`,
				`c.yaml:9:91: network.adapters[4].guest: guest is a forwarded_port key; a private_network has none`,
			},
		},
		{
			name: "forwarded port keys",
			src:  "network:\n  adapters:\n    - {kind: forwarded_port, guest: 0, host: 8080, ip: 10.0.0.1, protocol: sctp}\n",
			want: []string{
				`c.yaml:3:37: network.adapters[0].guest: want a port from 1 to 65535, got 0`,
				`c.yaml:3:56: network.adapters[0].ip: a forwarded_port takes guest, host, host_ip and protocol, not ip`,
				`c.yaml:3:76: network.adapters[0].protocol: want tcp or udp, got "sctp"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeOne(t, tt.src)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", got, strings.Join(tt.want, "\n"))
			}
		})
	}
}

// TestNetworkMergeByID: adapters with an id merge across layers; entries
// without one are appended.
func TestNetworkMergeByID(t *testing.T) {
	base := "network:\n  adapters:\n    - {id: lab, kind: private_network, ip: 10.0.1.2}\n    - {kind: private_network, ip: 10.0.2.2}\n"
	role := "network:\n  adapters:\n    - {id: lab, kind: private_network, ip: 10.0.3.2}\n    - {kind: public_network}\n"
	var layers []*Layer
	for i, src := range []string{base, role} {
		l, err := ParseLayer([]string{"base.yaml", "role.yaml"}[i], []byte(src))
		if err != nil {
			t.Fatal(err)
		}
		layers = append(layers, l)
	}
	m, err := Merge(layers)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := m.Decode(testFacts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range cfg.Network.Adapters {
		got = append(got, a.Kind+" "+a.IP+" "+strconv.Itoa(a.Adapter))
	}
	if want := "private_network 10.0.3.2 1|private_network 10.0.2.2 2|public_network  3"; strings.Join(got, "|") != want {
		t.Errorf("merged adapters %q, want %q", strings.Join(got, "|"), want)
	}
}

// FuzzMaskBits: whatever the text, an accepted netmask is a prefix length
// in range, and a dotted one is exactly that prefix's mask.
func FuzzMaskBits(f *testing.F) {
	for _, s := range []string{"255.255.255.0", "24", "/16", "255.0.255.0", "0.0.0.0", "64", "255.255.255.255", "1e1", "-1"} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, s string, v4 bool) {
		n, ok := maskBits(s, v4)
		if !ok {
			return
		}
		max := 128
		if v4 {
			max = 32
		}
		if n < 1 || n > max {
			t.Fatalf("maskBits(%q, %v) = %d, out of range", s, v4, n)
		}
		if m, err := netip.ParseAddr(s); err == nil {
			want := net.IP(net.CIDRMask(n, 32)).String()
			if !v4 || m.String() != want {
				t.Fatalf("maskBits(%q) = %d, but /%d is %s", s, n, n, want)
			}
		}
	})
}
