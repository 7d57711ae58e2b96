package puppet

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/golden"
)

// goldenSets are what a typical enrolment writes.
var goldenSets = []Setting{
	{"main", "server", "puppet.example.com"},
	{"main", "certname", "i-0123456789abcdef0"},
	{"agent", "environment", "production"},
	{"agent", "runinterval", "1800"},
	{"agent", "waitforcert", "10"},
	{"agent", "maxwaitforcert", "300"},
}

// TestEditConfGolden: the packaged content and comments stay, ours are set
// in their sections (testdata/conf/*.conf → *.golden).
func TestEditConfGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/conf/*.conf")
	if len(files) == 0 {
		t.Fatal("no cases")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			old, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			got := EditConf(old, goldenSets)
			golden.Check(t, strings.TrimSuffix(f, ".conf")+".golden", got)
			for _, line := range strings.Split(string(old), "\n") {
				if k, ok := keyOf(line); ok && (k == "server" || k == "runinterval") {
					continue // ours replace these lines
				}
				if !strings.Contains(string(got), line) {
					t.Errorf("lost the line %q", line)
				}
			}
			if again := EditConf(got, goldenSets); string(again) != string(got) {
				t.Errorf("a second edit changed the file:\n%s", again)
			}
		})
	}
}

func TestEditConf(t *testing.T) {
	tests := []struct {
		name string
		old  string
		sets []Setting
		want string
	}{
		{"replaced where it stands, indent kept", "[agent]\n  server = a # x\nfoo = 1\n", []Setting{{"agent", "server", "b"}}, "[agent]\n  server = b\nfoo = 1\n"},
		{"keys before any header are [main]'s", "server = a\n[agent]\nserver = c\n", []Setting{{"main", "server", "b"}}, "server = b\n[agent]\nserver = c\n"},
		{"added after the section's last setting", "[main]\na = 1\n\n# about agent\n[agent]\n", []Setting{{"main", "b", "2"}}, "[main]\na = 1\nb = 2\n\n# about agent\n[agent]\n"},
		{"a missing section appended", "[main]\na = 1\n", []Setting{{"agent", "server", "x"}}, "[main]\na = 1\n\n[agent]\nserver = x\n"},
		{"a commented-out key is not the key", "[main]\na = 1\n#server = old\n", []Setting{{"main", "server", "x"}}, "[main]\na = 1\nserver = x\n#server = old\n"},
		{"the same key in another section is left", "[main]\nserver = m\n[agent]\n", []Setting{{"agent", "server", "x"}}, "[main]\nserver = m\n[agent]\nserver = x\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(EditConf([]byte(tt.old), tt.sets)); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestCSRAttributesGolden(t *testing.T) {
	got := CSRAttributes(
		map[string]string{"1.2.840.113549.1.9.7": "hunter2"},
		map[string]string{"pp_instance_id": "i-0123456789abcdef0", "pp_image_name": "ami-0abc", "pp_region": "eu-west-1",
			"pp_zone": "eu-west-1a", "pp_cloudplatform": "aws", "pp_role": "web", "pp_software_version": "1.10", "pp_uuid": "no"})
	golden.Check(t, "testdata/csr_attributes.golden", got)
}
