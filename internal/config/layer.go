package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Layer is one configuration document, checked against the schema but not
// yet merged or interpolated.
type Layer struct {
	Source string     // where it came from; prefixes every error about it
	Root   *yaml.Node // the document's top mapping (empty for an empty document)
}

// MaxLayerBytes bounds one layer's YAML, however it arrived: fetched, read
// from a file, or decoded from gzip or MIME user-data.
const MaxLayerBytes = 1 << 20

// Bounds on what YAML aliases may add to a document, so a "billion laughs"
// is an error rather than an out-of-memory. A layer's own size is bounded
// by whoever reads it; aliases are how a small document grows large, in
// nodes (many small copies) or in bytes (a large anchor repeated: 2,000
// aliases of a 900 KB scalar are 1.8 GB once a plan reads them).
const (
	maxAliasNodes = 10000
	maxAliasBytes = 1 << 20 // scalar bytes, as much again as a layer
)

// aliasBudget is what alias expansion may still add to one document.
type aliasBudget struct{ nodes, bytes int }

// ParseLayer parses one YAML document and checks it strictly against the
// schema: syntax errors, unknown keys, values of the wrong kind and scalars
// that do not fit their field are all reported, with positions. An empty
// document is an empty layer; more than one document is an error.
func ParseLayer(source string, data []byte) (*Layer, error) {
	root, err := ParseDocument(source, data)
	if err != nil {
		return nil, err
	}
	return checkLayer(source, root)
}

// LayerFromNode checks a layer built in memory (the userdata package maps
// cloud-config onto our keys) exactly as ParseLayer checks a parsed one.
// root may be a document node, a mapping, or nil for an empty layer.
// Aliases in root are replaced by copies of what they refer to.
func LayerFromNode(source string, root *yaml.Node) (*Layer, error) {
	if root == nil {
		return &Layer{Source: source, Root: emptyMapping(nil)}, nil
	}
	top, err := topMapping(source, root)
	if err != nil {
		return nil, err
	}
	return checkLayer(source, top)
}

// ParseDocument parses one YAML document into its top mapping, with
// positioned syntax errors, aliases expanded (bounded), and an error for a
// second document. It is exported for callers that map another schema onto
// ours (cloud-config); most callers want ParseLayer.
func ParseDocument(source string, data []byte) (root *yaml.Node, err error) {
	defer func() {
		// yaml.v3 has panicked on malformed input before; an operator
		// should get an error, not a crashed boot.
		if r := recover(); r != nil {
			root, err = nil, ErrorList{{Source: source, Msg: fmt.Sprintf("YAML parser failed: %v", r)}}
		}
	}()
	if len(data) > MaxLayerBytes {
		return nil, ErrorList{{Source: source, Msg: fmt.Sprintf("the document is %d bytes, more than the %d KiB a layer may have; split it into layers and include them",
			len(data), MaxLayerBytes>>10)}}
	}
	guard := newHeapGuard(bytes.NewReader(data), len(data))
	dec := yaml.NewDecoder(guard)
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return emptyMapping(nil), nil
		}
		if guard.spent() {
			return nil, ErrorList{{Source: source, Msg: fmt.Sprintf("the document holds too many YAML values for its size: parsing it took more than %d MiB; write large values as one block scalar or split the layer", maxParseHeap>>20)}}
		}
		return nil, ErrorList{syntaxError(source, data, err)}
	}
	var extra yaml.Node
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
	case err != nil:
		return nil, ErrorList{syntaxError(source, data, err)}
	default:
		return nil, ErrorList{{Source: source, Line: extra.Line, Column: extra.Column,
			Msg: "a second YAML document (after ---); a layer is one document: put the other in a layer of its own"}}
	}
	return topMapping(source, &doc)
}

// topMapping unwraps the document node, expands aliases and insists on a
// mapping at the top.
func topMapping(source string, n *yaml.Node) (*yaml.Node, error) {
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return emptyMapping(n), nil
		}
		n = n.Content[0]
	}
	budget := aliasBudget{nodes: maxAliasNodes, bytes: maxAliasBytes}
	n, err := unalias(n, &budget, 0)
	if err != nil {
		return nil, ErrorList{{Source: source, Line: err.at.Line, Column: err.at.Column, Msg: err.msg}}
	}
	if isNull(n) {
		return emptyMapping(n), nil
	}
	if n.Kind != yaml.MappingNode {
		return nil, ErrorList{{Source: source, Line: n.Line, Column: n.Column,
			Msg: fmt.Sprintf("want a mapping of keys at the top of the document, got %s", kindName(n))}}
	}
	return n, nil
}

func emptyMapping(at *yaml.Node) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	if at != nil {
		n.Line, n.Column = at.Line, at.Column
	}
	return n
}

type aliasError struct {
	at  *yaml.Node
	msg string
}

// unalias replaces alias nodes under n by copies of their anchors, so later
// stages see a plain tree where every node has one position and one source.
func unalias(n *yaml.Node, budget *aliasBudget, depth int) (*yaml.Node, *aliasError) {
	if depth > 200 {
		return nil, &aliasError{n, "YAML nested too deeply through aliases"}
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, &aliasError{n, "YAML alias to an unknown anchor"}
		}
		return copyNode(n.Alias, budget, depth+1, n)
	}
	for i, c := range n.Content {
		r, err := unalias(c, budget, depth+1)
		if err != nil {
			return nil, err
		}
		n.Content[i] = r
	}
	return n, nil
}

func copyNode(n *yaml.Node, budget *aliasBudget, depth int, alias *yaml.Node) (*yaml.Node, *aliasError) {
	if budget.nodes--; budget.nodes < 0 {
		return nil, &aliasError{alias, fmt.Sprintf("YAML aliases expand to more than %d values; write the values out", maxAliasNodes)}
	}
	if budget.bytes -= len(n.Value); budget.bytes < 0 {
		return nil, &aliasError{alias, fmt.Sprintf("YAML aliases expand to more than %d KiB of values (this alias repeats the anchor at line %d); write the values out or repeat less", maxAliasBytes>>10, aliasTarget(alias).Line)}
	}
	if depth > 200 {
		return nil, &aliasError{alias, "YAML nested too deeply through aliases"}
	}
	if n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			return nil, &aliasError{n, "YAML alias to an unknown anchor"}
		}
		return copyNode(n.Alias, budget, depth+1, alias)
	}
	c := *n
	c.Content = nil
	for _, child := range n.Content {
		cc, err := copyNode(child, budget, depth+1, alias)
		if err != nil {
			return nil, err
		}
		c.Content = append(c.Content, cc)
	}
	return &c, nil
}

// aliasTarget is the anchored node an alias (or a chain of them) refers to.
func aliasTarget(n *yaml.Node) *yaml.Node {
	for i := 0; n.Kind == yaml.AliasNode && n.Alias != nil && i < 100; i++ {
		n = n.Alias
	}
	return n
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlParserErrors are yaml.v3's parser (not scanner) messages. For these
// yaml.v3 prints a 0-based line, and the line of the enclosing block or
// flow collection rather than of the problem itself.
var yamlParserErrors = []string{
	"did not find expected <document start>", "did not find expected node content",
	"did not find expected '-' indicator", "did not find expected key",
	"did not find expected ',' or ']'", "did not find expected ',' or '}'",
	"found undefined tag handle", "found duplicate %YAML directive",
	"found incompatible YAML document", "found duplicate %TAG directive",
}

// syntaxError turns a yaml.v3 error ("yaml: line 3: …") into a positioned
// Error; yaml.v3 gives no column for syntax errors, and no line for
// problems on the first line.
func syntaxError(source string, data []byte, err error) *Error {
	msg := err.Error()
	m := yamlLineRE.FindStringSubmatch(msg)
	if m == nil {
		return &Error{Source: source, Msg: "YAML syntax: " + strings.TrimPrefix(msg, "yaml: ")}
	}
	line, _ := strconv.Atoi(m[1])
	for _, p := range yamlParserErrors {
		if m[2] == p {
			return &Error{Source: source, Line: line + 1,
				Msg: "YAML syntax: " + p + " (on this line or in the block or list that starts on it)"}
		}
	}
	if strings.Contains(m[2], "tab character") {
		// yaml.v3 names the line where the scalar before the tab starts;
		// the tab is on a later line, and that is the line to fix.
		if l, c := indentTab(data, line); l > 0 {
			return &Error{Source: source, Line: l, Column: c, Msg: "YAML syntax: " + m[2] + " (indent with spaces: YAML does not allow tabs there)"}
		}
	}
	return &Error{Source: source, Line: line, Msg: "YAML syntax: " + m[2]}
}

// indentTab finds the first tab in a line's indentation at or after line
// from (1-based) and returns its line and column, or 0, 0.
func indentTab(data []byte, from int) (line, col int) {
	for n := 1; len(data) > 0; n++ {
		var l []byte
		l, data, _ = bytes.Cut(data, []byte("\n"))
		if n < from {
			continue
		}
		indent := l[:len(l)-len(bytes.TrimLeft(l, " \t"))]
		if i := bytes.IndexByte(indent, '\t'); i >= 0 {
			return n, i + 1
		}
	}
	return 0, 0
}

// checkLayer runs the strict schema check over a top mapping.
func checkLayer(source string, top *yaml.Node) (*Layer, error) {
	d := &decoder{source: func(*yaml.Node) string { return source }}
	var c Config
	d.decodeInto(top, &c, "")
	if len(d.errs) > 0 {
		d.errs.sortBy(func(string) int { return 0 })
		return nil, d.errs
	}
	return &Layer{Source: source, Root: top}, nil
}

// Includes returns the layer's include list with references expanded by
// expand (nil leaves them as written), each source and sha256 checked.
// Errors are positioned in the layer.
func (l *Layer) Includes(expand func(string) (string, error)) ([]Include, error) {
	if l == nil || l.Root == nil {
		return nil, nil
	}
	var node *yaml.Node
	for i := 0; i+1 < len(l.Root.Content); i += 2 {
		if l.Root.Content[i].Value == "include" {
			node = l.Root.Content[i+1]
		}
	}
	if node == nil {
		return nil, nil
	}
	if expand == nil {
		expand = func(s string) (string, error) { return s, nil }
	}
	d := &decoder{source: func(*yaml.Node) string { return l.Source }, expand: expand, set: map[string]bool{}}
	node = deref(node)
	if node == nil || isNull(node) {
		return nil, nil
	}
	if node.Kind != yaml.SequenceNode {
		var incs []Include
		d.decodeInto(node, &incs, "include") // reports the wrong kind
		return nil, d.errs
	}
	incs := make([]Include, len(node.Content))
	for i, item := range node.Content {
		p := "include[" + strconv.Itoa(i) + "]"
		before := len(d.errs)
		d.value(item, reflect.ValueOf(&incs[i]).Elem(), p, false)
		if len(d.errs) > before {
			continue
		}
		at := func(key string) *yaml.Node { return lookupPath(item, []pathSeg{{key: key, index: -1}}, true) }
		if msg := checkSource(incs[i].Source); msg != "" {
			d.fail(at("source"), p+".source", "%s", msg)
		}
		if msg := checkSHA256(incs[i].SHA256); msg != "" {
			d.fail(at("sha256"), p+".sha256", "%s", msg)
		}
		incs[i].SHA256 = strings.ToLower(incs[i].SHA256)
	}
	if len(d.errs) > 0 {
		d.errs.sortBy(func(string) int { return 0 })
		return nil, d.errs
	}
	return incs, nil
}

// ParseConfig parses one document as the only layer and decodes it with
// facts: what a single configuration file means on its own. Tests of the
// capabilities build their input with it.
func ParseConfig(source string, data []byte, facts map[string]string) (*Config, error) {
	l, err := ParseLayer(source, data)
	if err != nil {
		return nil, err
	}
	m, err := Merge([]*Layer{l})
	if err != nil {
		return nil, err
	}
	return m.Decode(facts)
}
