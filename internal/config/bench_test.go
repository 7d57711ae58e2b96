package config

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkParseMergeDecode: three layers (base with 200 files, a role layer,
// user-data) parsed strictly, merged and decoded with facts.
func BenchmarkParseMergeDecode(b *testing.B) {
	var base strings.Builder
	base.WriteString("aws:\n  region: eu-west-1\nfiles:\n")
	for i := 0; i < 200; i++ {
		fmt.Fprintf(&base, "  - path: /etc/app/f%d.conf\n    content: \"id=${instance_id} n=%d\"\n    owner: root\n    mode: \"0640\"\n", i, i)
	}
	layers := map[string]string{
		"s3://acme/base.yaml": base.String(),
		"s3://acme/web.yaml":  "aws:\n  s3:\n    path_style: true\n",
		"user-data":           "imds:\n  deadline: 90s\n",
	}
	order := []string{"s3://acme/base.yaml", "s3://acme/web.yaml", "user-data"}
	facts := map[string]string{"instance_id": "i-0123456789abcdef0", "region": "eu-west-1"}
	b.ReportAllocs()
	for b.Loop() {
		var ls []*Layer
		for _, src := range order {
			l, err := ParseLayer(src, []byte(layers[src]))
			if err != nil {
				b.Fatal(err)
			}
			ls = append(ls, l)
		}
		m, err := Merge(ls)
		if err != nil {
			b.Fatal(err)
		}
		cfg, err := m.Decode(facts)
		if err != nil || len(cfg.Files) != 200 {
			b.Fatalf("decode: %v", err)
		}
	}
}
