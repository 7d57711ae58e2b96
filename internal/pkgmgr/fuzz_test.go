package pkgmgr

import (
	"context"
	"strings"
	"testing"
)

// FuzzQueryOutput feeds arbitrary output to every manager's query parsers:
// they must not panic, and they answer only about the names asked.
func FuzzQueryOutput(f *testing.F) {
	f.Add("hello\tamd64\t2.10-3\tii \ndpkg-query: no packages found matching x", 1)
	f.Add(madison+"\nN: Unable to locate package x", 0)
	f.Add("hello\t0:2.12-1.fc40\npackage x is not installed", 1)
	f.Add("hello.x86_64    2.12.1-5.fc40    fedora\nAvailable Packages", 0)
	f.Add("   | hello | package | 2.12.1-1.7 | x86_64 | Main Repository", 0)
	f.Add("hello-2.12-r0\nhello-doc-2.12-r0\nhello-", 0)
	names := []string{"hello", "x"}
	f.Fuzz(func(t *testing.T, output string, exit int) {
		rec := &recorder{rules: []*rule{{"", []reply{{exit % 256, strings.Split(output, "\n")}}}}}
		root := t.TempDir()
		o := Options{Root: "/", Runner: rec, HostHas: func(string) bool { return true }}
		for _, m := range []Manager{NewApt(o), NewDnf(o), NewYum(o), NewZypper(o), NewApk(Options{Root: root, Runner: rec})} {
			if got, err := m.Installed(context.Background(), names); err == nil {
				for k := range got {
					if k != "hello" && k != "x" {
						t.Errorf("%s: Installed answered about %q", m.Name(), k)
					}
				}
			}
			if got, err := m.Available(context.Background(), names); err == nil {
				for k := range got {
					if k != "hello" && k != "x" {
						t.Errorf("%s: Available answered about %q", m.Name(), k)
					}
				}
			}
			m.FileInfo(context.Background(), "/x.deb")
		}
	})
}
