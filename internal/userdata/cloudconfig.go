package userdata

import (
	"encoding/base64"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"github.com/opsboot/bootstrap/internal/config"
)

// cloudKey maps one top-level cloud-config key onto keys of our schema,
// keeping the positions of what the operator wrote.
type cloudKey struct {
	apply func(m *ccMapper, key, value *yaml.Node)
	// For errors the schema check finds in the mapped layer: the key of
	// ours that apply writes, and our per-entry fields under their
	// cloud-config names, so messages use the operator's words.
	ours   string
	fields map[string]string
}

// cloudKeys are the cloud-config keys bootstrap understands. Supporting
// another (chef:, puppet:) is an entry here and a function that emits our
// keys with m.set; every key not listed is named in one warning.
var cloudKeys = map[string]cloudKey{
	"write_files": {
		apply:  mapWriteFiles,
		ours:   "files",
		fields: map[string]string{"mode": "permissions", "group": "owner", "source": "source.uri"},
	},
	// These feed packages: and commands: together; their error paths are
	// translated by ccMapper.theirCommandPath.
	"packages":        {apply: mapPackages},
	"package_update":  {apply: mapPackageFlag("update")},
	"package_upgrade": {apply: mapPackageFlag("upgrade")},
	"runcmd":          {apply: mapCommands("runcmd", config.StageFinal, config.FrequencyPerInstance)},
	"bootcmd":         {apply: mapCommands("bootcmd", config.StageEarly, config.FrequencyAlways)},
	// Read together by mapHostname, after the other keys.
	"hostname":          {apply: collectHostKey},
	"fqdn":              {apply: collectHostKey},
	"manage_etc_hosts":  {apply: collectHostKey},
	"preserve_hostname": {apply: collectHostKey},
	"puppet":            {apply: mapPuppet, ours: "puppet"},
	"chef":              {apply: mapChef, ours: "chef"},
}

// theirPath turns a path in the mapped layer (files[2].mode) back into
// the cloud-config one (write_files[2].permissions).
func theirPath(p string) string {
	for theirs, ck := range cloudKeys {
		if ck.ours == "" {
			continue
		}
		rest, ok := strings.CutPrefix(p, ck.ours)
		if !ok || rest != "" && rest[0] != '[' && rest[0] != '.' {
			continue
		}
		if i := strings.Index(rest, "]."); i >= 0 {
			field, more, _ := strings.Cut(rest[i+2:], ".")
			if f, ok := ck.fields[field]; ok {
				field = f
			}
			if more != "" {
				field += "." + more
			}
			rest = rest[:i+2] + field
		}
		return theirs + rest
	}
	return p
}

// ccMapper builds our layer from one cloud-config document.
type ccMapper struct {
	d       *decoder
	source  string
	out     []*yaml.Node // key, value, key, value… of the mapped layer
	ignored map[string]bool
	// ignoredMore counts ignored keys past maxIgnoredNamed.
	ignoredMore int
	failed      bool

	packages    *yaml.Node // the packages: mapping, once a key needs it
	commands    *yaml.Node // the commands: list, from runcmd and bootcmd
	commandFrom []string   // commands[i] came from this cloud-config entry

	host    map[string][2]*yaml.Node // hostKeys given: key, value
	renamed map[string]string        // a path of ours → the operator's key
}

// cloudConfig maps a #cloud-config document onto a layer. Everything taken
// from cloud-config is literal, as it is for cloud-init: a ${ in it is
// escaped so interpolation leaves it alone.
func (d *decoder) cloudConfig(name string, data []byte) {
	first := len(d.errs)
	defer func() { sortErrors(d.errs[first:]) }()
	root, err := config.ParseDocument(name, data)
	if err != nil {
		d.addErr(name, err)
		return
	}
	m := &ccMapper{d: d, source: name, ignored: map[string]bool{}, renamed: map[string]string{"network.etc_hosts": "manage_etc_hosts"}}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if ck, ok := cloudKeys[k.Value]; ok && k.Kind == yaml.ScalarNode {
			ck.apply(m, k, v)
			continue
		}
		if k.Kind != yaml.ScalarNode {
			m.ignore("(a key that is not a string)")
			continue
		}
		m.ignore(k.Value)
	}
	m.mapHostname()
	if len(m.ignored) > 0 {
		keys := make([]string, 0, len(m.ignored))
		for k := range m.ignored {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		more := ""
		if m.ignoredMore > 0 {
			more = fmt.Sprintf(" and %d more", m.ignoredMore)
		}
		d.warnf("%s: cloud-config: ignoring unsupported keys: %s%s", name, strings.Join(keys, ", "), more)
	}
	if len(m.out) == 0 {
		return
	}
	// The mapped layer is checked even when mapping failed somewhere, so
	// the operator sees every problem at once.
	node := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: root.Line, Column: root.Column, Content: m.out}
	layer, err := config.LayerFromNode(name, node)
	if list, ok := err.(config.ErrorList); ok {
		for _, e := range list {
			if p, ok := m.renamed[e.Path]; ok {
				e.Path = p
			} else if p, ok := m.theirCommandPath(e.Path); ok {
				e.Path = p
			} else {
				e.Path = theirPath(e.Path)
			}
		}
	}
	if err != nil {
		d.addErr(name, err)
		return
	}
	if !m.failed {
		d.addLayer(layer)
	}
}

// maxIgnoredNamed bounds the ignored keys named in the warning: a document
// of a megabyte of keys must not become a warning of a megabyte.
const maxIgnoredNamed = 50

func (m *ccMapper) ignore(key string) {
	if len(key) > 64 {
		key = key[:64] + "…"
	}
	if len(m.ignored) >= maxIgnoredNamed && !m.ignored[key] {
		m.ignoredMore++
		return
	}
	m.ignored[key] = true
}

func (m *ccMapper) errorf(n *yaml.Node, path, format string, args ...any) {
	m.failed = true
	m.d.errs.Add(&config.Error{
		Source: m.source, Line: n.Line, Column: n.Column, Path: path, Msg: fmt.Sprintf(format, args...),
	})
}

// set adds key: value to the mapped layer, placed where at was written.
func (m *ccMapper) set(key string, at, value *yaml.Node) {
	m.out = append(m.out, keyNode(key, at), value)
}

func keyNode(key string, at *yaml.Node) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, Line: at.Line, Column: at.Column}
}

func addKey(mapping *yaml.Node, key string, at, value *yaml.Node) {
	mapping.Content = append(mapping.Content, keyNode(key, at), value)
}

// literal copies a scalar as a string that interpolation leaves as it is.
// Other nodes pass through, for the schema check to report.
func literal(v *yaml.Node) *yaml.Node {
	if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		return v
	}
	return literalText(v, v.Value)
}

func literalText(at *yaml.Node, text string) *yaml.Node {
	return &yaml.Node{
		Kind: yaml.ScalarNode, Tag: "!!str", Value: strings.ReplaceAll(text, "${", "$${"),
		Line: at.Line, Column: at.Column,
	}
}

// mapWriteFiles maps write_files onto files.
func mapWriteFiles(m *ccMapper, key, value *yaml.Node) {
	if value.ShortTag() == "!!null" {
		return
	}
	if value.Kind != yaml.SequenceNode {
		m.errorf(value, "write_files", "want a list of files")
		return
	}
	files := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: value.Line, Column: value.Column}
	for i, e := range value.Content {
		files.Content = append(files.Content, m.writeFile(e, "write_files["+strconv.Itoa(i)+"]"))
	}
	m.set("files", key, files)
}

// writeFile maps one write_files entry onto a files entry.
func (m *ccMapper) writeFile(e *yaml.Node, p string) *yaml.Node {
	if e.Kind != yaml.MappingNode {
		m.errorf(e, p, "want a mapping with path and content")
		// An empty entry keeps the indexes of later entries aligned.
		return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: e.Line, Column: e.Column}
	}
	out := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: e.Line, Column: e.Column}
	var contentKey, content, encoding *yaml.Node
	hasSource := false
	for i := 0; i+1 < len(e.Content); i += 2 {
		k, v := e.Content[i], e.Content[i+1]
		switch k.Value {
		case "path":
			addKey(out, "path", k, literal(v))
		case "content":
			contentKey, content = k, v
		case "encoding":
			encoding = v
		case "owner":
			if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
				addKey(out, "owner", k, v)
				break
			}
			user, group, hasGroup := strings.Cut(v.Value, ":")
			addKey(out, "owner", k, literalText(v, user))
			if hasGroup {
				addKey(out, "group", k, literalText(v, group))
			}
		case "permissions":
			addKey(out, "mode", k, m.permissions(v, p+".permissions"))
		case "append", "defer":
			addKey(out, k.Value, k, boolNode(v))
		case "source":
			hasSource = m.fileSource(out, k, v, p+".source")
		default: // anything cloud-init may add
			m.ignore("write_files." + k.Value)
		}
	}
	switch {
	case content != nil:
		m.content(out, contentKey, content, encoding, p)
	case !hasSource:
		// cloud-init writes an empty file when content is left out.
		addKey(out, "content", e, literalText(e, ""))
	}
	return out
}

// isTrue reads a boolean as cloud-init's YAML 1.1 parser would.
func isTrue(s string) bool {
	switch strings.ToLower(s) {
	case "true", "yes", "on", "y":
		return true
	}
	return false
}

func isFalse(s string) bool {
	switch strings.ToLower(s) {
	case "false", "no", "off", "n":
		return true
	}
	return false
}

// boolNode maps a YAML 1.1 boolean (yes, on, …) onto our true or false;
// anything else passes through for the schema check to report.
func boolNode(v *yaml.Node) *yaml.Node {
	if v.Kind != yaml.ScalarNode {
		return v
	}
	switch {
	case isTrue(v.Value):
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true", Line: v.Line, Column: v.Column}
	case isFalse(v.Value):
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "false", Line: v.Line, Column: v.Column}
	}
	return v
}

// commonModes are modes someone plausibly means when writing a decimal
// number (420 for 0644); other decimals made only of octal digits (644)
// were most likely meant as octal.
var commonModes = map[uint64]bool{
	0o400: true, 0o440: true, 0o444: true, 0o600: true, 0o640: true, 0o644: true,
	0o660: true, 0o664: true, 0o700: true, 0o750: true, 0o755: true, 0o775: true,
}

// permissions turns cloud-config permissions into our mode. A quoted or
// 0-led value is octal to both. A plain number without a leading 0 is
// decimal to cloud-init (YAML 1.1 integer), so it is converted, with a
// warning when it reads like an octal mode written without its 0.
func (m *ccMapper) permissions(v *yaml.Node, p string) *yaml.Node {
	if v.Kind != yaml.ScalarNode || v.ShortTag() == "!!null" {
		return v
	}
	text := strings.TrimSpace(v.Value)
	quoted := v.Style&(yaml.SingleQuotedStyle|yaml.DoubleQuotedStyle) != 0
	if v.ShortTag() == "!!int" && !quoted && !strings.HasPrefix(text, "0") {
		if n, err := strconv.ParseUint(text, 10, 32); err == nil {
			octal := fmt.Sprintf("0%o", n)
			if strings.Trim(text, "01234567") == "" && !commonModes[n] {
				m.d.warnf("%s:%d:%d: %s: %s is a decimal number to cloud-config, mode %s; quote it as \"0%s\" if you meant octal",
					m.source, v.Line, v.Column, p, text, octal, text)
			}
			text = octal
		}
	}
	return literalText(v, text)
}

// fileSource maps write_files source: {uri: …} onto our source. It reports
// whether a source was set.
func (m *ccMapper) fileSource(out, k, v *yaml.Node, p string) bool {
	if v.Kind != yaml.MappingNode {
		m.errorf(v, p, "want a mapping with uri")
		return false
	}
	set := false
	for i := 0; i+1 < len(v.Content); i += 2 {
		sk, sv := v.Content[i], v.Content[i+1]
		switch sk.Value {
		case "uri":
			addKey(out, "source", k, literal(sv))
			set = true
		case "headers":
			if len(sv.Content) > 0 {
				m.errorf(sv, p+".headers", "request headers are not supported; bootstrap fetches s3:// with the instance role and https:// without headers")
			}
		default:
			m.ignore("write_files.source." + sk.Value)
		}
	}
	return set
}

// content maps content with its cloud-init encoding: gzip is decoded here,
// base64 stays base64 (our encoding: base64). Messages never quote the
// content: it may be secret.
func (m *ccMapper) content(out, k, v, encoding *yaml.Node, p string) {
	if v.Kind != yaml.ScalarNode {
		addKey(out, "content", k, v)
		return
	}
	enc := ""
	if encoding != nil {
		enc = strings.ToLower(strings.TrimSpace(encoding.Value))
	}
	binary := v.ShortTag() == "!!binary"
	switch enc {
	case "", "text/plain":
		if binary { // YAML !!binary holds base64 text already
			if plain, err := decodeBase64(v.Value); err == nil {
				m.d.out.Plain = append(m.d.out.Plain, plain)
			}
			addKey(out, "content", k, literal(v))
			addKey(out, "encoding", encoding0(encoding, k), literalText(k, "base64"))
			return
		}
		addKey(out, "content", k, literalText(v, v.Value))
	case "b64", "base64":
		if plain, err := decodeBase64(v.Value); err == nil {
			m.d.out.Plain = append(m.d.out.Plain, plain)
		}
		addKey(out, "content", k, literal(v))
		addKey(out, "encoding", encoding0(encoding, k), literalText(encoding, "base64"))
	case "gz", "gzip", "gz+b64", "gz+base64", "gzip+b64", "gzip+base64":
		data := []byte(v.Value)
		if binary || strings.HasSuffix(enc, "b64") || strings.HasSuffix(enc, "base64") {
			var err error
			if data, err = decodeBase64(v.Value); err != nil {
				m.errorf(v, p+".content", "not valid base64, as encoding %s says", enc)
				return
			}
		}
		plain, err := gunzipBounded(data, &m.d.budget)
		if err != nil {
			m.errorf(v, p+".content", "%v (encoding %s)", err, enc)
			return
		}
		m.d.out.Plain = append(m.d.out.Plain, plain)
		if utf8.Valid(plain) {
			addKey(out, "content", k, literalText(v, string(plain)))
			return
		}
		addKey(out, "content", k, literalText(v, base64.StdEncoding.EncodeToString(plain)))
		addKey(out, "encoding", encoding0(encoding, k), literalText(encoding0(encoding, k), "base64"))
	default:
		m.errorf(encoding, p+".encoding", "unsupported encoding %q; want b64, base64, gzip, gz+b64 or text/plain", enc)
	}
}

// encoding0 places a generated encoding key at the operator's encoding
// key, or at content when there was none.
func encoding0(encoding, content *yaml.Node) *yaml.Node {
	if encoding != nil {
		return encoding
	}
	return content
}

func decodeBase64(s string) ([]byte, error) {
	s = strings.Join(strings.Fields(s), "")
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		if b, err2 := base64.RawStdEncoding.DecodeString(s); err2 == nil {
			return b, nil
		}
	}
	return b, err
}

// sortErrors orders one part's errors by position, the count of omitted
// ones last.
func sortErrors(errs config.ErrorList) {
	sort.SliceStable(errs, func(i, j int) bool {
		if a, b := errs[i].Omitted > 0, errs[j].Omitted > 0; a != b {
			return b
		}
		if errs[i].Line != errs[j].Line {
			return errs[i].Line < errs[j].Line
		}
		return errs[i].Column < errs[j].Column
	})
}
