package userdata

import (
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/opsboot/bootstrap/internal/config"
)

// cloud-init's packages, package_update, package_upgrade, runcmd and
// bootcmd, mapped onto packages: and commands: with cloud-init's meaning:
// bootcmd runs early on every boot, runcmd once per instance after
// everything else, each entry a string (for /bin/sh -c) or a list (argv).

// mapPackages maps packages: [name, "name=version", [name, version]].
func mapPackages(m *ccMapper, key, value *yaml.Node) {
	if value.ShortTag() == "!!null" {
		return
	}
	if value.Kind != yaml.SequenceNode {
		m.errorf(value, "packages", "want a list of package names, or [name, version] pairs")
		return
	}
	install := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: value.Line, Column: value.Column}
	for i, e := range value.Content {
		p := "packages[" + strconv.Itoa(i) + "]"
		switch {
		case e.Kind == yaml.ScalarNode:
			install.Content = append(install.Content, literal(e))
		case e.Kind == yaml.SequenceNode && len(e.Content) == 2 &&
			e.Content[0].Kind == yaml.ScalarNode && e.Content[1].Kind == yaml.ScalarNode:
			entry := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: e.Line, Column: e.Column}
			addKey(entry, "name", e.Content[0], literal(e.Content[0]))
			addKey(entry, "version", e.Content[1], literal(e.Content[1]))
			install.Content = append(install.Content, entry)
		case e.Kind == yaml.MappingNode:
			m.errorf(e, p, "per-manager package lists (apt:, snap:) are not supported; list the names for the target's own manager")
		default:
			m.errorf(e, p, "want a package name or a [name, version] pair")
		}
	}
	m.packageKey("install", key, install)
}

// mapPackageFlag maps package_update and package_upgrade.
func mapPackageFlag(ours string) func(m *ccMapper, key, value *yaml.Node) {
	return func(m *ccMapper, key, value *yaml.Node) {
		if value.ShortTag() == "!!null" {
			return
		}
		m.packageKey(ours, key, boolNode(value))
	}
}

// packageKey adds key: value to the packages: mapping of the mapped layer.
func (m *ccMapper) packageKey(key string, at, value *yaml.Node) {
	if m.packages == nil {
		m.packages = &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: at.Line, Column: at.Column}
		m.set("packages", at, m.packages)
	}
	addKey(m.packages, key, at, value)
}

// mapCommands returns the mapping of runcmd (final, once per instance) or
// bootcmd (early, every boot).
func mapCommands(theirs, stage, frequency string) func(m *ccMapper, key, value *yaml.Node) {
	return func(m *ccMapper, key, value *yaml.Node) {
		if value.ShortTag() == "!!null" {
			return
		}
		if value.Kind != yaml.SequenceNode {
			m.errorf(value, theirs, "want a list of commands: strings (run by /bin/sh -c) or lists (argv)")
			return
		}
		for i, e := range value.Content {
			p := theirs + "[" + strconv.Itoa(i) + "]"
			entry := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: e.Line, Column: e.Column}
			addKey(entry, "name", e, literalText(e, p))
			freq := frequency
			switch {
			case e.Kind == yaml.ScalarNode && e.ShortTag() != "!!null":
				addKey(entry, "shell", e, literal(e))
			case e.Kind == yaml.SequenceNode:
				argv, perFreq := m.cloudInitPer(e, p)
				if perFreq != "" {
					freq = perFreq
				}
				addKey(entry, "argv", e, argv)
			default:
				m.errorf(e, p, "want a string (run by /bin/sh -c) or a list (argv)")
				continue
			}
			addKey(entry, "stage", e, literalText(e, stage))
			addKey(entry, "frequency", e, literalText(e, freq))
			m.command(entry, p, key)
		}
	}
}

// cloudInitPer unwraps bootcmd's documented idiom `cloud-init-per FREQ NAME
// CMD…`, which runs CMD once: our frequency does the same job. It returns
// the argv to run and the frequency it asks for ("" when not the idiom).
func (m *ccMapper) cloudInitPer(e *yaml.Node, p string) (*yaml.Node, string) {
	argv := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: e.Line, Column: e.Column}
	for _, a := range e.Content {
		argv.Content = append(argv.Content, literal(a))
	}
	c := e.Content
	if len(c) < 4 || c[0].Kind != yaml.ScalarNode || c[0].Value != "cloud-init-per" {
		return argv, ""
	}
	freq := ""
	switch c[1].Value {
	case "always":
		freq = config.FrequencyAlways
	case "instance":
		freq = config.FrequencyPerInstance
	case "once":
		// Once ever, across instances, has no equivalent: an image's next
		// instance runs it again, which is what a first-boot tool wants.
		freq = config.FrequencyPerInstance
		m.d.warnf("%s:%d:%d: %s: cloud-init-per once runs once per instance here", m.source, e.Line, e.Column, p)
	default:
		return argv, ""
	}
	argv.Content = argv.Content[3:]
	return argv, freq
}

// command appends a commands: entry, remembering which cloud-config entry it
// came from so errors name runcmd[2], not commands[5].
func (m *ccMapper) command(entry *yaml.Node, theirs string, at *yaml.Node) {
	if m.commands == nil {
		m.commands = &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: at.Line, Column: at.Column}
		m.set("commands", at, m.commands)
	}
	m.commands.Content = append(m.commands.Content, entry)
	m.commandFrom = append(m.commandFrom, theirs)
}

// theirCommandPath turns commands[5].argv[1] into runcmd[2][1], and
// packages.install[1] into packages[1]; ok is false for other paths.
func (m *ccMapper) theirCommandPath(p string) (string, bool) {
	if rest, ok := strings.CutPrefix(p, "packages."); ok {
		for ours, theirs := range map[string]string{"install": "packages", "update": "package_update", "upgrade": "package_upgrade"} {
			if r, ok := strings.CutPrefix(rest, ours); ok && (r == "" || r[0] == '[' || r[0] == '.') {
				return theirs + strings.TrimPrefix(r, ".name"), true
			}
		}
		return p, true
	}
	rest, ok := strings.CutPrefix(p, "commands[")
	if !ok {
		return "", false
	}
	end := strings.IndexByte(rest, ']')
	i, err := strconv.Atoi(rest[:max(end, 0)])
	if end < 0 || err != nil || i >= len(m.commandFrom) {
		return p, true
	}
	rest = rest[end+1:]
	for _, field := range []string{".argv", ".shell", ".name", ".stage", ".frequency"} {
		if r, ok := strings.CutPrefix(rest, field); ok {
			rest = r
			break
		}
	}
	return m.commandFrom[i] + rest, true
}
