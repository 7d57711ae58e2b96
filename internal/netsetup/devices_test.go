package netsetup

import (
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/config"
)

func TestNaturalOrderAndExclusions(t *testing.T) {
	links := []Link{
		{Name: "lo", Kind: "device", Loopback: true},
		{Name: "docker0", Kind: "bridge"},
		{Name: "eth10", Kind: "device"},
		{Name: "eth2", Kind: "device"},
		{Name: "eth0.1", Kind: "vlan"},
		{Name: "eth0", Kind: "device"},
		{Name: "enp0s10", Kind: "device"},
		{Name: "enp0s8", Kind: "device"},
		{Name: "enbr0", Kind: "bridge"},
		{Name: "tun0", Kind: "tuntap"},
		{Name: "wlan0", Kind: "device"},
	}
	got, skipped := Candidates(links)
	if want := "[enp0s8 enp0s10 eth0 eth2 eth10]"; names(got) != want {
		t.Errorf("candidates = %s, want %s", names(got), want)
	}
	want := "lo (loopback), docker0 (bridge), eth0.1 (vlan), enbr0 (bridge), tun0 (tuntap), wlan0 (not eth*/en*)"
	if strings.Join(skipped, ", ") != want {
		t.Errorf("skipped = %s\nwant      %s", strings.Join(skipped, ", "), want)
	}
}

func decode(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, err := config.ParseConfig("c.yaml", []byte(src), map[string]string{"instance_id": "i-1"})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

var guestLinks = []Link{
	{Name: "lo", Loopback: true, Kind: "device"},
	{Name: "eth0", MAC: "52:54:00:00:00:00", Kind: "veth"},
	{Name: "eth2", MAC: "52:54:00:00:00:02", Kind: "veth"},
	{Name: "eth1", MAC: "52:54:00:00:00:01", Kind: "veth"},
	{Name: "docker0", MAC: "02:42:00:00:00:01", Kind: "bridge"},
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name, src string
		want      string // device: reason per adapter, or the error
	}{
		{
			name: "by index, in Vagrant's order",
			src:  "network:\n  adapters:\n    - {kind: private_network, ip: 10.0.1.2}\n    - {kind: private_network, ip: 10.0.2.2}\n",
			want: "eth1: adapter 1: index 1 of [eth0 eth1 eth2]\neth2: adapter 2: index 2 of [eth0 eth1 eth2]",
		},
		{
			name: "by MAC wherever the device is",
			src:  "network:\n  adapters:\n    - {kind: private_network, ip: 10.0.1.2, mac: 525400000002}\n    - {kind: private_network, ip: 10.0.2.2, adapter: 1}\n",
			want: "eth2: has MAC 52:54:00:00:00:02\neth1: adapter 1: index 1 of [eth0 eth1 eth2]",
		},
		{
			name: "a missing index lists the devices seen",
			src:  "network:\n  adapters:\n    - {kind: private_network, ip: 10.0.1.2, adapter: 3}\n",
			want: "c.yaml:3:54: network.adapters[0].adapter: adapter 3: there is no such device; devices seen, in Vagrant's order: 0=eth0, 1=eth1, 2=eth2; not candidates: lo (loopback), docker0 (bridge)",
		},
		{
			name: "a missing MAC lists the MACs seen",
			src:  "network:\n  adapters:\n    - {kind: private_network, ip: 10.0.1.2, mac: '02:00:00:00:00:09'}\n",
			want: "c.yaml:3:50: network.adapters[0].mac: no eth*/en* device has MAC 02:00:00:00:00:09; devices seen: eth0=52:54:00:00:00:00, eth1=52:54:00:00:00:01, eth2=52:54:00:00:00:02",
		},
		{
			name: "the primary's MAC is refused",
			src:  "network:\n  adapters:\n    - {kind: private_network, ip: 10.0.1.2, mac: '52:54:00:00:00:00'}\n",
			want: "c.yaml:3:50: network.adapters[0].mac: MAC 52:54:00:00:00:00 is eth0, the primary (NAT) device, which is never configured",
		},
		{
			name: "an index and a MAC on one device",
			src:  "network:\n  adapters:\n    - {kind: private_network, ip: 10.0.1.2, adapter: 1}\n    - {kind: private_network, ip: 10.0.2.2, mac: '52:54:00:00:00:01'}\n",
			want: "c.yaml:4:7: network.adapters[1]: eth1 is also the device of network.adapters[0]: two adapters on one device",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ifs, err := resolve(decode(t, tt.src), guestLinks)
			var got []string
			for _, f := range ifs {
				got = append(got, f.Name+": "+f.Reason)
			}
			if err != nil {
				got = []string{err.Error()}
			}
			if strings.Join(got, "\n") != tt.want {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), tt.want)
			}
		})
	}
}
