package engine

import (
	"context"
	"testing"
)

// TestENIFactsOnlyForNetwork: the ENI paths are read (and cost requests)
// only when the configuration has a network: section; their facts can
// then be used in it.
func TestENIFactsOnlyForNetwork(t *testing.T) {
	tests := []struct {
		name      string
		body      string
		extra     int64 // requests beyond a run without networking
		wantFacts bool
	}{
		{"no network section", "files:\n  - path: /etc/x\n    content: \"${instance_id}\"\n", 0, false},
		{"network section", "network:\n  hostname: web1\nfiles:\n  - path: /etc/x\n    content: \"${eni_macs}\"\n", 2, true},
		{"empty network section", "network: {}\n", 2, true},
	}
	var base int64
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			w.userData(tt.body)
			l, err := Load(context.Background(), w.input())
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				base = l.IMDSRequests()
			}
			if got := l.IMDSRequests() - base; got != tt.extra {
				t.Errorf("%d requests beyond a run without networking, want %d", got, tt.extra)
			}
			macs, ok := l.Meta.Facts()["eni_macs"]
			if ok != tt.wantFacts || (ok && macs != "0e0000000001") {
				t.Errorf("eni_macs = %q (present %v), want present %v", macs, ok, tt.wantFacts)
			}
			if tt.wantFacts && tt.name == "network section" && *l.Config.Files[0].Content != "0e0000000001" {
				t.Errorf("${eni_macs} expanded to %q", *l.Config.Files[0].Content)
			}
		})
	}
}
