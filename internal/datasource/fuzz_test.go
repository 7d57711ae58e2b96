package datasource

import (
	"strings"
	"testing"
)

// FuzzParseMetaData: any meta-data file gives either metadata or an error
// that names the file, never a panic.
func FuzzParseMetaData(f *testing.F) {
	for _, seed := range []string{
		"instance-id: vagrant-01\nlocal-hostname: web1\n",
		"instance-id: i-1\nmac: 0e:00:00:00:00:01\nlocal-ipv4: 10.0.0.5\nregion: eu-west-1\n",
		"dsmode: local\npublic-keys: [a, b]\n",
		"# only a comment\n",
		"- a\n- b\n",
		"instance-id: [x]\n",
		"instance-id: &a x\nlocal-hostname: *a\n",
		"{instance-id: 1, instance-id: 2}",
		"\t: :",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var md Metadata
		if err := parseMetaData("/seed/meta-data", b, &md); err != nil && !strings.Contains(err.Error(), "/seed/meta-data") {
			t.Fatalf("error does not name the file: %v", err)
		}
	})
}
