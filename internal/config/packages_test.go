package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestPackagesDecode(t *testing.T) {
	const sum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		name string
		src  string
		want Packages
	}{
		{"empty section gets the defaults", "packages: {}\n", Packages{Manager: ManagerAuto}},
		{"no section at all", "version: 1\n", Packages{Manager: ManagerAuto}},
		{
			name: "shorthand names and pins",
			src:  "packages:\n  manager: APT\n  update: true\n  install: [hello, hello-traditional=2.10-3, {name: curl, version: '7.88.1-10+deb12u5'}]\n",
			want: Packages{Manager: "apt", Update: true, Install: []Package{
				{Name: "hello"}, {Name: "hello-traditional", Version: "2.10-3"}, {Name: "curl", Version: "7.88.1-10+deb12u5"},
			}},
		},
		{
			name: "files keep their digest, lower-cased",
			src:  "packages:\n  upgrade: true\n  files:\n    - source: s3://b/pool/x_1.0_amd64.deb\n      sha256: " + strings.ToUpper(sum) + "\n",
			want: Packages{Manager: ManagerAuto, Upgrade: true, Files: []PackageFile{{Source: "s3://b/pool/x_1.0_amd64.deb", SHA256: sum}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := decodeOne(t, tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Packages, tt.want) {
				t.Errorf("packages = %+v\nwant       %+v", cfg.Packages, tt.want)
			}
		})
	}
}

func TestPackagesValidation(t *testing.T) {
	const sum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "unknown manager",
			src:  "packages:\n  manager: pacman\n",
			want: []string{`c.yaml:2:12: packages.manager: unknown package manager "pacman"; want auto, apt, dnf, yum, zypper, apk`},
		},
		{
			name: "empty names, in both forms",
			src:  "packages:\n  install:\n    - hello\n    - name: ''\n    - =1.0\n",
			want: []string{
				`c.yaml:4:13: packages.install[1].name: required: the package's name, e.g. hello`,
				`c.yaml:5:7: packages.install[2].name: required: the package's name, e.g. hello`,
			},
		},
		{
			name: "a name that would be an option, a path, a bad version",
			src:  "packages:\n  install:\n    - name: -oAPT::x=1\n    - ./x.deb\n    - {name: hello, version: '2.10 -3'}\n",
			want: []string{
				`c.yaml:3:13: packages.install[0].name: "-oAPT::x=1" is not a package name: letters, digits and . _ + : ~ - only, starting with a letter or digit`,
				`c.yaml:4:7: packages.install[1].name: "./x.deb" is not a package name: letters, digits and . _ + : ~ - only, starting with a letter or digit; to install a package file, list it under packages.files with its sha256`,
				`c.yaml:5:30: packages.install[2].version: "2.10 -3" is not a package version: letters, digits and . _ + : ~ - only, starting with a letter or digit`,
			},
		},
		{
			name: "duplicate names name both positions",
			src:  "packages:\n  install:\n    - hello\n    - curl\n    - name: hello\n      version: '2.10-3'\n",
			want: []string{`c.yaml:5:13: packages.install[2].name: duplicate package "hello": packages.install[0] at c.yaml:3:7 installs it too`},
		},
		{
			name: "files need a package source and a sha256",
			src: "packages:\n  files:\n" +
				"    - source: s3://b/x.deb\n" +
				"    - {source: 'https://h/x.tar.gz', sha256: " + sum + "}\n" +
				"    - {source: 'http://h/x.rpm', sha256: '12'}\n" +
				"    - {source: 'https://h/x.rpm?X-Amz-Signature=s', sha256: " + sum + "}\n",
			want: []string{
				`c.yaml:3:7: packages.files[0].sha256: required: a package file is code run as root; give its sha256 (sha256sum x.deb)`,
				`c.yaml:4:16: packages.files[1].source: want a package file ending in .deb, .rpm, .apk`,
				`c.yaml:5:16: packages.files[2].source: plain http is not allowed; use https`,
				`c.yaml:5:42: packages.files[2].sha256: want 64 hex digits (as sha256sum prints), got 2 characters`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeOne(t, tt.src)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestPackageFileType(t *testing.T) {
	for src, want := range map[string]string{
		"s3://b/pool/x_1.0_amd64.deb":         ".deb",
		"https://h/x-1.0.x86_64.rpm?sig=abc":  ".rpm",
		"file:///srv/x-1.0-r0.apk":            ".apk",
		"https://h/x.deb.sig":                 "",
		"https://h/download?file=x.deb":       "",
		"s3://b/odd?key.deb":                  ".deb",
		"https://h/.deb":                      ".deb",
		"https://h/pool/x_1.0_amd64.deb#frag": ".deb",
	} {
		if got := PackageFileType(src); got != want {
			t.Errorf("PackageFileType(%q) = %q, want %q", src, got, want)
		}
	}
}
