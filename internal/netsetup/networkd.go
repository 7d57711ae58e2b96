package netsetup

import (
	"path"
	"strings"
)

// networkd writes a .network file per adapter, named so it sorts before
// the distro's catch-all files and is recognisably ours.
type networkd struct{}

const networkdDir = "/etc/systemd/network"

func (networkd) Dirs() []string { return []string{networkdDir} }
func (networkd) Owned(p string) bool {
	b := path.Base(p)
	return path.Dir(p) == networkdDir && strings.HasPrefix(b, "50-bootstrap-") && strings.HasSuffix(b, ".network")
}

func networkdPath(f Iface) string { return networkdDir + "/50-bootstrap-" + f.ID() + ".network" }

func (networkd) Render(ifs []Iface, _ Stack, _ func(string) ([]byte, error)) ([]File, error) {
	var out []File
	for _, f := range ifs {
		var l lines
		l.add("[Match]")
		if f.MAC != "" {
			l.add("MACAddress=%s", f.MAC)
		} else {
			l.add("Name=%s", f.Name)
		}
		l.add("")
		l.add("[Network]")
		if f.DHCP {
			l.add("DHCP=ipv4")
		} else {
			l.add("DHCP=no")
			l.add("Address=%s", f.Addr)
		}
		l.add("IPv6AcceptRA=no")
		l.add("LinkLocalAddressing=ipv6")
		if f.Gate.IsValid() {
			l.add("")
			l.add("[Route]")
			l.add("Gateway=%s", f.Gate)
			l.add("Metric=%d", f.Metric())
		}
		if f.DHCP {
			l.add("")
			l.add("[DHCPv4]")
			if f.KeepDHCPRoute {
				l.add("RouteMetric=%d", f.Metric())
			} else {
				l.add("UseGateway=no")
			}
		}
		out = append(out, File{Path: networkdPath(f), Mode: 0o644, Content: withMarker(l...), Dev: f.ID()})
	}
	return out, nil
}

func (networkd) Reload(f Iface, _ Stack, _ string) [][]string {
	return [][]string{{"networkctl", "reload"}, {"networkctl", "reconfigure", f.Name}}
}
