package pkgmgr

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// makeRoot builds a fake root: each entry is a path (a trailing / makes a
// directory), "path=content" for a file, or "path->target" for a symlink.
func makeRoot(t *testing.T, entries ...string) string {
	t.Helper()
	root := t.TempDir()
	for _, e := range entries {
		var err error
		switch {
		case strings.Contains(e, "->"):
			p, target, _ := strings.Cut(e, "->")
			os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
			err = os.Symlink(target, filepath.Join(root, p))
		case strings.HasSuffix(e, "/"):
			err = os.MkdirAll(filepath.Join(root, e), 0o755)
		default:
			p, content, _ := strings.Cut(e, "=")
			os.MkdirAll(filepath.Dir(filepath.Join(root, p)), 0o755)
			err = os.WriteFile(filepath.Join(root, p), []byte(content), 0o755)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return root
}

var (
	debian = []string{"etc/os-release=ID=debian\n", "var/lib/dpkg/status=", "usr/bin/apt-get=", "usr/bin/apt-cache=", "usr/bin/dpkg-query=", "usr/bin/dpkg="}
	fedora = []string{"etc/os-release=ID=fedora\nID_LIKE=\"rhel centos\"\n", "usr/lib/sysimage/rpm/", "usr/bin/dnf=", "usr/bin/yum->dnf"}
	alpine = []string{"etc/os-release=ID=alpine\n", "lib/apk/db/installed=", "sbin/apk="}
)

func TestDetect(t *testing.T) {
	tests := []struct {
		name    string
		root    []string
		forced  string
		want    string
		wantErr string
	}{
		{name: "debian", root: debian, want: "apt"},
		{name: "merged /usr: bin is a relative link", root: []string{"etc/os-release=ID=debian\n", "var/lib/dpkg/status=", "usr/bin/", "bin->usr/bin", "bin/apt-get="}, want: "apt"},
		{name: "fedora has dnf and yum: dnf", root: fedora, want: "dnf"},
		{name: "amazon linux 2: yum only", root: []string{"etc/os-release=ID=\"amzn\"\nID_LIKE=\"centos rhel fedora\"\n", "var/lib/rpm/", "usr/bin/yum="}, want: "yum"},
		{name: "opensuse", root: []string{"usr/lib/os-release=ID=\"opensuse-leap\"\nID_LIKE=\"suse opensuse\"\n", "usr/lib/sysimage/rpm/", "usr/bin/zypper="}, want: "zypper"},
		{name: "alpine", root: alpine, want: "apk"},
		{name: "debian with rpm tools too: os-release decides", root: append([]string{"var/lib/rpm/", "usr/bin/zypper="}, debian...), want: "apt"},
		{name: "a derivative: ID_LIKE decides", root: []string{"etc/os-release=ID=pop\nID_LIKE=\"ubuntu debian\"\n", "var/lib/dpkg/status=", "usr/bin/apt-get=", "var/lib/rpm/", "usr/bin/zypper="}, want: "apt"},
		{name: "no os-release: what is there", root: []string{"var/lib/dpkg/status=", "usr/bin/apt-get="}, want: "apt"},
		{name: "a program without its database is not a manager", root: []string{"etc/os-release=ID=debian\n", "usr/bin/apt-get="},
			wantErr: "(os-release ID=debian): none of apt (apt-get and var/lib/dpkg/status), dnf (dnf and var/lib/rpm or usr/lib/sysimage/rpm)"},
		{name: "the host's programs do not count", root: []string{"etc/os-release=ID=debian\n", "usr->/usr", "var/lib/dpkg/status="},
			wantErr: "set packages.manager"},
		{name: "empty root", root: nil, wantErr: "(no os-release): none of"},
		{name: "forced", root: append([]string{"usr/bin/apk="}, debian...), forced: "apk", want: "apk"},
		{name: "forced but missing", root: debian, forced: "dnf", wantErr: "ROOT has no dnf program (looked in usr/bin, usr/sbin, bin, sbin)"},
		{name: "auto is detection", root: alpine, forced: "auto", want: "apk"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := makeRoot(t, tt.root...)
			m, err := Detect(Options{Root: root}, tt.forced)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(strings.ReplaceAll(err.Error(), root, "ROOT"), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if m.Name() != tt.want {
				t.Errorf("detected %s, want %s", m.Name(), tt.want)
			}
		})
	}
}

func TestOSRelease(t *testing.T) {
	root := makeRoot(t, "etc/os-release=NAME=\"Rocky Linux\"\nID=\"rocky\"\nID_LIKE=\"rhel centos fedora\"\n# comment\nbad line\n")
	id, like := OSRelease(root)
	if id != "rocky" || strings.Join(like, ",") != "rhel,centos,fedora" {
		t.Errorf("OSRelease = %q %q", id, like)
	}
}
