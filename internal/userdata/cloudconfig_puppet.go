package userdata

import (
	"gopkg.in/yaml.v3"
)

// cloud-init's puppet: (cc_puppet) maps onto our puppet: key for key: the
// schema takes cc_puppet's names. What only cloud-init's aio installer
// reads is named in the unsupported-keys warning; exec keeps cloud-init's
// default (false: the service enrols in the background).
var ccPuppetIgnored = map[string]bool{"collection": true, "aio_install_url": true, "cleanup": true}

func mapPuppet(m *ccMapper, key, value *yaml.Node) {
	if value.ShortTag() == "!!null" {
		return
	}
	if value.Kind != yaml.MappingNode {
		m.errorf(value, "puppet", "want a mapping of cc_puppet's keys (install, conf, csr_attributes, …)")
		return
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: value.Line, Column: value.Column}
	exec := false
	for i := 0; i+1 < len(value.Content); i += 2 {
		k, v := value.Content[i], value.Content[i+1]
		if k.Kind == yaml.ScalarNode && ccPuppetIgnored[k.Value] {
			m.ignore("puppet." + k.Value)
			continue
		}
		exec = exec || k.Value == "exec"
		out.Content = append(out.Content, k, literalTree(v))
	}
	if !exec {
		addKey(out, "exec", key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false", Line: key.Line, Column: key.Column})
	}
	m.set("puppet", key, out)
}

// literalTree copies a value with every scalar made literal (no ${}
// interpolation), as everything from cloud-config is.
func literalTree(v *yaml.Node) *yaml.Node {
	switch v.Kind {
	case yaml.ScalarNode:
		if v.ShortTag() == "!!str" {
			return literal(v)
		}
		return v
	case yaml.MappingNode, yaml.SequenceNode:
		c := *v
		c.Content = make([]*yaml.Node, len(v.Content))
		for i, e := range v.Content {
			c.Content[i] = literalTree(e)
		}
		return &c
	}
	return v
}
