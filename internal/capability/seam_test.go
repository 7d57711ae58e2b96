package capability_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoCapabilityImportsTheEngine keeps the seam a seam: every package
// that implements a capability (imports this package) must build without
// the engine, or the engine could not list it without an import cycle.
func TestNoCapabilityImportsTheEngine(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}} {{join .Imports \" \"}}", "github.com/opsboot/bootstrap/internal/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	const seam, engine = "github.com/opsboot/bootstrap/internal/capability", "github.com/opsboot/bootstrap/internal/engine"
	var checked []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		if pkg == engine || !strings.Contains(" "+imports+" ", " "+seam+" ") {
			continue
		}
		deps, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", pkg, err)
		}
		for _, d := range strings.Fields(string(deps)) {
			if d == engine {
				t.Errorf("%s depends on %s: a capability must not import the engine", pkg, engine)
			}
		}
		checked = append(checked, pkg)
	}
	if len(checked) == 0 {
		t.Fatal("found no capability packages to check")
	}
	t.Logf("capabilities checked: %s", strings.Join(checked, ", "))
}
