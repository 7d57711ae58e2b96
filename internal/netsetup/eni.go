package netsetup

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ENI is an EC2 secondary network interface as IMDS describes it under
// network/interfaces/macs/<mac>/.
type ENI struct {
	MAC          string       // lower-case with colons
	DeviceNumber int          // device-number; 0 is the primary ENI
	LocalIPv4s   []netip.Addr // local-ipv4s, the primary private address first
	Subnet       netip.Prefix // subnet-ipv4-cidr-block
}

// ENI routing: each secondary ENI gets a table of its own and one rule per
// address, so replies leave by the ENI the request came in on (what
// amazon-ec2-net-utils does); without them every reply leaves by the
// primary's default route and the VPC drops it (source/destination check).
const (
	eniTableBase = 10000
	eniRuleBase  = 10000
)

// Table is the ENI's routing table.
func (e ENI) Table() int { return eniTableBase + e.DeviceNumber }

// Gateway is the VPC router: the subnet's first address after the network.
func (e ENI) Gateway() netip.Addr { return e.Subnet.Masked().Addr().Next() }

func (e ENI) check() error {
	switch {
	case e.DeviceNumber < 1 || e.DeviceNumber > 127:
		return fmt.Errorf("ENI %s: device-number %d: secondary ENIs are 1 to 127", e.MAC, e.DeviceNumber)
	case !e.Subnet.IsValid() || !e.Subnet.Addr().Is4():
		return fmt.Errorf("ENI %s: no IPv4 subnet", e.MAC)
	case len(e.LocalIPv4s) == 0:
		return fmt.Errorf("ENI %s: no local-ipv4s", e.MAC)
	}
	for _, ip := range e.LocalIPv4s {
		if !e.Subnet.Masked().Contains(ip) {
			return fmt.Errorf("ENI %s: local address %s is outside its subnet %s", e.MAC, ip, e.Subnet)
		}
	}
	return nil
}

// eniAction configures one secondary ENI live: its addresses, its table
// (subnet route and default via the VPC router) and a rule per address.
type eniAction struct {
	eni  ENI
	dev  string
	live eniLive
}

// eniLive is the part of netlink the ENI action needs; tests run the real
// one in a namespace.
type eniLive interface {
	ConfigureENI(dev string, e ENI) ([]string, error)
}

// ENIActions resolves each secondary ENI's device by MAC among links and
// returns its action. The primary ENI (device-number 0) is never touched.
func ENIActions(enis []ENI, links []Link) ([]plan.Action, error) {
	var out []plan.Action
	for _, e := range enis {
		if e.DeviceNumber == 0 {
			continue
		}
		if err := e.check(); err != nil {
			return nil, err
		}
		dev := ""
		for _, l := range links {
			if l.MAC == e.MAC {
				dev = l.Name
			}
		}
		if dev == "" {
			cands, _ := Candidates(links)
			return nil, fmt.Errorf("ENI %s (device-number %d): no device has this MAC; %s", e.MAC, e.DeviceNumber, macList(cands))
		}
		out = append(out, &eniAction{eni: e, dev: dev, live: netlinkLive{}})
	}
	return out, nil
}

func (a *eniAction) Describe() plan.Description {
	ips := make([]string, len(a.eni.LocalIPv4s))
	for i, ip := range a.eni.LocalIPv4s {
		ips[i] = ip.String()
	}
	return plan.Description{Kind: "configure", Path: a.dev, Note: fmt.Sprintf("ENI %s device-number %d: %s in %s; table %d (default via %s), a rule per address",
		a.eni.MAC, a.eni.DeviceNumber, strings.Join(ips, ", "), a.eni.Subnet.Masked(), a.eni.Table(), a.eni.Gateway())}
}

func (a *eniAction) Apply(ctx context.Context, env *plan.Env) error {
	did, err := a.live.ConfigureENI(a.dev, a.eni)
	for _, d := range did {
		env.Log.Info("network changed", "device", a.dev, "change", d)
	}
	return err
}

// ConfigureENI brings the device to the ENI's state, changing only what
// differs.
func (netlinkLive) ConfigureENI(dev string, e ENI) ([]string, error) {
	link, err := netlink.LinkByName(dev)
	if err != nil {
		return nil, fmt.Errorf("device %s: %w", dev, err)
	}
	var did []string
	addrs, err := netlink.AddrList(link, netlink.FAMILY_V4)
	if err != nil {
		return nil, err
	}
	have := map[netip.Prefix]bool{}
	for _, a := range addrs {
		if p, ok := prefixOf(a.IPNet); ok {
			have[p] = true
		}
	}
	for _, ip := range e.LocalIPv4s {
		p := netip.PrefixFrom(ip, e.Subnet.Bits())
		if have[p] {
			continue
		}
		if err := netlink.AddrAdd(link, &netlink.Addr{IPNet: ipNet(p)}); err != nil {
			return did, fmt.Errorf("add address %s: %w", p, err)
		}
		did = append(did, "added address "+p.String())
	}
	if link.Attrs().Flags&net.FlagUp == 0 {
		if err := netlink.LinkSetUp(link); err != nil {
			return did, err
		}
		did = append(did, "link up")
	}
	idx := link.Attrs().Index
	src := net.IP(e.LocalIPv4s[0].AsSlice())
	routes := []*netlink.Route{
		{LinkIndex: idx, Dst: ipNet(e.Subnet.Masked()), Src: src, Scope: netlink.SCOPE_LINK, Table: e.Table(), Protocol: unix.RTPROT_STATIC},
		{LinkIndex: idx, Dst: ipNet(netip.MustParsePrefix("0.0.0.0/0")), Gw: net.IP(e.Gateway().AsSlice()), Table: e.Table(), Protocol: unix.RTPROT_STATIC},
	}
	existing, err := netlink.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Table: e.Table()}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return did, err
	}
	for _, r := range routes {
		found := false
		for _, x := range existing {
			if x.LinkIndex == r.LinkIndex && x.Dst != nil && x.Dst.String() == r.Dst.String() && x.Gw.Equal(r.Gw) {
				found = true
			}
		}
		if found {
			continue
		}
		if err := netlink.RouteReplace(r); err != nil {
			return did, fmt.Errorf("table %d: route %s: %w", e.Table(), r.Dst, err)
		}
		did = append(did, fmt.Sprintf("table %d: route %s via %s", e.Table(), r.Dst, r.Gw))
	}
	rules, err := netlink.RuleList(netlink.FAMILY_V4)
	if err != nil {
		return did, err
	}
	for _, ip := range e.LocalIPv4s {
		from := ipNet(netip.PrefixFrom(ip, 32))
		found := false
		for _, r := range rules {
			if r.Table == e.Table() && r.Src != nil && r.Src.String() == from.String() {
				found = true
			}
		}
		if found {
			continue
		}
		rule := netlink.NewRule()
		rule.Src, rule.Table, rule.Priority, rule.Family = from, e.Table(), eniRuleBase+e.DeviceNumber, netlink.FAMILY_V4
		if err := netlink.RuleAdd(rule); err != nil {
			return did, fmt.Errorf("rule from %s lookup %d: %w", ip, e.Table(), err)
		}
		did = append(did, fmt.Sprintf("rule from %s lookup %d", ip, e.Table()))
	}
	return did, nil
}
