package netsetup

import (
	"crypto/sha1"
	"fmt"
	"path"
	"strings"
)

// networkManager writes a keyfile per adapter, mode 0600 (NetworkManager
// ignores keyfiles readable by others), with a UUID derived from the
// connection id, so it is the same on every run and `nmcli connection up`
// finds it again.
type networkManager struct{}

const nmDir = "/etc/NetworkManager/system-connections"

func (networkManager) Dirs() []string { return []string{nmDir} }
func (networkManager) Owned(p string) bool {
	b := path.Base(p)
	return path.Dir(p) == nmDir && strings.HasPrefix(b, "bootstrap-") && strings.HasSuffix(b, ".nmconnection")
}

func nmID(f Iface) string   { return "bootstrap-" + f.ID() }
func nmPath(f Iface) string { return nmDir + "/" + nmID(f) + ".nmconnection" }

// uuidNamespace is our namespace for name-based (version 5) UUIDs.
var uuidNamespace = [16]byte{0x6b, 0x1e, 0x2d, 0x3c, 0x4a, 0x59, 0x4e, 0x8f, 0x9a, 0x0b, 0x1c, 0x2d, 0x3e, 0x4f, 0x50, 0x61}

// uuid5 is RFC 9562's name-based UUID (SHA-1).
func uuid5(name string) string {
	h := sha1.New()
	h.Write(uuidNamespace[:])
	h.Write([]byte(name))
	s := h.Sum(nil)[:16]
	s[6] = s[6]&0x0f | 0x50
	s[8] = s[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", s[0:4], s[4:6], s[6:8], s[8:10], s[10:16])
}

func (networkManager) Render(ifs []Iface, _ Stack, _ func(string) ([]byte, error)) ([]File, error) {
	var out []File
	for _, f := range ifs {
		var l lines
		l.add("[connection]")
		l.add("id=%s", nmID(f))
		l.add("uuid=%s", uuid5(nmID(f)))
		l.add("type=ethernet")
		if f.MAC == "" {
			l.add("interface-name=%s", f.Name)
		}
		l.add("autoconnect=true")
		if f.MAC != "" {
			l.add("")
			l.add("[ethernet]")
			l.add("mac-address=%s", strings.ToUpper(f.MAC))
		}
		v4, v6 := "disabled", "disabled"
		switch {
		case f.DHCP:
			v4 = "auto"
		case f.Addr.Addr().Is4():
			v4 = "manual"
		default:
			v6 = "manual"
		}
		l.add("")
		l.add("[ipv4]")
		l.add("method=%s", v4)
		switch {
		case f.DHCP && f.KeepDHCPRoute:
			l.add("route-metric=%d", f.Metric())
		case f.DHCP:
			l.add("never-default=true")
		case v4 == "manual":
			l.add("address1=%s", f.Addr)
			if f.Gate.IsValid() {
				l.add("gateway=%s", f.Gate)
				l.add("route-metric=%d", f.Metric())
			} else {
				l.add("never-default=true")
			}
		}
		l.add("")
		l.add("[ipv6]")
		l.add("method=%s", v6)
		if v6 == "manual" {
			l.add("address1=%s", f.Addr)
			if f.Gate.IsValid() {
				l.add("gateway=%s", f.Gate)
				l.add("route-metric=%d", f.Metric())
			} else {
				l.add("never-default=true")
			}
		}
		out = append(out, File{Path: nmPath(f), Mode: 0o600, Content: withMarker(l...), Dev: f.ID()})
	}
	return out, nil
}

func (networkManager) Reload(f Iface, _ Stack, file string) [][]string {
	return [][]string{{"nmcli", "connection", "load", file}, {"nmcli", "connection", "up", "uuid", uuid5(nmID(f))}}
}
