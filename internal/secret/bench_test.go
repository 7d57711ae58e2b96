package secret

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkRedactLine is one line of script output against a run's worth of
// secrets: a 200-line user-data script, a few secret files, credentials.
func BenchmarkRedactLine(b *testing.B) {
	var r Redactor
	var doc strings.Builder
	for i := range 200 {
		fmt.Fprintf(&doc, "echo step %d of the user-data script here\n", i)
	}
	r.AddScript(doc.String())
	r.Add("ASIAEXAMPLEKEYID0000", "secret/access/key/EXAMPLE0000", strings.Repeat("token", 80), "hunter2\n", "pin")
	line := "2026-12-02 17:00:00 installing package nginx (1.22.1-9) from the Debian mirror, 3 of 12 done"
	b.ReportAllocs()
	for b.Loop() {
		r.Redact(line)
	}
}

// BenchmarkRedactLineLargeDocument: 1 MiB of decoded user-data registered
// line by line (the most a layer may hold) must not make every log line slow.
func BenchmarkRedactLineLargeDocument(b *testing.B) {
	var r Redactor
	var doc strings.Builder
	for i := 0; doc.Len() < 1<<20; i++ {
		fmt.Fprintf(&doc, "line %08d\n", i)
	}
	r.AddScript(doc.String())
	line := "2026-12-02 17:00:00 installing package nginx (1.22.1-9) from the Debian mirror, 3 of 12 done"
	b.ReportAllocs()
	for b.Loop() {
		r.Redact(line)
	}
}
