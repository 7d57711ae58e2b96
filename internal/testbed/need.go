package testbed

import (
	"os"
	"os/exec"
	"testing"
)

// Need returns the path of a program an end-to-end test drives. Without it
// the test is skipped, except under BOOTSTRAP_E2E=1, where scripts/setup.sh
// installed it (scripts/packages.txt lists its package) and its absence is
// a failure.
func Need(t testing.TB, prog string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("BOOTSTRAP_E2E") == "1" {
			t.Fatalf("%s: %v (scripts/packages.txt lists its package)", prog, err)
		}
		t.Skipf("%s: %v", prog, err)
	}
	return p
}
