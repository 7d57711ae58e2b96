package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/golden"
)

// TestPlanMergesFilesByPath is the merge rule end to end: a base layer with
// three files, a role layer that changes one and removes one.
func TestPlanMergesFilesByPath(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.yaml")
	os.WriteFile(base, []byte(`files:
  - path: /etc/motd
    content: "base\n"
  - path: /etc/app.conf
    content: "base\n"
  - path: /etc/debug.conf
    content: "on\n"
`), 0o644)
	role := filepath.Join(dir, "role.yaml")
	os.WriteFile(role, []byte(`include:
  - file://`+base+`
files:
  - path: /etc/app.conf
    content: "role\n"
    mode: "0640"
  - path: /etc/debug.conf
    remove: true
`), 0o644)
	root := t.TempDir()
	code, out, errs := runCLI(t, "", "plan", "--datasource", "none", "--config", role, "--root", root, "--state-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	out = strings.ReplaceAll(out, dir, "DIR")
	if i := strings.Index(out, "plan for instance "); i >= 0 {
		// The none datasource's instance id is this machine's machine-id.
		line := out[i:]
		line = line[:strings.IndexByte(line, '\n')]
		out = strings.Replace(out, line, "plan for instance ID (datasource none)", 1)
	}
	golden.Check(t, filepath.Join("testdata", "plan-merge-by-key.golden"), []byte(out))
}
