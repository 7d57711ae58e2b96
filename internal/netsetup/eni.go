package netsetup

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
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
	live Live
}

// ENIActions resolves each secondary ENI's device by MAC among links and
// returns its action. The primary ENI (device-number 0) is never touched.
func ENIActions(enis []ENI, links []Link, live Live) ([]plan.Action, error) {
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
		cands, _ := Candidates(links)
		switch {
		case dev == "":
			return nil, fmt.Errorf("ENI %s (device-number %d): no device has this MAC; %s", e.MAC, e.DeviceNumber, macList(cands))
		case len(cands) > 0 && cands[0].Name == dev:
			return nil, fmt.Errorf("ENI %s (device-number %d) is %s, the primary device, which is never configured", e.MAC, e.DeviceNumber, dev)
		}
		out = append(out, &eniAction{eni: e, dev: dev, live: live})
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

// ENI facts: the datasource publishes each ENI of the instance as facts
// keyed by its MAC without colons (fact names are [a-z0-9_]), read from
// IMDS network/interfaces/macs/<mac>/:
//
//	eni_macs                            "0a1b2c3d4e5f 0a1b2c3d4e60" (all ENIs)
//	eni_<mac>_device_number             "1"
//	eni_<mac>_local_ipv4s               "10.1.0.10 10.1.0.11" (IMDS lists one a line)
//	eni_<mac>_subnet_ipv4_cidr_block    "10.1.0.0/24"
const factENIs = "eni_macs"

// ENIsFromFacts reads the ENIs the datasource published; none when it
// published nothing (not EC2, or an older datasource).
func ENIsFromFacts(facts map[string]string) ([]ENI, error) {
	var out []ENI
	macs := strings.Fields(facts[factENIs])
	if len(macs) > 128 {
		return nil, fmt.Errorf("%s: %d ENIs; an instance has at most 128", factENIs, len(macs))
	}
	for _, m := range macs {
		mac, ok := normalizeMAC(m)
		if !ok {
			return nil, fmt.Errorf("%s: %q is not a MAC", factENIs, m)
		}
		key := "eni_" + strings.ReplaceAll(mac, ":", "") + "_"
		e := ENI{MAC: mac}
		n, err := strconv.Atoi(facts[key+"device_number"])
		if err != nil {
			return nil, fmt.Errorf("%sdevice_number: %q is not a number", key, facts[key+"device_number"])
		}
		e.DeviceNumber = n
		if n == 0 {
			out = append(out, e) // the primary: never configured
			continue
		}
		if e.Subnet, err = netip.ParsePrefix(facts[key+"subnet_ipv4_cidr_block"]); err != nil {
			return nil, fmt.Errorf("%ssubnet_ipv4_cidr_block: %w", key, err)
		}
		for _, s := range strings.Fields(facts[key+"local_ipv4s"]) {
			ip, err := netip.ParseAddr(s)
			if err != nil {
				return nil, fmt.Errorf("%slocal_ipv4s: %w", key, err)
			}
			e.LocalIPv4s = append(e.LocalIPv4s, ip)
		}
		out = append(out, e)
	}
	return out, nil
}

// normalizeMAC reads a MAC with or without colons.
func normalizeMAC(s string) (string, bool) {
	s = strings.ToLower(strings.ReplaceAll(s, ":", ""))
	if len(s) != 12 || strings.Trim(s, "0123456789abcdef") != "" {
		return "", false
	}
	return s[0:2] + ":" + s[2:4] + ":" + s[4:6] + ":" + s[6:8] + ":" + s[8:10] + ":" + s[10:12], true
}
