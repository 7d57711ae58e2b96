package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestParseHeapGuard: documents of a megabyte whose values are tiny are
// stopped before yaml.v3's tree of them outgrows the budget; ordinary
// layers of the same size, many files or one large value, parse.
func TestParseHeapGuard(t *testing.T) {
	const size = MaxLayerBytes - 64
	manyFiles := func() string {
		var b strings.Builder
		b.WriteString("files:\n")
		for i := 0; b.Len() < size-200; i++ {
			fmt.Fprintf(&b, "  - path: /etc/app/conf.d/%05d.conf\n    owner: app\n    group: app\n    mode: \"0640\"\n    content: \"key=value-%d\\n\"\n", i, i)
		}
		return b.String()
	}
	tests := []struct {
		name, src string
		stopped   bool
	}{
		{"flow list of 1s", "files: [" + strings.Repeat("1,", size/2-8) + "1]\n", true},
		{"block list of 1s", "files:\n" + strings.Repeat("- 1\n", size/4-4), true},
		{"flow mappings", "files: [" + strings.Repeat("{a: 1},", size/7-4) + "{}]\n", true},
		{"many files", manyFiles(), false},
		{"one large value", "files:\n  - path: /etc/big\n    content: |\n" + strings.Repeat("      line of a certificate or a script, with: colons - and, commas\n", size/68), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.src) > MaxLayerBytes {
				t.Fatalf("test document is %d bytes", len(tt.src))
			}
			_, err := ParseDocument("big.yaml", []byte(tt.src))
			stopped := err != nil && strings.Contains(err.Error(), "too many YAML values for its size")
			if stopped != tt.stopped {
				t.Fatalf("stopped = %v (error %v), want %v", stopped, err, tt.stopped)
			}
		})
	}
}
