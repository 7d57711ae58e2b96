package chef

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
)

// FuzzUnpack: no repository archive may panic the run or put a file
// anywhere but under the repository path.
func FuzzUnpack(f *testing.F) {
	f.Add(tgz(f, map[string]string{"cookbooks/a/recipes/default.rb": "x"}))
	f.Add(tgz(f, map[string]string{"r/cookbooks/a": "x", "r/../../etc/x": "y"}))
	f.Add(tgz(f, map[string]string{"cookbooks/a": "->/etc"}))
	f.Add([]byte("\x1f\x8b not really"))
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		arch := filepath.Join(t.TempDir(), "repo.tgz")
		os.WriteFile(arch, data, 0o600)
		root, err := rootfs.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer root.Close()
		root.KeepOwnership()
		u := &unpack{dest: "/var/chef/repo", source: "s3://b/repo.tgz", file: arch}
		env := &plan.Env{Root: root, Log: slog.New(slog.DiscardHandler)}
		_ = u.Apply(context.Background(), env)
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			rel, _ := filepath.Rel(dir, p)
			if d != nil && !d.IsDir() && !strings.HasPrefix(rel, "var/chef/repo/") {
				t.Errorf("wrote %s, outside the repository", rel)
			}
			return nil
		})
	})
}
