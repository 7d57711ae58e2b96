package netsetup

import (
	"net/netip"
	"strings"
	"testing"
)

func TestENIActions(t *testing.T) {
	sub := netip.MustParsePrefix("10.1.0.0/24")
	ip := []netip.Addr{netip.MustParseAddr("10.1.0.10")}
	tests := []struct {
		name string
		enis []ENI
		want string // plan lines, or the error
	}{
		{"the primary is skipped, the secondary found by MAC", []ENI{
			{MAC: "52:54:00:00:00:00", DeviceNumber: 0},
			{MAC: "52:54:00:00:00:02", DeviceNumber: 1, LocalIPv4s: ip, Subnet: sub},
		}, "configure eth2 (ENI 52:54:00:00:00:02 device-number 1: 10.1.0.10 in 10.1.0.0/24; table 10001 (default via 10.1.0.1), a rule per address)"},
		{"a MAC not seen lists the devices", []ENI{{MAC: "02:00:00:00:00:99", DeviceNumber: 2, LocalIPv4s: ip, Subnet: sub}},
			"ENI 02:00:00:00:00:99 (device-number 2): no device has this MAC; devices seen: eth0=52:54:00:00:00:00, eth1=52:54:00:00:00:01, eth2=52:54:00:00:00:02"},
		{"an address outside the subnet", []ENI{{MAC: "52:54:00:00:00:01", DeviceNumber: 1, LocalIPv4s: []netip.Addr{netip.MustParseAddr("10.9.0.1")}, Subnet: sub}},
			"ENI 52:54:00:00:00:01: local address 10.9.0.1 is outside its subnet 10.1.0.0/24"},
		{"no subnet", []ENI{{MAC: "52:54:00:00:00:01", DeviceNumber: 1, LocalIPv4s: ip}}, "ENI 52:54:00:00:00:01: no IPv4 subnet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			actions, err := ENIActions(tt.enis, guestLinks)
			var got []string
			for _, a := range actions {
				got = append(got, a.Describe().String())
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
