package config

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// The strict checker walks YAML nodes against the Go types by reflection,
// rather than using yaml.v3's decoder, because yaml.v3's type errors carry
// neither a column nor a key path, and it would accept unknown keys.

// scalarType is a schema type written as one scalar with its own syntax
// (durations, modes).
type scalarType interface {
	parseScalar(text string) error
	describe() string
}

// shorthand is a mapping type that may also be written as one scalar (an
// include as just its source).
type shorthand interface {
	fromScalar(text string)
	describe() string
}

type fieldInfo struct {
	index     int
	sensitive bool // the value may be secret: never quote it
}

type structInfo struct {
	fields map[string]fieldInfo
	names  []string // sorted
	// key is the YAML name of the field tagged config:"key": the identity
	// by which entries of a list of this type merge across layers.
	key string
}

// removeKey marks a list entry that deletes the inherited entry with the
// same identity: {path: /etc/x, remove: true}. Merge consumes it; it is
// accepted only on types with a key field.
const removeKey = "remove"

// configTags reads a field's config:"…" tag: a comma-separated list of
// sensitive (never quote the value) and key (the entry's identity).
func configTags(f reflect.StructField) (sensitive, key bool) {
	for _, t := range strings.Split(f.Tag.Get("config"), ",") {
		switch strings.TrimSpace(t) {
		case "sensitive":
			sensitive = true
		case "key":
			key = true
		}
	}
	return sensitive, key
}

var structCache sync.Map // reflect.Type → *structInfo

// schemaOf lists a struct's YAML keys from its yaml tags.
func schemaOf(t reflect.Type) *structInfo {
	if v, ok := structCache.Load(t); ok {
		return v.(*structInfo)
	}
	si := &structInfo{fields: map[string]fieldInfo{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "" || name == "-" {
			continue
		}
		sensitive, key := configTags(f)
		si.fields[name] = fieldInfo{index: i, sensitive: sensitive}
		si.names = append(si.names, name)
		if key {
			si.key = name
		}
	}
	sort.Strings(si.names)
	structCache.Store(t, si)
	return si
}

// decoder fills Go values from YAML nodes, collecting every problem with
// its position and path.
type decoder struct {
	source func(*yaml.Node) string
	// expand interpolates a string value. When nil (a single layer, before
	// facts are known) references are only checked for syntax, and scalars
	// of other types that hold a reference are checked after expansion.
	expand func(string) (string, error)
	set    map[string]bool // paths given a non-null value, for defaults
	errs   ErrorList
}

func (d *decoder) fail(n *yaml.Node, path, format string, args ...any) {
	d.errs.Add(&Error{
		Source: d.source(n), Line: n.Line, Column: n.Column,
		Path: path, Msg: fmt.Sprintf(format, args...),
	})
}

// decodeInto checks n against the type of v and fills v.
func (d *decoder) decodeInto(n *yaml.Node, v any, path string) {
	if d.set == nil {
		d.set = map[string]bool{}
	}
	d.value(n, reflect.ValueOf(v).Elem(), path, false)
}

func (d *decoder) value(n *yaml.Node, v reflect.Value, path string, sensitive bool) {
	n = deref(n)
	if n == nil || isNull(n) {
		return // null: keep the zero value, so the default applies
	}
	if !d.tagOK(n, path) {
		return
	}
	d.set[path] = true
	if st, ok := v.Addr().Interface().(scalarType); ok {
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want %s, got %s", st.describe(), kindName(n))
			return
		}
		if text, ok := d.text(n, path, sensitive, false); ok {
			if err := st.parseScalar(text); err != nil {
				d.fail(n, path, "%v", err)
			}
		}
		return
	}
	switch v.Kind() {
	case reflect.Pointer:
		e := reflect.New(v.Type().Elem())
		d.value(n, e.Elem(), path, sensitive)
		v.Set(e)
	case reflect.Struct:
		sh, isShort := v.Addr().Interface().(shorthand)
		switch {
		case n.Kind == yaml.MappingNode:
			d.mapping(n, v, path)
		case n.Kind == yaml.ScalarNode && isShort:
			if text, ok := d.text(n, path, sensitive, true); ok {
				sh.fromScalar(text)
			}
		default:
			d.fail(n, path, "want %s, got %s", want(v.Type()), kindName(n))
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			hint := ""
			if n.Kind == yaml.MappingNode {
				hint = `; start each entry with "- "`
			}
			d.fail(n, path, "want a list, got %s%s", kindName(n), hint)
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			d.value(c, s.Index(i), path+"["+strconv.Itoa(i)+"]", sensitive)
		}
		v.Set(s)
	case reflect.Map:
		d.stringMap(n, v, path, sensitive)
	case reflect.String:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a string, got %s", kindName(n))
			return
		}
		if text, ok := d.text(n, path, sensitive, true); ok {
			v.SetString(text)
		}
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want true or false, got %s", kindName(n))
			return
		}
		if text, ok := d.text(n, path, sensitive, false); ok {
			switch text {
			case "true", "True", "TRUE":
				v.SetBool(true)
			case "false", "False", "FALSE":
				v.SetBool(false)
			default:
				d.fail(n, path, "want true or false, got %s", quoteShort(text))
			}
		}
	case reflect.Int:
		if n.Kind != yaml.ScalarNode {
			d.fail(n, path, "want a whole number, got %s", kindName(n))
			return
		}
		if text, ok := d.text(n, path, sensitive, false); ok {
			i, err := strconv.Atoi(text)
			if err != nil {
				d.fail(n, path, "want a whole number, got %s", quoteShort(text))
				return
			}
			v.SetInt(int64(i))
		}
	default:
		d.fail(n, path, "internal error: the schema has no decoder for %s", v.Type())
	}
}

// mapping fills a struct from a mapping, rejecting unknown and repeated keys.
func (d *decoder) mapping(n *yaml.Node, v reflect.Value, path string) {
	si := schemaOf(v.Type())
	seen := map[string]*yaml.Node{}
	var remove *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := deref(n.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode {
			at := n
			if k != nil {
				at = k
			}
			d.fail(at, path, "keys must be plain names, got %s", kindName(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			d.fail(k, path, "merge keys (<<) are not supported; repeat the keys instead")
			continue
		}
		name := k.Value
		kp := joinKey(path, name)
		if first, dup := seen[name]; dup {
			d.fail(k, kp, "duplicate key; it is already set at line %d:%d", first.Line, first.Column)
			continue
		}
		seen[name] = k
		if name == removeKey && si.key != "" {
			remove = k
			d.removeFlag(n.Content[i+1], kp)
			continue
		}
		f, ok := si.fields[name]
		if !ok {
			d.fail(k, path, "%s", unknownKey(name, si.names, path == ""))
			continue
		}
		d.value(n.Content[i+1], v.Field(f.index), kp, f.sensitive)
	}
	if remove != nil {
		if seen[si.key] == nil {
			d.fail(remove, joinKey(path, removeKey), "say which entry to remove: give its %s", si.key)
		}
		for name, k := range seen {
			if name != si.key && name != removeKey {
				d.fail(k, joinKey(path, name), "an entry with remove: true takes only %s; remove the other keys", si.key)
			}
		}
	}
}

// stringMap fills a map[string]T from a mapping whose keys are the
// operator's own (puppet.conf settings, CSR extensions), not the schema's.
func (d *decoder) stringMap(n *yaml.Node, v reflect.Value, path string, sensitive bool) {
	if n.Kind != yaml.MappingNode {
		d.fail(n, path, "want a mapping of names to values, got %s", kindName(n))
		return
	}
	out := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := deref(n.Content[i])
		if k == nil || k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
			at := n
			if k != nil {
				at = k
			}
			d.fail(at, path, "keys must be plain names, got %s", kindName(k))
			continue
		}
		kp := joinKey(path, k.Value)
		if first, dup := seen[k.Value]; dup {
			d.fail(k, kp, "duplicate key; it is already set at line %d:%d", first.Line, first.Column)
			continue
		}
		seen[k.Value] = k
		e := reflect.New(v.Type().Elem()).Elem()
		d.value(n.Content[i+1], e, kp, sensitive)
		out.SetMapIndex(reflect.ValueOf(k.Value), e)
	}
	v.Set(out)
}

// removeFlag checks the value of remove: only true means anything.
func (d *decoder) removeFlag(n *yaml.Node, path string) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode || !isTrueText(n.Value) {
		at := n
		if at == nil {
			at = &yaml.Node{}
		}
		d.fail(at, path, "want true (remove the inherited entry), or leave remove out")
	}
}

func isTrueText(s string) bool { return s == "true" || s == "True" || s == "TRUE" }

// text returns the scalar's text, interpolated when facts are known. ok is
// false when the value cannot be checked further: a reference failed, or
// (before facts are known) a non-string value depends on a fact.
func (d *decoder) text(n *yaml.Node, path string, sensitive, isString bool) (string, bool) {
	if d.expand == nil {
		_, refs, err := expand(n.Value, nil, false)
		if err != nil {
			d.failRef(n, path, err, sensitive)
			return "", false
		}
		return n.Value, isString || refs == 0
	}
	out, err := d.expand(n.Value)
	if err != nil {
		d.failRef(n, path, err, sensitive)
		return "", false
	}
	return out, true
}

func (d *decoder) failRef(n *yaml.Node, path string, err error, sensitive bool) {
	var re *refError
	if sensitive && errors.As(err, &re) {
		d.fail(n, path, "%s", re.redacted())
		return
	}
	d.fail(n, path, "%v", err)
}

// tagOK rejects explicit tags that would change what a value means behind
// the operator's back, such as !!binary content.
func (d *decoder) tagOK(n *yaml.Node, path string) bool {
	tag := n.ShortTag()
	switch n.Kind {
	case yaml.MappingNode:
		if tag == "!!map" {
			return true
		}
	case yaml.SequenceNode:
		if tag == "!!seq" {
			return true
		}
	case yaml.ScalarNode:
		switch tag {
		case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
			return true
		case "!!binary":
			d.fail(n, path, "binary values (!!binary) are not supported; write the base64 text and set encoding: base64")
			return false
		}
	}
	d.fail(n, path, "unsupported YAML tag %s here", quoteShort(tag))
	return false
}

// want describes what a type expects, for messages.
func want(t reflect.Type) string {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if p, ok := reflect.New(t).Interface().(interface{ describe() string }); ok {
		return p.describe()
	}
	switch t.Kind() {
	case reflect.Struct:
		return "a mapping with keys " + strings.Join(schemaOf(t).names, ", ")
	case reflect.Slice:
		return "a list"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int:
		return "a whole number"
	case reflect.Map:
		return "a mapping of names to values"
	}
	return t.String()
}

func kindName(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "null"
	default:
		return "a scalar"
	}
}

func joinKey(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// deref follows aliases (bounded, since yaml.v3 allows an anchor to contain
// an alias of itself). Layers from ParseLayer have none left.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == 32 {
			return nil
		}
		n = n.Alias
	}
	return n
}

// cloudConfigKeys are cloud-config keys someone may put in our YAML by
// mistake; they get a hint instead of a spelling suggestion.
var cloudConfigKeys = map[string]bool{
	"write_files": true, "runcmd": true, "bootcmd": true, "packages": true,
	"package_update": true, "package_upgrade": true, "users": true, "ssh_authorized_keys": true,
}

// unknownKey says a key is not in the schema, suggesting the closest known
// key when it is likely a typo, otherwise listing the known keys.
func unknownKey(key string, known []string, top bool) string {
	msg := "unknown key " + quoteShort(key)
	if top && cloudConfigKeys[key] {
		return msg + ": this looks like cloud-config; start the user-data with #cloud-config (files go under files:)"
	}
	if s := suggest(key, known); s != "" {
		return msg + " (did you mean " + strconv.Quote(s) + "?)"
	}
	return msg + "; known keys: " + strings.Join(known, ", ")
}

// suggest returns the known key closest to key when it is close enough to
// be a typo: case and - versus _ are ignored, and a swap of two letters
// counts as one edit.
func suggest(key string, known []string) string {
	if len(key) > 64 {
		return ""
	}
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	k := norm(key)
	best, bestDist := "", 3
	for _, c := range known {
		dist := editDistance(k, norm(c))
		limit := 2
		if len(c) <= 4 {
			limit = 1
		}
		if dist <= limit && dist < bestDist {
			best, bestDist = c, dist
		}
	}
	return best
}

// editDistance is the optimal-string-alignment distance: insertions,
// deletions, substitutions and swaps of neighbours each cost one.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
