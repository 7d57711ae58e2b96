package config

import (
	"fmt"
	"math/bits"
	"net"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// Network is the network: section, in Vagrant's vocabulary: the guest side
// of config.vm.hostname and config.vm.network.
type Network struct {
	// Hostname is the machine's name, short or fully qualified.
	Hostname string `yaml:"hostname"`
	// EtcHosts false leaves /etc/hosts alone (cloud-config's
	// manage_etc_hosts: false); nil or true keeps the name's 127.0.1.1
	// line there.
	EtcHosts *bool `yaml:"etc_hosts"`
	// Renderer forces the host's network stack; auto (the default) detects
	// it from the target root.
	Renderer string    `yaml:"renderer"`
	Adapters []Adapter `yaml:"adapters"`
}

// Renderers are the network stacks network.renderer accepts, besides auto.
var Renderers = []string{"ifupdown", "netplan", "networkd", "networkmanager", "ifcfg"}

// RendererAuto detects the stack from the target root.
const RendererAuto = "auto"

// Adapter kinds: Vagrant's first argument to config.vm.network.
const (
	PrivateNetwork = "private_network"
	PublicNetwork  = "public_network"
	ForwardedPort  = "forwarded_port" // host-side NAT only: nothing in the guest
)

// Adapter addressing types.
const (
	AddrStatic = "static"
	AddrDHCP   = "dhcp"
)

// Limits on the section.
const (
	MaxAdapters     = 16
	MaxAdapterIndex = 35 // VirtualBox has 36 slots; index 0 is the NAT
	maxHostname     = 253
)

// Adapter is one network adapter. Entries with an id merge by it across
// layers (Vagrant's id:); entries without one are appended.
type Adapter struct {
	ID string `yaml:"id" config:"key"`
	// Kind is private_network, public_network or forwarded_port.
	Kind string `yaml:"kind"`
	// Type is static (the default when ip is given) or dhcp.
	Type    string `yaml:"type"`
	IP      string `yaml:"ip"`
	Netmask string `yaml:"netmask"` // dotted (255.255.255.0) or a prefix length (24)
	Gateway string `yaml:"gateway"`
	// AutoConfig false leaves the adapter alone (Vagrant's auto_config).
	AutoConfig *bool `yaml:"auto_config"`
	// MAC finds the device by its address; else Adapter is the index.
	MAC string `yaml:"mac"`
	// Adapter is the index into the naturally sorted eth*/en* devices;
	// 0 is the NAT/primary and is never configured.
	Adapter int `yaml:"adapter"`
	// UseDHCPDefaultRoute keeps the default route a DHCP server offers on
	// this adapter; without it the primary's default route stays the only one.
	UseDHCPDefaultRoute bool `yaml:"use_dhcp_assigned_default_route"`

	// forwarded_port's keys, accepted so a Vagrantfile's list can be
	// copied; they configure nothing in the guest.
	Guest    int    `yaml:"guest"`
	Host     int    `yaml:"host"`
	HostIP   string `yaml:"host_ip"`
	Protocol string `yaml:"protocol"`

	// IPIgnored is set when ip was given with type dhcp: Vagrant passes
	// the host adapter's address there, which must not be assigned.
	IPIgnored bool `yaml:"-"`
}

// Configured reports whether the guest configures this adapter.
func (a *Adapter) Configured() bool {
	return a.Kind != ForwardedPort && (a.AutoConfig == nil || *a.AutoConfig)
}

// Address is the static address with its prefix length; ok is false for
// dhcp and forwarded ports. Valid after Decode.
func (a *Adapter) Address() (netip.Prefix, bool) {
	if a.Type != AddrStatic {
		return netip.Prefix{}, false
	}
	ip, err := netip.ParseAddr(a.IP)
	if err != nil {
		return netip.Prefix{}, false
	}
	bits, ok := maskBits(a.Netmask, ip.Is4())
	if !ok {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(ip, bits), true
}

// GatewayAddr is the parsed gateway, or the zero Addr.
func (a *Adapter) GatewayAddr() netip.Addr {
	g, _ := netip.ParseAddr(a.Gateway)
	return g
}

// hostnameRE is one DNS label (RFC 1123).
var hostnameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

func (n *Network) check(c *checker, p string) {
	at := func(key string) string { return joinKey(p, key) }
	if n.Hostname != "" {
		if msg := checkHostname(n.Hostname); msg != "" {
			c.errorf(at("hostname"), "%s", msg)
		}
	}
	c.autoOr(at("renderer"), &n.Renderer, Renderers, "renderer")
	if len(n.Adapters) > MaxAdapters {
		c.errorf(at("adapters"), "%d adapters; at most %d", len(n.Adapters), MaxAdapters)
		return
	}
	// The walk checks the section before its entries; the rules across
	// entries need their defaults first.
	for i := range n.Adapters {
		n.Adapters[i].normalize()
	}
	n.assignIndexes(c, at("adapters"))
	n.checkOverlaps(c, at("adapters"))
}

// assignIndexes gives each adapter without a MAC or an index the lowest
// free index, in order, as Vagrant gives each network the lowest free
// VirtualBox slot (an adapter given by MAC takes a slot too); and reports
// two adapters on one device.
func (n *Network) assignIndexes(c *checker, p string) {
	entry := func(i int, key string) string { return fmt.Sprintf("%s[%d].%s", p, i, key) }
	dup := func(i, j int, key, what string) {
		src, line, col := c.m.locate(entry(j, key))
		c.errorf(entry(i, key), "%s is also the device of %s[%d] at %s:%d:%d: two adapters on one device", what, p, j, src, line, col)
	}
	byIndex, byMAC := map[int]int{}, map[string]int{}
	for i, a := range n.Adapters {
		if a.Kind == ForwardedPort {
			continue
		}
		if a.Adapter > 0 {
			if j, ok := byIndex[a.Adapter]; ok {
				dup(i, j, "adapter", "adapter "+strconv.Itoa(a.Adapter))
			} else {
				byIndex[a.Adapter] = i
			}
		}
		if a.MAC != "" {
			if j, ok := byMAC[a.MAC]; ok {
				dup(i, j, "mac", "mac "+a.MAC)
			} else {
				byMAC[a.MAC] = i
			}
		}
	}
	next := 1
	for i := range n.Adapters {
		a := &n.Adapters[i]
		if a.Kind == ForwardedPort || a.Adapter != 0 || c.set[entry(i, "adapter")] {
			continue
		}
		for _, taken := byIndex[next]; taken; _, taken = byIndex[next] {
			next++
		}
		if a.MAC == "" {
			a.Adapter = next
		}
		byIndex[next] = i
	}
}

// checkOverlaps reports two static adapters whose subnets overlap: the
// kernel would route one subnet out of two devices.
func (n *Network) checkOverlaps(c *checker, p string) {
	for i := range n.Adapters {
		a, ok := n.Adapters[i].Address()
		if !ok || !n.Adapters[i].Configured() {
			continue
		}
		for j := 0; j < i; j++ {
			b, ok := n.Adapters[j].Address()
			if !ok || !n.Adapters[j].Configured() {
				continue
			}
			if a.Masked().Overlaps(b.Masked()) {
				src, line, col := c.m.locate(fmt.Sprintf("%s[%d].ip", p, j))
				c.errorf(fmt.Sprintf("%s[%d].ip", p, i), "subnet %s overlaps %s of %s[%d] at %s:%d:%d; each adapter needs its own subnet",
					a.Masked(), b.Masked(), p, j, src, line, col)
			}
		}
	}
}

// normalize applies the defaults that need no error reporting; check
// reports what is wrong. Idempotent: the section calls it before check.
func (a *Adapter) normalize() {
	a.Type, a.Protocol = strings.ToLower(a.Type), strings.ToLower(a.Protocol)
	if a.Kind == ForwardedPort {
		if a.Protocol == "" {
			a.Protocol = "tcp"
		}
		return
	}
	switch {
	case a.Type == "" && a.IP != "":
		a.Type = AddrStatic
	case a.Type == "" && a.Kind == PublicNetwork:
		a.Type = AddrDHCP // as Vagrant: a bridged network without ip asks DHCP
	}
	a.IPIgnored = a.Type == AddrDHCP && a.IP != ""
	if mac, ok := NormalizeMAC(a.MAC); ok {
		a.MAC = mac
	}
	if ip, err := netip.ParseAddr(a.IP); err == nil && a.Netmask == "" && a.Type == AddrStatic {
		a.Netmask = "255.255.255.0"
		if ip.Is6() {
			a.Netmask = "64"
		}
	}
}

func (a *Adapter) check(c *checker, p string) {
	a.normalize()
	at := func(key string) string { return joinKey(p, key) }
	if a.ID != "" && (len(a.ID) > 64 || strings.ContainsAny(a.ID, "\x00\n")) {
		c.errorf(at("id"), "want a short name of up to 64 characters")
	}
	switch a.Kind {
	case PrivateNetwork, PublicNetwork:
	case ForwardedPort:
		a.checkForwarded(c, p)
		return
	case "":
		c.errorf(at("kind"), "required: %s, %s or %s (Vagrant's config.vm.network type)", PrivateNetwork, PublicNetwork, ForwardedPort)
		return
	default:
		c.errorf(at("kind"), "unknown adapter kind %s; want %s, %s or %s", quoteShort(a.Kind), PrivateNetwork, PublicNetwork, ForwardedPort)
		return
	}
	for _, k := range []string{"guest", "host", "host_ip", "protocol"} {
		if c.set[at(k)] {
			c.errorf(at(k), "%s is a forwarded_port key; a %s has none", k, a.Kind)
		}
	}

	var ip netip.Addr
	if a.IP != "" {
		var err error
		if ip, err = netip.ParseAddr(a.IP); err != nil || ip.Zone() != "" || ip.Is4In6() {
			c.errorf(at("ip"), "%s is not an IPv4 or IPv6 address", quoteShort(a.IP))
			ip = netip.Addr{}
		} else if ip.IsLoopback() || ip.IsMulticast() || ip.IsUnspecified() {
			c.errorf(at("ip"), "%s is a loopback, multicast or unspecified address; give the adapter's own address", a.IP)
			ip = netip.Addr{}
		}
	}
	switch a.Type {
	case "":
		c.errorf(at("ip"), "required: a private_network needs ip, or type: dhcp")
	case AddrStatic:
		if a.IP == "" {
			c.errorf(at("ip"), "required with type: static")
		}
	case AddrDHCP:
		// An ip here is ignored (IPIgnored) and the capability warns:
		// Vagrant passes the host adapter's address with dhcp.
	default:
		c.errorf(at("type"), "unknown type %s; want static or dhcp", quoteShort(a.Type))
	}

	if a.Type == AddrStatic && ip.IsValid() {
		a.checkMask(c, at("netmask"), ip)
	} else if a.Type == AddrDHCP && a.Netmask != "" && !a.IPIgnored {
		c.errorf(at("netmask"), "netmask applies to a static ip; DHCP gives its own")
	}

	if a.Gateway != "" {
		g, err := netip.ParseAddr(a.Gateway)
		switch {
		case err != nil || g.Zone() != "":
			c.errorf(at("gateway"), "%s is not an IPv4 or IPv6 address", quoteShort(a.Gateway))
		case a.Type == AddrDHCP:
			c.errorf(at("gateway"), "gateway applies to a static ip; with DHCP use use_dhcp_assigned_default_route")
		case ip.IsValid() && g.Is4() != ip.Is4():
			c.errorf(at("gateway"), "gateway %s and ip %s are not the same IP version", a.Gateway, a.IP)
		case ip.IsValid():
			if pfx, ok := a.Address(); ok && !pfx.Masked().Contains(g) {
				c.errorf(at("gateway"), "gateway %s is outside the adapter's subnet %s", a.Gateway, pfx.Masked())
			} else if ok && g == ip {
				c.errorf(at("gateway"), "gateway %s is the adapter's own address", a.Gateway)
			}
		}
	}
	if a.UseDHCPDefaultRoute && a.Type != AddrDHCP {
		c.errorf(at("use_dhcp_assigned_default_route"), "applies to type: dhcp only; a static adapter takes gateway")
	}

	if _, ok := NormalizeMAC(a.MAC); a.MAC != "" && !ok {
		c.errorf(at("mac"), "%s is not a MAC address; want 08:00:27:aa:bb:cc or VirtualBox's 080027AABBCC", quoteShort(a.MAC))
	}
	switch {
	case c.set[at("adapter")] && a.Adapter == 0:
		c.errorf(at("adapter"), "adapter 0 is the NAT/primary device, which is never configured; the first extra device is 1")
	case a.Adapter < 0 || a.Adapter > MaxAdapterIndex:
		c.errorf(at("adapter"), "want 1 to %d (0 is the primary device), got %d", MaxAdapterIndex, a.Adapter)
	case a.Adapter > 0 && a.MAC != "":
		c.errorf(at("adapter"), "give mac or adapter, not both: the MAC finds the device wherever it is")
	}
}

// checkMask checks the netmask against the address family (normalize
// gave the default: 255.255.255.0 for IPv4, 64 for IPv6, as Vagrant).
func (a *Adapter) checkMask(c *checker, p string, ip netip.Addr) {
	if _, ok := maskBits(a.Netmask, ip.Is4()); ok {
		return
	}
	max := 32
	if ip.Is6() {
		max = 128
	}
	m, err := netip.ParseAddr(a.Netmask)
	switch {
	case err == nil && m.Is4() && ip.Is4():
		c.errorf(p, "%s is not a contiguous netmask (ones, then zeros, such as 255.255.255.0)", a.Netmask)
	case err == nil:
		c.errorf(p, "%s: an IPv6 address takes a prefix length such as 64", a.Netmask)
	default:
		c.errorf(p, "want a dotted netmask (IPv4 only) or a prefix length from 1 to %d, got %s", max, quoteShort(a.Netmask))
	}
}

// maskBits converts a dotted netmask or a prefix length ("24", "/24") to a
// prefix length.
func maskBits(s string, v4 bool) (int, bool) {
	max := 128
	if v4 {
		max = 32
	}
	if n, err := strconv.Atoi(strings.TrimPrefix(s, "/")); err == nil {
		return n, n >= 1 && n <= max
	}
	m, err := netip.ParseAddr(s)
	if err != nil || !m.Is4() || !v4 {
		return 0, false
	}
	b := m.As4()
	u := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	ones := bits.LeadingZeros32(^u)
	if ones == 0 || u<<ones != 0 {
		return 0, false
	}
	return ones, true
}

func (a *Adapter) checkForwarded(c *checker, p string) {
	at := func(key string) string { return joinKey(p, key) }
	for _, k := range []string{"type", "ip", "netmask", "gateway", "mac", "adapter", "auto_config", "use_dhcp_assigned_default_route"} {
		if c.set[at(k)] {
			c.errorf(at(k), "a forwarded_port takes guest, host, host_ip and protocol, not %s", k)
		}
	}
	for _, k := range []struct {
		name string
		v    int
	}{{"guest", a.Guest}, {"host", a.Host}} {
		if k.v < 1 || k.v > 65535 {
			c.errorf(at(k.name), "want a port from 1 to 65535, got %d", k.v)
		}
	}
	switch a.Protocol {
	case "tcp", "udp":
	default:
		c.errorf(at("protocol"), "want tcp or udp, got %s", quoteShort(a.Protocol))
	}
	if a.HostIP != "" {
		if _, err := netip.ParseAddr(a.HostIP); err != nil {
			c.errorf(at("host_ip"), "%s is not an IP address", quoteShort(a.HostIP))
		}
	}
}

// NormalizeMAC reads a MAC written with colons, dashes or none (VirtualBox's
// 080027AABBCC) and writes it lower-case with colons.
func NormalizeMAC(s string) (string, bool) {
	if len(s) == 12 && strings.Trim(strings.ToLower(s), "0123456789abcdef") == "" {
		s = strings.Join([]string{s[0:2], s[2:4], s[4:6], s[6:8], s[8:10], s[10:12]}, ":")
	}
	hw, err := net.ParseMAC(s)
	if err != nil || len(hw) != 6 {
		return s, false
	}
	return hw.String(), true
}

// CheckHostname says what is wrong with a short or fully qualified name
// (RFC 1123), or "": for the cloud-config mapping, whose messages name the
// operator's key.
func CheckHostname(h string) string { return checkHostname(h) }

// checkHostname accepts a short or fully qualified name (RFC 1123).
func checkHostname(h string) string {
	if len(h) > maxHostname {
		return fmt.Sprintf("a hostname is at most %d characters, got %d", maxHostname, len(h))
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if !hostnameRE.MatchString(label) {
			return fmt.Sprintf("%s is not a hostname: labels of letters, digits and -, 1 to 63 characters, not starting or ending with -", quoteShort(h))
		}
	}
	if strings.Trim(strings.ReplaceAll(h, ".", ""), "0123456789") == "" {
		return fmt.Sprintf("%s is all digits: a hostname must not look like an address", quoteShort(h))
	}
	return ""
}
