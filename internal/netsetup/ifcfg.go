package netsetup

import (
	"path"
	"strings"
)

// ifcfg writes RHEL's network-scripts file per adapter. Its name is fixed
// by the format (ifcfg-DEV), so only files carrying the Marker are ours.
type ifcfg struct{}

const ifcfgDir = "/etc/sysconfig/network-scripts"

func (ifcfg) Dirs() []string { return []string{ifcfgDir} }
func (ifcfg) Owned(p string) bool {
	return path.Dir(p) == ifcfgDir && strings.HasPrefix(path.Base(p), "ifcfg-")
}

func ifcfgPath(f Iface) string { return ifcfgDir + "/ifcfg-" + f.ID() }

func (ifcfg) Render(ifs []Iface, _ Stack, _ func(string) ([]byte, error)) ([]File, error) {
	var out []File
	for _, f := range ifs {
		var l lines
		if f.Name != "" {
			l.add("DEVICE=%s", f.Name)
		}
		if f.MAC != "" {
			l.add("HWADDR=%s", strings.ToUpper(f.MAC))
		}
		l.add("TYPE=Ethernet")
		l.add("ONBOOT=yes")
		l.add("PEERDNS=no")
		switch {
		case f.DHCP:
			l.add("BOOTPROTO=dhcp")
			if f.KeepDHCPRoute {
				l.add("DEFROUTE=yes")
				l.add("METRIC=%d", f.Metric())
				l.add("IPV4_ROUTE_METRIC=%d", f.Metric())
			} else {
				l.add("DEFROUTE=no")
			}
		case f.Addr.Addr().Is4():
			l.add("BOOTPROTO=none")
			l.add("IPADDR=%s", f.Addr.Addr())
			l.add("PREFIX=%d", f.Addr.Bits())
			if f.Gate.IsValid() {
				l.add("GATEWAY=%s", f.Gate)
				l.add("DEFROUTE=yes")
				l.add("METRIC=%d", f.Metric())
				l.add("IPV4_ROUTE_METRIC=%d", f.Metric())
			} else {
				l.add("DEFROUTE=no")
			}
		default:
			l.add("BOOTPROTO=none")
			l.add("IPV6INIT=yes")
			l.add("IPV6_AUTOCONF=no")
			l.add("IPV6ADDR=%s", f.Addr)
			if f.Gate.IsValid() {
				l.add("IPV6_DEFAULTGW=%s", f.Gate)
				l.add("IPV6_DEFROUTE=yes")
				l.add("IPV6_ROUTE_METRIC=%d", f.Metric())
			} else {
				l.add("IPV6_DEFROUTE=no")
			}
		}
		out = append(out, File{Path: ifcfgPath(f), Mode: 0o644, Content: withMarker(l...), Dev: f.ID()})
	}
	return out, nil
}

func (ifcfg) Reload(f Iface, _ Stack, _ string) [][]string {
	return [][]string{{"ifdown", f.Name}, {"ifup", f.Name}}
}
