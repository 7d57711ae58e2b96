package userdata

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/opsboot/bootstrap/internal/config"
)

func collectHostKey(m *ccMapper, key, value *yaml.Node) {
	if m.host == nil {
		m.host = map[string][2]*yaml.Node{}
	}
	m.host[key.Value] = [2]*yaml.Node{key, value}
}

// mapHostname maps the host keys onto network.hostname and
// network.etc_hosts with cloud-init's meaning:
//   - fqdn wins over hostname; a hostname with dots is the fqdn;
//   - preserve_hostname: true sets no name at all (and so leaves
//     /etc/hosts alone too: bootstrap keeps it only with the name it sets);
//   - manage_etc_hosts true, template or localhost keeps the 127.0.1.1
//     line; false, or left out (cloud-init's default), leaves /etc/hosts;
//   - with no name given, cloud-init takes the datasource's: ${hostname},
//     when manage_etc_hosts is on or preserve_hostname: false is written
//     (a document with only manage_etc_hosts: false asks for nothing).
func (m *ccMapper) mapHostname() {
	if len(m.host) == 0 {
		return
	}
	get := func(k string) (key, value *yaml.Node) {
		kv, ok := m.host[k]
		if !ok || kv[1].ShortTag() == "!!null" {
			return nil, nil
		}
		return kv[0], kv[1]
	}
	flag := func(k string) (set, on bool) {
		key, v := get(k)
		if key == nil {
			return false, false
		}
		if v.Kind == yaml.ScalarNode && isTrue(v.Value) {
			return true, true
		}
		if v.Kind == yaml.ScalarNode && isFalse(v.Value) {
			return true, false
		}
		m.errorf(v, k, "want true or false")
		return false, false
	}
	preserveSet, preserve := flag("preserve_hostname")
	manageSet, manage := false, false
	if k, v := get("manage_etc_hosts"); k != nil {
		manageSet = true
		switch {
		case v.Kind == yaml.ScalarNode && (isTrue(v.Value) || v.Value == "template" || v.Value == "localhost"):
			manage = true
		case v.Kind == yaml.ScalarNode && isFalse(v.Value):
		default:
			m.errorf(v, "manage_etc_hosts", "want true, false, template or localhost")
		}
	}
	nameKey, name := get("fqdn")
	from := "fqdn"
	if hk, hv := get("hostname"); nameKey == nil {
		nameKey, name, from = hk, hv, "hostname"
	} else if hk != nil && name.Kind == yaml.ScalarNode && hv.Kind == yaml.ScalarNode {
		if short, _, _ := strings.Cut(name.Value, "."); !strings.EqualFold(short, hv.Value) {
			m.d.warnf("%s:%d:%d: hostname: %q is not the first label of fqdn %q; the short name is taken from fqdn",
				m.source, hv.Line, hv.Column, hv.Value, name.Value)
		}
	}
	if preserve {
		if nameKey != nil || manage {
			k := m.host["preserve_hostname"][0]
			m.d.warnf("%s:%d:%d: preserve_hostname: true: the machine keeps its name, so hostname, fqdn and manage_etc_hosts set nothing (bootstrap keeps /etc/hosts only with the name it sets)",
				m.source, k.Line, k.Column)
		}
		return
	}
	var at *yaml.Node
	switch {
	case nameKey != nil:
		if name.Kind == yaml.ScalarNode {
			if msg := config.CheckHostname(name.Value); msg != "" {
				m.errorf(name, from, "%s", msg)
				return
			}
		}
		at = nameKey
		name = literal(name)
		m.renamed["network.hostname"] = from
	case manage || preserveSet:
		// The datasource's name, as cloud-init takes it: expanded, not
		// literal (the one value here the operator did not write).
		at = m.host["manage_etc_hosts"][0]
		if !manage {
			at = m.host["preserve_hostname"][0]
		}
		name = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: "${hostname}", Line: at.Line, Column: at.Column}
	default:
		return // manage_etc_hosts: false alone asks for nothing
	}
	network := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: at.Line, Column: at.Column}
	addKey(network, "hostname", at, name)
	etcAt := at
	if manageSet {
		etcAt = m.host["manage_etc_hosts"][0]
	}
	value := "false"
	if manage {
		value = "true"
	}
	addKey(network, "etc_hosts", etcAt, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: value, Line: etcAt.Line, Column: etcAt.Column})
	m.set("network", at, network)
}
