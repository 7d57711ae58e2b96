package config

import (
	"fmt"
	"sort"
	"strings"
)

// Expand replaces each ${name} in s by facts[name]. $${ is a literal ${ and
// a $ not followed by { is a literal $. A reference to a fact that is not in
// facts, or a ${ that is not a well-formed reference, is an error: a typo
// must not reach a file or a URL unnoticed.
//
// Instance tags are facts named tag:<key> (${tag:Role}); a key keeps the
// characters EC2 allows in tags served by IMDS: letters, digits and
// + - = . , _ : @. An unknown tag is an error like any unknown fact: an
// include of roles/.yaml is never what was meant.
func Expand(s string, facts map[string]string) (string, error) {
	out, _, err := expand(s, facts, true)
	return out, err
}

// refError is a bad ${…} reference Offset bytes into a value. It can say
// what is wrong without quoting the value, for fields that may be secret.
type refError struct {
	offset int
	name   string   // the fact name of an unknown reference; "" when malformed
	known  []string // sorted fact names
}

func (e *refError) Error() string {
	if e.name == "" {
		return e.redacted()
	}
	if strings.HasPrefix(e.name, tagPrefix) {
		return fmt.Sprintf("unknown tag ${%s} at byte %d; %s", e.name, e.offset, e.knownTags())
	}
	return fmt.Sprintf("unknown fact ${%s} at byte %d; %s", e.name, e.offset, e.knownText())
}

// redacted describes the problem without repeating any of the value.
func (e *refError) redacted() string {
	if e.name == "" {
		return fmt.Sprintf("malformed ${ at byte %d: write ${name} with a name of a-z, 0-9 and _, or ${tag:Key}, or $${ for a literal ${", e.offset)
	}
	if strings.HasPrefix(e.name, tagPrefix) {
		return fmt.Sprintf("unknown tag at byte %d (name not shown: the value may be secret); %s", e.offset, e.knownTags())
	}
	return fmt.Sprintf("unknown fact at byte %d (name not shown: the value may be secret); %s", e.offset, e.knownText())
}

func (e *refError) knownText() string {
	var facts []string
	tags := 0
	for _, k := range e.known {
		if strings.HasPrefix(k, tagPrefix) {
			tags++
		} else {
			facts = append(facts, k)
		}
	}
	if len(facts) == 0 {
		return "no facts are available here"
	}
	text := "known facts: " + strings.Join(facts, ", ")
	if tags > 0 {
		text += fmt.Sprintf(", and %d instance tags as ${tag:Key}", tags)
	}
	return text
}

func (e *refError) knownTags() string {
	var tags []string
	for _, k := range e.known {
		if strings.HasPrefix(k, tagPrefix) {
			tags = append(tags, k)
		}
	}
	if len(tags) == 0 {
		return "no instance tags were read: tags are facts only under the ec2 datasource with imds.tags: true in a local --config, and \"Allow tags in instance metadata\" on the instance"
	}
	return "the instance's tags: " + strings.Join(tags, ", ")
}

// tagPrefix starts the fact names of instance tags.
const tagPrefix = "tag:"

// expand does the work of Expand. With lookup false it only checks the
// syntax (a layer is checked before the facts are known) and returns s.
// It also counts the references, so callers know whether a value depends
// on facts.
func expand(s string, facts map[string]string, lookup bool) (string, int, error) {
	if !strings.Contains(s, "${") {
		return s, 0, nil
	}
	var b strings.Builder
	refs := 0
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], '$')
		if j < 0 {
			b.WriteString(s[i:])
			break
		}
		b.WriteString(s[i : i+j])
		i += j
		switch {
		case strings.HasPrefix(s[i:], "$${"):
			b.WriteString("${")
			i += 3
		case strings.HasPrefix(s[i:], "${"):
			// A name, or tag: and a tag key; never empty.
			start, isByte := i+2, isNameByte
			if strings.HasPrefix(s[start:], tagPrefix) {
				start, isByte = start+len(tagPrefix), isTagKeyByte
			}
			end := start
			for end < len(s) && isByte(s[end]) {
				end++
			}
			if end == start || end >= len(s) || s[end] != '}' {
				return "", refs, &refError{offset: i}
			}
			refs++
			name := s[i+2 : end]
			if lookup {
				v, ok := facts[name]
				if !ok {
					return "", refs, &refError{offset: i, name: name, known: sortedKeys(facts)}
				}
				b.WriteString(v)
			}
			i = end + 1
		default:
			b.WriteByte('$')
			i++
		}
	}
	if !lookup {
		return s, refs, nil
	}
	return b.String(), refs, nil
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_'
}

// isTagKeyByte: what EC2 allows in the key of a tag served by IMDS.
func isTagKeyByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("+-=.,_:@", c) >= 0
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
