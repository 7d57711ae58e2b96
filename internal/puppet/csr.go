package puppet

import (
	"sort"

	"gopkg.in/yaml.v3"
)

// CSRAttributes renders csr_attributes.yaml: custom_attributes (not copied
// into the certificate: the challengePassword) and extension_requests
// (signed into it, $trusted['extensions']), keys sorted so the file is the
// same on every run.
func CSRAttributes(custom, ext map[string]string) []byte {
	doc := &yaml.Node{Kind: yaml.MappingNode}
	add := func(name string, m map[string]string) {
		if len(m) == 0 {
			return
		}
		v := &yaml.Node{Kind: yaml.MappingNode}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v.Content = append(v.Content,
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: k},
				// Quoted: puppet reads YAML 1.1, where a bare no or 1.10
				// would not be the string it is.
				&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: m[k], Style: yaml.DoubleQuotedStyle})
		}
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: name}, v)
	}
	add("custom_attributes", custom)
	add("extension_requests", ext)
	if len(doc.Content) == 0 {
		return []byte("{}\n")
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		panic(err) // a mapping of strings always marshals
	}
	return append([]byte("---\n"), out...)
}
