// Package netsetup is the network: capability: the guest side of Vagrant's
// config.vm.hostname and config.vm.network — extra adapters configured for
// the host's own network stack and applied per device, never touching the
// primary (NAT/management) interface.
//
// Vagrant's users suffer from the wrong device picked (docker0, a VLAN),
// eth1 hard-coded where names are predictable, tools the distro dropped,
// and `netplan apply` or stack restarts that cut the session. So here:
// devices are found by MAC or by Vagrant's natural-sort rule from the
// running network namespace, and `plan` says which and why; the renderer
// is picked from what the target root has installed and enabled; files we
// write carry a marker, so those of removed adapters are removed and files
// we did not write are never touched; and the live state is applied per
// device through netlink, with a per-device reload of the stack only.
package netsetup

import (
	"fmt"
	"net/netip"
	"strings"
)

// Marker is the first line of every file we write (and the first line of
// our block in /etc/network/interfaces): files without it are not ours.
const Marker = "# Written by bootstrap from network.adapters: do not edit, it is rewritten on every run."

// routeMetricBase plus the adapter index is the metric of an adapter's
// default route (its gateway, or DHCP's when kept). Above every stack's
// default for the primary (dhclient 0, NetworkManager 100, networkd 1024),
// so the primary's default route stays preferred, and distinct per adapter,
// so two gateways never collide (the kernel refuses two IPv4 default routes
// with one metric).
const routeMetricBase = 2000

// Iface is one adapter resolved to what the renderers write and the
// applier configures.
type Iface struct {
	Entry int    // index in network.adapters, for messages
	Name  string // the device, "" in an image build
	MAC   string // match on it when set (an adapter given by MAC)
	DHCP  bool
	Addr  netip.Prefix // static address; zero for DHCP
	Gate  netip.Addr   // gateway; zero for none
	// KeepDHCPRoute keeps the default route DHCP offers
	// (use_dhcp_assigned_default_route).
	KeepDHCPRoute bool
	Reason        string // why this device, for the plan
}

// Metric is the adapter's default-route metric.
func (f Iface) Metric() int { return routeMetricBase + f.Entry + 1 }

// ID names the adapter in file names and connection ids: the device, or
// its MAC without colons when the device is not known (an image build).
func (f Iface) ID() string {
	if f.Name != "" {
		return f.Name
	}
	return "mac-" + strings.ReplaceAll(f.MAC, ":", "")
}

// Summary is the addressing in one phrase, for the plan.
func (f Iface) Summary() string {
	switch {
	case f.DHCP && f.KeepDHCPRoute:
		return fmt.Sprintf("DHCP, its default route kept at metric %d", f.Metric())
	case f.DHCP:
		return "DHCP, its default route dropped"
	case f.Gate.IsValid():
		return fmt.Sprintf("%s, default route via %s metric %d", f.Addr, f.Gate, f.Metric())
	}
	return f.Addr.String()
}
