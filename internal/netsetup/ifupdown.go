package netsetup

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/opsboot/bootstrap/internal/badinput"
)

// ifupdown writes one marked block in /etc/network/interfaces, replaced
// whole on every run (from our first BEGIN to our last END, so a block
// duplicated by hand goes too); the text around it is kept byte for byte.
type ifupdown struct{}

const (
	interfacesPath = "/etc/network/interfaces"
	blockBegin     = "# BEGIN bootstrap network.adapters"
	blockEnd       = "# END bootstrap network.adapters"
)

func (ifupdown) Dirs() []string         { return nil }
func (ifupdown) Owned(path string) bool { return false }

func (ifupdown) Render(ifs []Iface, _ Stack, read func(string) ([]byte, error)) ([]File, error) {
	cur, err := read(interfacesPath)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if len(ifs) == 0 && !strings.Contains(string(cur), blockBegin) {
		return nil, nil // nothing of ours there, nothing to write
	}
	var block lines
	if len(ifs) > 0 {
		block.add("%s", blockBegin)
		block.add("%s", Marker)
		for i, f := range ifs {
			if i > 0 {
				block.add("")
			}
			if f.Name == "" {
				return nil, badinput.Wrap(fmt.Errorf("ifupdown matches devices by name only, and adapter %s has none (an image build): use netplan, networkd, networkmanager or ifcfg, which match the MAC", f.ID()))
			}
			block = append(block, ifupdownStanza(f)...)
		}
		block.add("%s", blockEnd)
	}
	next, err := spliceBlock(string(cur), block)
	if err != nil {
		return nil, badinput.Wrap(err) // the operator's file: fix by hand
	}
	return []File{{Path: interfacesPath, Mode: 0o644, Content: []byte(next)}}, nil
}

func ifupdownStanza(f Iface) []string {
	var l lines
	dev := f.Name
	l.add("auto %s", dev)
	switch {
	case f.DHCP:
		l.add("iface %s inet dhcp", dev)
		if f.KeepDHCPRoute {
			l.add("    metric %d", f.Metric())
		} else {
			// ifupdown's dhcp method has no switch for it: drop the route
			// the lease installed, keeping the primary's the only default.
			l.add("    post-up ip -4 route del default dev $IFACE || true")
		}
	case f.Addr.Addr().Is4():
		l.add("iface %s inet static", dev)
		l.add("    address %s", f.Addr)
	default:
		l.add("iface %s inet6 static", dev)
		l.add("    address %s", f.Addr)
		l.add("    autoconf 0")
		l.add("    accept_ra 0")
	}
	if f.Gate.IsValid() {
		fam := "-4"
		if f.Gate.Is6() {
			fam = "-6"
		}
		// Not ifupdown's gateway option: it installs the route at metric 0,
		// which collides with the primary's default route.
		l.add("    post-up ip %s route replace default via %s dev $IFACE metric %d", fam, f.Gate, f.Metric())
		l.add("    pre-down ip %s route del default via %s dev $IFACE metric %d || true", fam, f.Gate, f.Metric())
	}
	return l
}

// spliceBlock replaces everything from the first BEGIN line to the last
// END line with block (or removes it when block is empty), or appends
// block when there is none.
func spliceBlock(cur string, block []string) (string, error) {
	ls := strings.SplitAfter(cur, "\n")
	if len(ls) > 0 && ls[len(ls)-1] == "" {
		ls = ls[:len(ls)-1]
	}
	first, last := -1, -1
	for i, l := range ls {
		switch strings.TrimRight(l, "\r\n") {
		case blockBegin:
			if first < 0 {
				first = i
			}
		case blockEnd:
			last = i
		}
	}
	text := ""
	if len(block) > 0 {
		text = strings.Join(block, "\n") + "\n"
	}
	switch {
	case first >= 0 && last < first:
		return "", fmt.Errorf("%s: line %d opens our block (%q) but no %q line closes it after; fix the file by hand", interfacesPath, first+1, blockBegin, blockEnd)
	case first < 0 && last >= 0:
		return "", fmt.Errorf("%s: line %d closes our block (%q) but no %q line opens it; fix the file by hand", interfacesPath, last+1, blockEnd, blockBegin)
	case first < 0:
		if text == "" {
			return cur, nil
		}
		if cur != "" && !strings.HasSuffix(cur, "\n") {
			cur += "\n"
		}
		return cur + text, nil
	}
	return strings.Join(ls[:first], "") + text + strings.Join(ls[last+1:], ""), nil
}

func (ifupdown) Reload(f Iface, _ Stack, _ string) [][]string {
	return [][]string{{"ifdown", "--force", f.Name}, {"ifup", f.Name}}
}
