package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Merged is the result of merging layers: one tree of nodes, each still
// knowing the layer and position it came from.
type Merged struct {
	root    *yaml.Node
	sources map[*yaml.Node]string         // every node → its layer's source
	keys    map[*yaml.Node]map[string]int // merged mappings → key → index in Content
	rank    map[string]int                // source → layer index, to sort errors
}

// Merge merges layers in order, later over earlier:
//
// Mappings merge key by key. Lists of things with an identity (files by
// path, and every list whose entry type tags a field config:"key") merge by
// that identity: a later entry replaces the earlier one with the same key in
// place, new entries are appended, and {KEY: …, remove: true} deletes the
// inherited entry. Other lists and scalars replace. A later layer
// may not change a key's kind (mapping ↔ sequence ↔ scalar): that is an
// error naming both sources and positions. An explicit null (key: ~) resets
// the key to its default, and a later layer may then set it again with any
// kind. The include key is not merged: each layer's includes are resolved
// by the engine (Layer.Includes) before merging.
//
// Layers are not modified. Nil layers are skipped.
func Merge(layers []*Layer) (*Merged, error) {
	m := &Merged{
		root:    emptyMapping(nil),
		sources: map[*yaml.Node]string{},
		keys:    map[*yaml.Node]map[string]int{},
		rank:    map[string]int{},
	}
	m.keys[m.root] = map[string]int{}
	var errs ErrorList
	for i, l := range layers {
		if l == nil || l.Root == nil {
			continue
		}
		if _, ok := m.rank[l.Source]; !ok {
			m.rank[l.Source] = i
		}
		root := deref(l.Root)
		if root != nil && root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
			root = deref(root.Content[0])
		}
		if root == nil || isNull(root) {
			continue
		}
		m.register(root, l.Source, 0)
		if root.Kind != yaml.MappingNode {
			errs = append(errs, &Error{Source: l.Source, Line: root.Line, Column: root.Column,
				Msg: fmt.Sprintf("want a mapping of keys at the top of the layer, got %s", kindName(root))})
			continue
		}
		if _, ok := m.sources[m.root]; !ok { // the first layer places the root
			m.root.Line, m.root.Column = root.Line, root.Column
			m.sources[m.root] = l.Source
		}
		errs = append(errs, m.mergeMapping(m.root, root, "", true)...)
	}
	if len(errs) > 0 {
		errs.sortBy(m.rankOf)
		return nil, errs
	}
	return m, nil
}

// register records the source of every node of a layer.
func (m *Merged) register(n *yaml.Node, source string, depth int) {
	if n == nil || depth > 10000 {
		return
	}
	if _, ok := m.sources[n]; ok {
		return
	}
	m.sources[n] = source
	for _, c := range n.Content {
		m.register(c, source, depth+1)
	}
}

// mergeMapping merges src into dst, a mapping that Merge owns.
func (m *Merged) mergeMapping(dst, src *yaml.Node, path string, top bool) ErrorList {
	var errs ErrorList
	index := m.keys[dst]
	for i := 0; i+1 < len(src.Content); i += 2 {
		k, v := deref(src.Content[i]), deref(src.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode {
			continue // not a valid key; a checked layer has none
		}
		if v == nil {
			v = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!null", Line: k.Line, Column: k.Column}
			m.sources[v] = m.sources[k]
		}
		if top && k.Value == "include" {
			continue
		}
		p := joinKey(path, k.Value)
		j, ok := index[k.Value]
		if !ok {
			index[k.Value] = len(dst.Content)
			dst.Content = append(dst.Content, k, m.own(v, p, &errs))
			continue
		}
		old := dst.Content[j+1]
		switch {
		case isNull(old) || isNull(v):
			dst.Content[j], dst.Content[j+1] = k, m.own(v, p, &errs)
		case old.Kind == yaml.SequenceNode && v.Kind == yaml.SequenceNode && keyedList(p) != nil:
			dst.Content[j], dst.Content[j+1] = k, m.mergeKeyed(old, v, p, &errs)
		case old.Kind != v.Kind:
			errs = append(errs, &Error{
				Source: m.sources[v], Line: v.Line, Column: v.Column, Path: p,
				Msg: fmt.Sprintf("%s here cannot replace %s set at %s:%d:%d; a later layer may not change a key's kind",
					kindName(v), kindName(old), m.sources[old], old.Line, old.Column),
			})
		case v.Kind == yaml.MappingNode:
			errs = append(errs, m.mergeMapping(old, v, p, false)...)
		default:
			dst.Content[j], dst.Content[j+1] = k, v
		}
	}
	return errs
}

// own returns v ready to be placed in the merged tree: mappings are copied
// so later layers can merge into them without touching the layer's nodes;
// sequences and scalars are only ever replaced, so they are shared.
func (m *Merged) own(v *yaml.Node, path string, errs *ErrorList) *yaml.Node {
	if v.Kind == yaml.SequenceNode && keyedList(path) != nil {
		// The first layer's removals have nothing to remove: reported.
		return m.mergeKeyed(nil, v, path, errs)
	}
	if v.Kind != yaml.MappingNode {
		return v
	}
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: v.Line, Column: v.Column, Style: v.Style}
	m.sources[n] = m.sources[v]
	m.keys[n] = map[string]int{}
	*errs = append(*errs, m.mergeMapping(n, v, path, false)...)
	return n
}

// mergeKeyed merges the keyed list src over old (nil for none): entries
// with an earlier entry's identity replace it where it stood, others are
// appended, removals delete. Two entries with one identity in the same layer
// are both kept, for validation to report as duplicates.
func (m *Merged) mergeKeyed(old, src *yaml.Node, path string, errs *ErrorList) *yaml.Node {
	elem := keyedList(path)
	key := schemaOf(elem).key
	out := &yaml.Node{Kind: yaml.SequenceNode, Tag: "!!seq", Line: src.Line, Column: src.Column, Style: src.Style}
	m.sources[out] = m.sources[src]
	index := map[string]int{} // identity → position in entries, for inherited entries
	var entries []*yaml.Node
	if old != nil {
		for _, e := range old.Content {
			if id, _, ok := entryKey(deref(e), key, elem); ok {
				index[id] = len(entries)
			}
			entries = append(entries, e)
		}
	}
	for i, e := range src.Content {
		e = deref(e)
		id, remove, ok := entryKey(e, key, elem)
		j, inherited := index[id]
		switch {
		case !ok: // no identity: validation reports it
			entries = append(entries, e)
		case remove && inherited && entries[j] != nil:
			entries[j] = nil
			delete(index, id)
		case remove:
			*errs = append(*errs, &Error{Source: m.sources[e], Line: e.Line, Column: e.Column,
				Path: fmt.Sprintf("%s[%d]", path, i),
				Msg:  fmt.Sprintf("remove: no earlier layer has an entry with %s %s", key, quoteShort(id))})
		case inherited && entries[j] != nil:
			entries[j] = e
			delete(index, id) // a second entry in this layer is a duplicate, not a replacement
		default:
			entries = append(entries, e)
		}
	}
	for _, e := range entries {
		if e != nil {
			out.Content = append(out.Content, e)
		}
	}
	return out
}

// entryKey returns a list entry's identity as written (before ${fact}
// expansion), and whether it is a removal. An entry written as one scalar
// (a shorthand such as a package name) gets the identity its type derives
// from the scalar.
func entryKey(e *yaml.Node, key string, elem reflect.Type) (id string, remove, ok bool) {
	switch {
	case e == nil:
		return "", false, false
	case e.Kind == yaml.MappingNode:
		for i := 0; i+1 < len(e.Content); i += 2 {
			k, v := e.Content[i].Value, deref(e.Content[i+1])
			switch {
			case k == key && v != nil && v.Kind == yaml.ScalarNode && !isNull(v):
				id, ok = v.Value, true
			case k == removeKey && v != nil && v.Kind == yaml.ScalarNode:
				remove = isTrueText(v.Value)
			}
		}
		return id, remove, ok
	case e.Kind == yaml.ScalarNode && !isNull(e):
		sh, isShort := reflect.New(elem).Interface().(shorthand)
		if !isShort {
			return "", false, false
		}
		sh.fromScalar(e.Value)
		f := reflect.ValueOf(sh).Elem().Field(schemaOf(elem).fields[key].index)
		if f.Kind() != reflect.String || f.String() == "" {
			return "", false, false
		}
		return f.String(), false, true
	}
	return "", false, false
}

// keyedList returns the entry type of the list at path (a dotted key path
// such as files or packages.install) when its entries have an identity,
// else nil.
func keyedList(path string) reflect.Type {
	t := reflect.TypeOf(Config{})
	for _, seg := range strings.Split(path, ".") {
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		if t.Kind() != reflect.Struct {
			return nil
		}
		f, ok := schemaOf(t).fields[seg]
		if !ok {
			return nil
		}
		t = t.Field(f.index).Type
	}
	if t.Kind() != reflect.Slice {
		return nil
	}
	elem := t.Elem()
	if elem.Kind() != reflect.Struct || schemaOf(elem).key == "" {
		return nil
	}
	return elem
}

func (m *Merged) rankOf(source string) int {
	if r, ok := m.rank[source]; ok {
		return r
	}
	return len(m.rank)
}

// Origin tells where the value at path (like files[2].mode or
// aws.s3.endpoint) was set: the layer's source and the value's position.
// It returns "", 0, 0 when no layer set it.
func (m *Merged) Origin(path string) (source string, line, col int) {
	segs := parsePath(path)
	if segs == nil && path != "" {
		return "", 0, 0
	}
	n := lookupPath(m.root, segs, false)
	if n == nil {
		return "", 0, 0
	}
	return m.sources[n], n.Line, n.Column
}

// locate is Origin for messages: when path was not set (a missing
// field), it falls back to the nearest enclosing value that was.
func (m *Merged) locate(path string) (source string, line, col int) {
	n := lookupPath(m.root, parsePath(path), true)
	return m.sources[n], n.Line, n.Column
}

// Decode expands ${fact} references in every string value, decodes the
// merged tree into a Config, applies defaults and validates it. All
// problems are returned as an ErrorList, sorted by layer and position.
func (m *Merged) Decode(facts map[string]string) (*Config, error) {
	d := &decoder{
		source: func(n *yaml.Node) string { return m.sources[n] },
		expand: func(s string) (string, error) { return Expand(s, facts) },
	}
	var cfg Config
	d.decodeInto(m.root, &cfg, "")
	c := &checker{m: m, set: d.set, failed: d.errs}
	c.walk(reflect.ValueOf(&cfg).Elem(), "")
	errs := append(d.errs, c.errs...)
	if len(errs) > 0 {
		errs.sortBy(m.rankOf)
		return nil, errs
	}
	cfg.merged = m
	return &cfg, nil
}

type pathSeg struct {
	key   string
	index int // ≥ 0 for a list index
}

// parsePath splits "files[2].mode" into files, [2], mode. It returns nil
// for a malformed path.
func parsePath(p string) []pathSeg {
	var segs []pathSeg
	for p != "" {
		switch {
		case p[0] == '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return nil
			}
			i, err := strconv.Atoi(p[1:end])
			if err != nil || i < 0 {
				return nil
			}
			segs = append(segs, pathSeg{index: i})
			p = p[end+1:]
		case p[0] == '.':
			p = p[1:]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			segs = append(segs, pathSeg{key: p[:end], index: -1})
			p = p[end:]
		}
	}
	return segs
}

// lookupPath follows segs from n. When nearest is set it returns the
// deepest node found instead of nil.
func lookupPath(n *yaml.Node, segs []pathSeg, nearest bool) *yaml.Node {
	for _, s := range segs {
		next := child(n, s)
		if next == nil {
			if nearest {
				return n
			}
			return nil
		}
		n = next
	}
	return n
}

func child(n *yaml.Node, s pathSeg) *yaml.Node {
	n = deref(n)
	if n == nil {
		return nil
	}
	if s.index >= 0 {
		if n.Kind == yaml.SequenceNode && s.index < len(n.Content) {
			return deref(n.Content[s.index])
		}
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	var found *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == s.key {
			found = deref(n.Content[i+1])
		}
	}
	return found
}
