package netsetup

import (
	"context"
	"fmt"
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
		{"a secondary on the primary device is refused", []ENI{{MAC: "52:54:00:00:00:00", DeviceNumber: 1, LocalIPv4s: ip, Subnet: sub}},
			"ENI 52:54:00:00:00:00 (device-number 1) is eth0, the primary device, which is never configured"},
		{"no subnet", []ENI{{MAC: "52:54:00:00:00:01", DeviceNumber: 1, LocalIPv4s: ip}}, "ENI 52:54:00:00:00:01: no IPv4 subnet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			actions, err := ENIActions(tt.enis, guestLinks, &fakeLive{})
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

func TestENIsFromFacts(t *testing.T) {
	tests := []struct {
		name  string
		facts map[string]string
		want  string
	}{
		{"none published", map[string]string{"instance_id": "i-1"}, ""},
		{"primary and one secondary", map[string]string{
			"eni_macs":                                "52:54:00:00:00:00 525400000002",
			"eni_525400000000_device_number":          "0",
			"eni_525400000002_device_number":          "1",
			"eni_525400000002_local_ipv4s":            "10.1.0.10\n10.1.0.11",
			"eni_525400000002_subnet_ipv4_cidr_block": "10.1.0.0/24",
		}, "52:54:00:00:00:00 0 [] invalid Prefix|52:54:00:00:00:02 1 [10.1.0.10 10.1.0.11] 10.1.0.0/24"},
		{"a bad MAC", map[string]string{"eni_macs": "zz"}, `error: eni_macs: "zz" is not a MAC`},
		{"no device number", map[string]string{"eni_macs": "525400000002"}, `error: eni_525400000002_device_number: "" is not a number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			enis, err := ENIsFromFacts(tt.facts)
			var got []string
			for _, e := range enis {
				got = append(got, fmt.Sprintf("%s %d %v %v", e.MAC, e.DeviceNumber, e.LocalIPv4s, e.Subnet))
			}
			if err != nil {
				got = []string{"error: " + err.Error()}
			}
			if strings.Join(got, "|") != tt.want {
				t.Errorf("got  %s\nwant %s", strings.Join(got, "|"), tt.want)
			}
		})
	}
}

// TestENIStep: the capability plans the ENIs the facts describe as their
// own step, and none in an image build.
func TestENIStep(t *testing.T) {
	facts := map[string]string{"instance_id": "i-1", "eni_macs": "525400000002", "eni_525400000002_device_number": "2",
		"eni_525400000002_local_ipv4s": "10.1.0.10", "eni_525400000002_subnet_ipv4_cidr_block": "10.1.0.0/24"}
	for _, image := range []bool{false, true} {
		in, env := runInput(t, t.TempDir(), "version: 1\n", image)
		in.Facts = facts
		live := &fakeLive{}
		steps, err := Network{Live: live, Runner: noRun{t}}.Steps(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		want := "step network:eni (always)\n  configure eth2 (ENI 52:54:00:00:00:02 device-number 2: 10.1.0.10 in 10.1.0.0/24; table 10002 (default via 10.1.0.1), a rule per address)\n"
		if image {
			want = "nothing to do\n"
		}
		got := planText(t, steps)
		if !strings.HasSuffix(got, want) {
			t.Errorf("image %v: plan\n%s\nwant it to end with\n%s", image, got, want)
		}
		applyAll(t, env, steps)
		if !image && strings.Join(live.configured, ",") != "eth2 ENI 52:54:00:00:00:02" {
			t.Errorf("configured %v", live.configured)
		}
	}
}
