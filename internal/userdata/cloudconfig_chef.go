package userdata

import (
	"encoding/json"
	"strings"

	"gopkg.in/yaml.v3"
)

// chefSame are cc_chef keys that mean the same in our chef: section.
var chefSame = map[string]bool{
	"server_url": true, "validation_name": true, "node_name": true, "environment": true,
	"run_list": true, "chef_license": true, "ssl_verify_mode": true, "install_type": true,
	"omnibus_url_retries": true, "omnibus_version": true, "log_level": true, "log_location": true,
	"file_cache_path": true, "file_backup_path": true, "pid_file": true, "json_attribs": true,
	"client_key": true, "config_path": true, "encrypted_data_bag_secret": true,
	"policy_name": true, "policy_group": true, "validation_cert": true, "validation_key": true,
}

// chefBools are cc_chef's boolean keys, read as YAML 1.1 booleans.
var chefBools = map[string]bool{"force_install": true, "exec": true}

// ccOmnibusInstallSh is cc_chef's default omnibus_url: install.sh, which we
// do not run (it skips the checksum when no sha tool is there); we speak
// omnitruck's metadata API ourselves.
const ccOmnibusInstallSh = "https://www.chef.io/chef/install.sh"

// mapChef maps cloud-config's chef: onto ours, with cc_chef's meaning: a
// validation_cert of "system" is the file at validation_key; exec and the
// first-boot path default as cloud-init's do. validation_cert (the PEM or
// "system") and validation_key (a path) mean what they mean to cc_chef.
func mapChef(m *ccMapper, key, value *yaml.Node) {
	if value.ShortTag() == "!!null" {
		return
	}
	if value.Kind != yaml.MappingNode {
		m.errorf(value, "chef", "want a mapping with server_url, validation_name, validation_cert, run_list, …")
		return
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: value.Line, Column: value.Column}
	has := map[string]bool{}
	var firstboot, firstbootKey *yaml.Node
	for i := 0; i+1 < len(value.Content); i += 2 {
		k, v := value.Content[i], value.Content[i+1]
		has[k.Value] = true
		switch {
		case chefSame[k.Value]:
			addKey(out, k.Value, k, literalDeep(v))
		case chefBools[k.Value]:
			addKey(out, k.Value, k, boolNode(v))
		case k.Value == "firstboot_path":
			firstboot, firstbootKey = v, k
		case k.Value == "omnibus_url":
			if v.Kind == yaml.ScalarNode && v.Value != ccOmnibusInstallSh {
				addKey(out, "omnibus_url", k, literalText(v, strings.TrimSuffix(v.Value, "/install.sh")))
			}
		case k.Value == "initial_attributes":
			if v.Kind != yaml.MappingNode {
				m.errorf(v, "chef.initial_attributes", "want a mapping of attributes")
				continue
			}
			var attrs map[string]any
			if err := v.Decode(&attrs); err != nil {
				m.errorf(v, "chef.initial_attributes", "%v", err)
				continue
			}
			js, err := json.Marshal(attrs)
			if err != nil {
				m.errorf(v, "chef.initial_attributes", "cannot be written as JSON: %v", err)
				continue
			}
			addKey(out, "initial_attributes", k, literalText(v, string(js)))
		default: // directories, show_time, exec_arguments, delete_validation_post_exec, …
			m.ignore("chef." + k.Value)
		}
	}
	if !has["exec"] { // cc_chef runs chef-client only when asked
		addKey(out, "exec", key, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false", Line: key.Line, Column: key.Column})
	}
	if !has["json_attribs"] {
		at, v := key, "/etc/chef/firstboot.json"
		if firstboot != nil && firstboot.Kind == yaml.ScalarNode {
			at, v = firstbootKey, firstboot.Value
		}
		addKey(out, "json_attribs", at, literalText(at, v))
	}
	m.set("chef", key, out)
}

// literalDeep is literal for a scalar or each scalar of a list.
func literalDeep(v *yaml.Node) *yaml.Node {
	if v.Kind != yaml.SequenceNode {
		return literal(v)
	}
	c := *v
	c.Content = make([]*yaml.Node, len(v.Content))
	for i, e := range v.Content {
		c.Content[i] = literal(e)
	}
	return &c
}
