package systemd

import (
	"io"
	"strings"
	"testing"

	"github.com/coreos/go-systemd/v22/unit"
)

// FuzzParseFile: whatever the text, ParseFile returns (no panic, no hang on
// the parser's goroutine), and what it accepts serialises and parses back
// to the same options.
func FuzzParseFile(f *testing.F) {
	for _, s := range []string{svcText, "[Unit]\nA=1\\\n  b\n#c\n[Install]\nWantedBy=x.target\n", "A=1\n", "[X\n", "[A]\n=\n", "[A]\nB=\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		file, err := ParseFile("", []byte(text))
		if err != nil {
			return
		}
		_ = installOf(file.sections)
		back, err := io.ReadAll(unit.SerializeSections(file.sections))
		if err != nil {
			t.Fatal(err)
		}
		again, err := unit.DeserializeSections(strings.NewReader(string(back)))
		if err != nil {
			t.Fatalf("re-parse of %q: %v", back, err)
		}
		if len(again) != len(file.sections) {
			t.Fatalf("%d sections became %d", len(file.sections), len(again))
		}
	})
}
