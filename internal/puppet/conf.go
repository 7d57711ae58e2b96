package puppet

import (
	"bytes"
	"strings"
)

// Setting is one puppet.conf key set in a section.
type Setting struct {
	Section, Key, Value string
}

// maxConf bounds the puppet.conf read back for editing.
const maxConf = 1 << 20

// EditConf sets each setting in its section of puppet.conf and keeps
// everything else as it is — the package's settings, comments, blank
// lines, order —, so an upgrade's diff and the operator's edits survive.
// A key already in its section is changed where it stands; a new one goes
// after the section's last setting; a missing section is added at the end.
func EditConf(old []byte, sets []Setting) []byte {
	lines := splitLines(old)
	for _, s := range sets {
		lines = set(lines, s)
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

func splitLines(data []byte) []string {
	s := strings.ReplaceAll(string(data), "\r\n", "\n")
	s = strings.TrimSuffix(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// sectionOf returns the section a line opens, if it is a header.
func sectionOf(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if len(t) < 3 || t[0] != '[' || t[len(t)-1] != ']' {
		return "", false
	}
	return strings.TrimSpace(t[1 : len(t)-1]), true
}

// keyOf returns the key a setting line sets.
func keyOf(line string) (string, bool) {
	t := strings.TrimSpace(line)
	if t == "" || t[0] == '#' || t[0] == ';' {
		return "", false
	}
	k, _, ok := strings.Cut(t, "=")
	if !ok {
		return "", false
	}
	return strings.TrimSpace(k), true
}

func set(lines []string, s Setting) []string {
	line := s.Key + " = " + s.Value
	// Settings before any header are puppet's [main]; a key may stand in
	// both parts of main, or twice: every occurrence is changed, so no
	// older line can win over ours.
	cur, replaced := "main", false
	headerLast, implicitLast := -1, -1
	for i, l := range lines {
		if sec, ok := sectionOf(l); ok {
			cur = sec
			if sec == s.Section {
				headerLast = i
			}
			continue
		}
		if cur != s.Section {
			continue
		}
		k, ok := keyOf(l)
		if !ok {
			continue
		}
		if k == s.Key {
			indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
			lines[i] = indent + line
			replaced = true
			continue
		}
		if headerLast >= 0 {
			headerLast = i
		} else {
			implicitLast = i
		}
	}
	at := headerLast
	if at < 0 {
		at = implicitLast
	}
	switch {
	case replaced:
		return lines
	case at < 0:
		if len(lines) > 0 && strings.TrimSpace(lines[len(lines)-1]) != "" {
			lines = append(lines, "")
		}
		return append(lines, "["+s.Section+"]", line)
	}
	if _, ok := keyOf(lines[at]); ok { // line up with the setting above
		line = lines[at][:len(lines[at])-len(strings.TrimLeft(lines[at], " \t"))] + line
	}
	out := make([]string, 0, len(lines)+1)
	out = append(out, lines[:at+1]...)
	out = append(out, line)
	return append(out, lines[at+1:]...)
}
