package netsetup

import (
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/opsboot/bootstrap/internal/config"
)

// Link is one network device of the namespace the run is in.
type Link struct {
	Name     string
	MAC      string // lower-case with colons; "" when it has none
	Kind     string // netlink's kind: device, veth, bridge, vlan, tuntap, …
	Loopback bool
}

// Links lists the devices. The real one reads netlink; tests use a fake.
type Links interface {
	List() ([]Link, error)
}

// vagrantName is Vagrant's rule for a device that may be an adapter.
var vagrantName = regexp.MustCompile(`^(eth|en)[a-zA-Z0-9]+$`)

// excludedKinds are never an adapter, whatever their name: Vagrant users
// lost their session when docker0, a bridge, a VLAN or a tunnel was taken
// for the second NIC.
var excludedKinds = map[string]bool{
	"bridge": true, "vlan": true, "macvlan": true, "macvtap": true, "ipvlan": true,
	"tuntap": true, "tun": true, "ipip": true, "gre": true, "gretap": true, "sit": true,
	"vxlan": true, "wireguard": true, "bond": true, "dummy": true, "geneve": true, "ip6tnl": true,
	"vti": true, "ip6gre": true, "team": true, "vrf": true,
}

// Candidates are the devices in Vagrant's order: eth*/en* names,
// naturally sorted (eth2 before eth10, enp0s8 before enp0s10); loopback,
// bridges, VLANs, tunnels and every other name left out. Index 0 is the
// primary (the NAT adapter).
func Candidates(all []Link) (picked []Link, skipped []string) {
	for _, l := range all {
		switch {
		case l.Loopback:
			skipped = append(skipped, l.Name+" (loopback)")
		case excludedKinds[l.Kind]:
			skipped = append(skipped, l.Name+" ("+l.Kind+")")
		case !vagrantName.MatchString(l.Name):
			skipped = append(skipped, l.Name+" (not eth*/en*)")
		default:
			picked = append(picked, l)
		}
	}
	sort.Slice(picked, func(i, j int) bool { return naturalLess(picked[i].Name, picked[j].Name) })
	return picked, skipped
}

// naturalLess compares runs of digits as numbers.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := isDigit(a[0]), isDigit(b[0])
		if da && db {
			na, ra := digits(a)
			nb, rb := digits(b)
			x, y := strings.TrimLeft(na, "0"), strings.TrimLeft(nb, "0")
			if len(x) != len(y) {
				return len(x) < len(y)
			}
			if x != y {
				return x < y
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(s string) (string, string) {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i], s[i:]
}

// resolve finds each configured adapter's device: by MAC when given, else
// by index into Candidates. Errors name the adapter entry and list the
// devices seen.
func resolve(cfg *config.Config, links []Link) ([]Iface, error) {
	cands, skipped := Candidates(links)
	seen := make([]string, len(cands))
	for i, c := range cands {
		seen[i] = fmt.Sprintf("%d=%s", i, c.Name)
	}
	seenText := "devices seen, in Vagrant's order: " + strings.Join(seen, ", ")
	if len(seen) == 0 {
		seenText = "no eth*/en* device seen"
	}
	if len(skipped) > 0 {
		seenText += "; not candidates: " + strings.Join(skipped, ", ")
	}
	var ifs []Iface
	var errs config.ErrorList
	byDev := map[string]int{}
	for i, a := range cfg.Network.Adapters {
		if !a.Configured() {
			continue
		}
		p := fmt.Sprintf("network.adapters[%d]", i)
		f := base(i, a)
		switch {
		case a.MAC != "":
			found := -1
			for j, c := range cands {
				if c.MAC == a.MAC {
					found = j
				}
			}
			switch {
			case found < 0:
				errs = append(errs, cfg.Errorf(p+".mac", "no eth*/en* device has MAC %s; %s", a.MAC, macList(cands)))
				continue
			case found == 0:
				errs = append(errs, cfg.Errorf(p+".mac", "MAC %s is %s, the primary (NAT) device, which is never configured", a.MAC, cands[0].Name))
				continue
			}
			f.Name, f.Reason = cands[found].Name, fmt.Sprintf("has MAC %s", a.MAC)
		default:
			if a.Adapter >= len(cands) {
				errs = append(errs, cfg.Errorf(p+".adapter", "adapter %d: there is no such device; %s", a.Adapter, seenText))
				continue
			}
			f.Name = cands[a.Adapter].Name
			f.Reason = fmt.Sprintf("adapter %d: index %d of %s", a.Adapter, a.Adapter, names(cands))
		}
		if j, dup := byDev[f.Name]; dup {
			errs = append(errs, cfg.Errorf(p, "%s is also the device of network.adapters[%d]: two adapters on one device", f.Name, j))
			continue
		}
		byDev[f.Name] = i
		ifs = append(ifs, f)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return ifs, nil
}

// imageIfaces is resolve for an image build: there are no guest devices,
// so an adapter must be given by MAC, and its files match the MAC.
func imageIfaces(cfg *config.Config) ([]Iface, error) {
	var ifs []Iface
	var errs config.ErrorList
	for i, a := range cfg.Network.Adapters {
		if !a.Configured() {
			continue
		}
		if a.MAC == "" {
			errs = append(errs, cfg.Errorf(fmt.Sprintf("network.adapters[%d].adapter", i),
				"an image build has no guest devices to count: give this adapter's mac, or leave network: to the baked unit's run at first boot"))
			continue
		}
		f := base(i, a)
		f.Reason = fmt.Sprintf("image build: matched by MAC %s when the image boots", a.MAC)
		ifs = append(ifs, f)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return ifs, nil
}

func base(i int, a config.Adapter) Iface {
	f := Iface{Entry: i, MAC: a.MAC, DHCP: a.Type == config.AddrDHCP,
		Gate: a.GatewayAddr(), KeepDHCPRoute: a.UseDHCPDefaultRoute}
	if p, ok := a.Address(); ok {
		f.Addr = p
	}
	return f
}

func names(ls []Link) string {
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.Name
	}
	return "[" + strings.Join(s, " ") + "]"
}

func macList(ls []Link) string {
	if len(ls) == 0 {
		return "no eth*/en* device seen"
	}
	s := make([]string, len(ls))
	for i, l := range ls {
		s[i] = l.Name + "=" + l.MAC
	}
	return "devices seen: " + strings.Join(s, ", ")
}
