package netsetup

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// netlinkLive reads and configures the network namespace the process runs
// in — never the target root, which has no devices.
type netlinkLive struct{}

func (netlinkLive) List() ([]Link, error) {
	ls, err := netlink.LinkList()
	if err != nil {
		return nil, err
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		a := l.Attrs()
		out = append(out, Link{Name: a.Name, MAC: a.HardwareAddr.String(), Kind: l.Type(), Loopback: a.Flags&net.FlagLoopback != 0})
	}
	return out, nil
}

// Configure sets the device's static addresses to exactly the one
// configured (none for DHCP), its default route through the gateway at
// the adapter's metric, and the link up. It reads before it writes, so a
// rerun changes nothing. The primary is never passed here (resolve
// refuses it); the check below makes sure.
func (l netlinkLive) Configure(f Iface) ([]string, error) {
	all, err := l.List()
	if err != nil {
		return nil, err
	}
	if cands, _ := Candidates(all); len(cands) > 0 && cands[0].Name == f.Name {
		return nil, fmt.Errorf("%s: %w", f.Name, errPrimary)
	}
	link, err := netlink.LinkByName(f.Name)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", f.Name, err)
	}
	var did []string
	addrs, err := netlink.AddrList(link, netlink.FAMILY_ALL)
	if err != nil {
		return nil, err
	}
	have := false
	for _, a := range addrs {
		p, ok := prefixOf(a.IPNet)
		// Link-local addresses are the kernel's; addresses with a lifetime
		// are a DHCP client's or SLAAC's.
		if !ok || a.Scope != unix.RT_SCOPE_UNIVERSE || a.Flags&unix.IFA_F_PERMANENT == 0 {
			continue
		}
		if !f.DHCP && p == f.Addr {
			have = true
			continue
		}
		// The device is ours: an address a previous config gave it goes,
		// whatever its family.
		if err := netlink.AddrDel(link, &a); err != nil {
			return did, fmt.Errorf("remove address %s: %w", p, err)
		}
		did = append(did, "removed address "+p.String())
	}
	if !f.DHCP && !have {
		addr := &netlink.Addr{IPNet: ipNet(f.Addr)}
		if f.Addr.Addr().Is6() {
			addr.Flags = unix.IFA_F_NODAD // usable at once; the subnet is ours
		}
		if err := netlink.AddrAdd(link, addr); err != nil {
			return did, fmt.Errorf("add address %s: %w", f.Addr, err)
		}
		did = append(did, "added address "+f.Addr.String())
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return did, fmt.Errorf("link up: %w", err)
		}
		did = append(did, "link up")
	}
	routeDid, err := defaultRoute(link, f)
	return append(did, routeDid...), err
}

// defaultRoute installs the gateway's default route at the adapter's
// metric and removes default routes at our metrics on this device that the
// config no longer has. Routes at other metrics are not ours.
func defaultRoute(link netlink.Link, f Iface) ([]string, error) {
	var did []string
	if f.DHCP && f.KeepDHCPRoute {
		return nil, nil // the route at our metric is the DHCP client's
	}
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := netlink.RouteListFiltered(fam, &netlink.Route{LinkIndex: link.Attrs().Index, Table: unix.RT_TABLE_MAIN},
			netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
		if err != nil {
			return did, err
		}
		want := f.Gate.IsValid() && f.Gate.Is4() == (fam == netlink.FAMILY_V4)
		have := false
		for _, r := range routes {
			if !isDefault(r) || r.Priority < routeMetricBase || r.Priority > routeMetricBase+64 {
				continue
			}
			gw, _ := netip.AddrFromSlice(r.Gw)
			if want && r.Priority == f.Metric() && gw.Unmap() == f.Gate {
				have = true
				continue
			}
			if err := netlink.RouteDel(&r); err != nil {
				return did, fmt.Errorf("remove default route via %s: %w", r.Gw, err)
			}
			did = append(did, fmt.Sprintf("removed default route via %s metric %d", r.Gw, r.Priority))
		}
		if want && !have {
			r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(f.Gate.AsSlice()), Priority: f.Metric(), Table: unix.RT_TABLE_MAIN,
				Dst: ipNet(netip.PrefixFrom(f.Gate, 0).Masked())}
			if err := netlink.RouteAdd(r); err != nil {
				return did, fmt.Errorf("add default route via %s metric %d: %w", f.Gate, f.Metric(), err)
			}
			did = append(did, fmt.Sprintf("added default route via %s metric %d", f.Gate, f.Metric()))
		}
	}
	return did, nil
}

func isDefault(r netlink.Route) bool {
	if r.Dst == nil {
		return true
	}
	ones, _ := r.Dst.Mask.Size()
	return ones == 0
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

var errPrimary = errors.New("refusing to configure the primary device")
