package state

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestJournalEntryBounded: an entry's error and detail are cut to
// maxEntryField bytes, at a character boundary, with a marker saying how
// much is missing; short ones are kept as they are.
func TestJournalEntryBounded(t *testing.T) {
	huge := strings.Repeat("bad input line\n", 1<<20/15*11) // ~11 MB, as in the issue
	tests := []struct {
		name, text string
		want       string // "" = kept whole
	}{
		{name: "short", text: "exit status 1"},
		{name: "exactly the limit", text: strings.Repeat("x", maxEntryField)},
		{name: "11 MB", text: huge, want: huge[:maxEntryField] + fmt.Sprintf(" … [%d more bytes cut; see the run's log]", len(huge)-maxEntryField)},
		{
			name: "cut inside a character",
			text: strings.Repeat("x", maxEntryField-1) + "é" + strings.Repeat("y", 10),
			want: strings.Repeat("x", maxEntryField-1) + " … [12 more bytes cut; see the run's log]",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openDir(t)
			e := entry("r1", "files", OutcomeFailed)
			e.Error, e.Detail = tt.text, tt.text
			if err := d.Append(e); err != nil {
				t.Fatal(err)
			}
			got, _, err := d.ReadJournal()
			if err != nil || len(got) != 1 {
				t.Fatalf("ReadJournal = %d entries, %v", len(got), err)
			}
			want := tt.want
			if want == "" {
				want = tt.text
			}
			for field, v := range map[string]string{"error": got[0].Error, "detail": got[0].Detail} {
				if v != want {
					t.Errorf("%s is %d bytes (%q…), want %d", field, len(v), v[:min(len(v), 40)], len(want))
				}
				if !utf8.ValidString(v) {
					t.Errorf("%s is not valid UTF-8", field)
				}
			}
			if fi, _ := os.Stat(filepath.Join(d.Path(), journalName)); fi.Size() > int64(3*maxEntryField) {
				t.Errorf("journal line is %d bytes", fi.Size())
			}
		})
	}
}
