package netsetup

import (
	"strings"
)

// netplan writes one file of its own, mode 0600 (netplan warns about
// anything more open), default routes as routes: (gateway4 is deprecated),
// for the backend the host uses. Reloads regenerate and then reconfigure
// one device; never `netplan apply`, which bounces every interface.
type netplan struct{}

const netplanPath = "/etc/netplan/60-bootstrap.yaml"

func (netplan) Dirs() []string         { return []string{"/etc/netplan"} }
func (netplan) Owned(path string) bool { return path == netplanPath }

func (netplan) Render(ifs []Iface, st Stack, _ func(string) ([]byte, error)) ([]File, error) {
	if len(ifs) == 0 {
		return nil, nil
	}
	var l lines
	l.add("network:")
	l.add("  version: 2")
	l.add("  renderer: %s", st.Backend)
	l.add("  ethernets:")
	for _, f := range ifs {
		l.add("    %s:", yamlKey(f.ID()))
		if f.MAC != "" {
			l.add("      match:")
			l.add("        macaddress: \"%s\"", f.MAC)
		}
		if f.DHCP {
			l.add("      dhcp4: true")
			if f.KeepDHCPRoute {
				l.add("      dhcp4-overrides:")
				l.add("        route-metric: %d", f.Metric())
			} else {
				l.add("      dhcp4-overrides:")
				l.add("        use-routes: false")
			}
			l.add("      dhcp6: false")
			continue
		}
		l.add("      dhcp4: false")
		l.add("      dhcp6: false")
		if f.Addr.Addr().Is6() {
			l.add("      accept-ra: false")
		}
		l.add("      addresses:")
		l.add("        - \"%s\"", f.Addr)
		if f.Gate.IsValid() {
			l.add("      routes:")
			l.add("        - to: default")
			l.add("          via: \"%s\"", f.Gate)
			l.add("          metric: %d", f.Metric())
		}
	}
	return []File{{Path: netplanPath, Mode: 0o600, Content: withMarker(l...)}}, nil
}

// yamlKey quotes an id that YAML would read as something else.
func yamlKey(s string) string {
	if strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == "" {
		return s
	}
	return "\"" + s + "\""
}

func (netplan) Reload(f Iface, st Stack, _ string) [][]string {
	if st.Backend == "NetworkManager" {
		return [][]string{{"netplan", "generate"}, {"nmcli", "connection", "reload"}, {"nmcli", "connection", "up", "id", "netplan-" + f.ID()}}
	}
	return [][]string{{"netplan", "generate"}, {"networkctl", "reload"}, {"networkctl", "reconfigure", f.Name}}
}
