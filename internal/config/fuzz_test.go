package config

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParseLayer feeds arbitrary documents through the whole pipeline: no
// input may panic, hang, or produce an error without a source and message.
func FuzzParseLayer(f *testing.F) {
	files, _ := filepath.Glob("testdata/cases/*.txt")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		_, bodies := parseCase(string(data))
		for _, b := range bodies {
			f.Add([]byte(b))
		}
	}
	for _, s := range []string{
		"",
		"files:\n  - path: /etc/x\n    content: !!binary aGk=\n",
		"a: &a [*a]\n",
		"imds: &i {tags: true}\naws:\n  <<: *i\n",
		"files: [{path: /a, content: '${x'}]\n",
		"version: 1\n---\nversion: 1\n",
		"? [complex, key]\n: value\n",
		"files:\n  - {path: /a, mode: 0o7777, content: x, owner: 0, group: 0}\n",
		"include: [~, {source: ~}, 'file:///x']\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLayer("fuzz.yaml", data)
		if err != nil {
			checkErrorList(t, err)
			return
		}
		if _, err := l.Includes(func(s string) (string, error) { return Expand(s, testFacts) }); err != nil {
			checkErrorList(t, err)
		}
		m, err := Merge([]*Layer{l, l})
		if err != nil {
			checkErrorList(t, err)
			return
		}
		if _, err := m.Decode(testFacts); err != nil {
			checkErrorList(t, err)
		}
	})
}

func checkErrorList(t *testing.T, err error) {
	t.Helper()
	list, ok := err.(ErrorList)
	if !ok || len(list) == 0 {
		t.Fatalf("error %T %v, want a non-empty ErrorList", err, err)
	}
	for _, e := range list {
		if e.Source != "fuzz.yaml" || e.Msg == "" {
			t.Fatalf("error without source or message: %#v", e)
		}
	}
}
