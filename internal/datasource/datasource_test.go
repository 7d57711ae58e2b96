package datasource

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTree creates files (relative path → content) under a temp dir.
func writeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for rel, content := range files {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func TestDetect(t *testing.T) {
	const dmi = "sys/class/dmi/id/"
	tests := []struct {
		name       string
		files      map[string]string
		env        string
		wantKind   string
		wantReason string
	}{
		{"nitro sys_vendor", map[string]string{dmi + "sys_vendor": "Amazon EC2\n"}, "", "ec2", `DMI sys_vendor is "Amazon EC2"`},
		{"board_vendor", map[string]string{dmi + "board_vendor": "Amazon EC2\n"}, "", "ec2", "board_vendor"},
		{"xen bios_version", map[string]string{dmi + "bios_version": "4.11.amazon\n", dmi + "sys_vendor": "Xen\n"}, "", "ec2", "bios_version"},
		{"xen bios_vendor", map[string]string{dmi + "bios_vendor": "Amazon EC2\n"}, "", "ec2", "bios_vendor"},
		{"xen hypervisor uuid", map[string]string{"sys/hypervisor/uuid": "ec2e1916-9099-7caf-fd21-012345abcdef\n"}, "", "ec2", "hypervisor uuid"},
		{"endpoint env", nil, "http://127.0.0.1:9", "ec2", "AWS_EC2_METADATA_SERVICE_ENDPOINT is set"},
		{"qemu", map[string]string{dmi + "sys_vendor": "QEMU\n", dmi + "bios_vendor": "SeaBIOS\n"}, "", "none", `DMI sys_vendor is "QEMU"`},
		{"nothing readable", nil, "", "none", `"unknown"`},
		{"not fooled by other uuids", map[string]string{"sys/hypervisor/uuid": "5e0f3c1a-0000\n"}, "", "none", "not EC2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(endpointEnv, tt.env)
			kind, reason := Detect(writeTree(t, tt.files))
			if kind != tt.wantKind || !strings.Contains(reason, tt.wantReason) {
				t.Fatalf("Detect = %q, %q; want %q and a reason containing %q", kind, reason, tt.wantKind, tt.wantReason)
			}
		})
	}
}

func TestNone(t *testing.T) {
	tests := []struct {
		name   string
		files  map[string]string
		wantID string
	}{
		{"machine-id", map[string]string{"etc/machine-id": "0123456789abcdef0123456789abcdef\n"}, "0123456789abcdef0123456789abcdef"},
		{"no machine-id", nil, "none"},
		{"uninitialized image", map[string]string{"etc/machine-id": "uninitialized\n"}, "none"},
		{"empty machine-id", map[string]string{"etc/machine-id": ""}, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md, err := None(writeTree(t, tt.files)).Fetch(context.Background())
			if err != nil || md.InstanceID != tt.wantID || md.Source != "none" {
				t.Fatalf("Fetch = %+v, %v; want instance-id %q", md, err, tt.wantID)
			}
		})
	}
	if None("").Name() != "none" {
		t.Fatal("name")
	}
}

func TestFile(t *testing.T) {
	const mid = "etc/machine-id"
	tests := []struct {
		name     string
		files    map[string]string // under the root; the datasource dir is "seed"
		noDir    bool
		want     *Metadata
		wantErrs []string // substrings; the first one is checked with the file name
	}{
		{
			name: "full meta-data and user-data",
			files: map[string]string{
				"seed/meta-data": "instance-id: vagrant-web-1\nlocal-hostname: web-1\nregion: local\navailability-zone: local-a\n" +
					"instance-type: vbox\nlocal-ipv4: 192.168.56.10\nmac: 08:00:27:00:00:01\n",
				"seed/user-data": testUserData,
			},
			want: &Metadata{Source: "file", InstanceID: "vagrant-web-1", Hostname: "web-1", Region: "local", AvailabilityZone: "local-a",
				InstanceType: "vbox", LocalIPv4: "192.168.56.10", MAC: "08:00:27:00:00:01", UserData: []byte(testUserData)},
		},
		{
			name:  "instance-id from machine-id, no files",
			files: map[string]string{"seed/.keep": "", mid: "abc123\n"},
			want:  &Metadata{Source: "file", InstanceID: "abc123"},
		},
		{
			name:  "cloud-init keys are ignored, comments only is empty",
			files: map[string]string{"seed/meta-data": "dsmode: local\npublic-keys: [a, b]\ninstance-id: x\n", mid: "m"},
			want:  &Metadata{Source: "file", InstanceID: "x"},
		},
		{
			name:  "comments only",
			files: map[string]string{"seed/meta-data": "# nothing yet\n", mid: "m"},
			want:  &Metadata{Source: "file", InstanceID: "m"},
		},
		{
			name:     "typo in a key names file and line",
			files:    map[string]string{"seed/meta-data": "instance-id: x\ninstance_type: t3\n"},
			wantErrs: []string{"meta-data:2: unknown key \"instance_type\"", "known keys: availability-zone, instance-id"},
		},
		{
			name:     "duplicate key",
			files:    map[string]string{"seed/meta-data": "region: a\nregion: b\n"},
			wantErrs: []string{"meta-data:2: region is set twice (first on line 1)"},
		},
		{
			name:     "list value",
			files:    map[string]string{"seed/meta-data": "instance-id:\n  - a\n"},
			wantErrs: []string{"meta-data:2: instance-id must be a single value"},
		},
		{
			name:     "not a mapping",
			files:    map[string]string{"seed/meta-data": "- a\n"},
			wantErrs: []string{"meta-data:1: meta-data must be a mapping"},
		},
		{
			name:     "yaml syntax error",
			files:    map[string]string{"seed/meta-data": "instance-id: x\n  region: [\n"},
			wantErrs: []string{"meta-data:2: "},
		},
		{
			name:     "no instance-id anywhere",
			files:    map[string]string{"seed/user-data": "x"},
			wantErrs: []string{"no instance-id: set instance-id in", "etc/machine-id"},
		},
		{
			name:     "missing directory",
			noDir:    true,
			wantErrs: []string{"seed does not exist"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := writeTree(t, tt.files)
			dir := filepath.Join(root, "seed")
			if !tt.noDir {
				_ = os.MkdirAll(dir, 0o755)
			}
			ds := NewFile(dir, root)
			md, err := ds.Fetch(context.Background())
			if len(tt.wantErrs) > 0 {
				if err == nil {
					t.Fatalf("Fetch = %+v, want an error", md)
				}
				for _, w := range tt.wantErrs {
					if !strings.Contains(err.Error(), w) {
						t.Fatalf("error %q does not contain %q", err, w)
					}
				}
				if !strings.Contains(err.Error(), dir) {
					t.Fatalf("error %q does not name the file", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if md.String() == "" || string(md.UserData) != string(tt.want.UserData) {
				t.Fatalf("user-data %q, want %q", md.UserData, tt.want.UserData)
			}
			md.UserData, tt.want.UserData = nil, nil
			if !equalMeta(md, tt.want) {
				t.Fatalf("Fetch = %+v, want %+v", md, tt.want)
			}
		})
	}
}

func equalMeta(a, b *Metadata) bool {
	fa, fb := a.Facts(), b.Facts()
	for k := range fa {
		if fa[k] != fb[k] {
			return false
		}
	}
	return a.Source == b.Source && len(a.Tags) == len(b.Tags)
}

func TestFactsAndString(t *testing.T) {
	md := &Metadata{Source: "ec2", InstanceID: "i-1", UserData: []byte(testUserData)}
	f := md.Facts()
	for _, k := range []string{"instance_id", "region", "availability_zone", "instance_type", "ami_id", "local_ipv4", "mac", "account_id", "hostname"} {
		if _, ok := f[k]; !ok {
			t.Errorf("fact %s missing", k)
		}
	}
	if len(f) != 9 || f["instance_id"] != "i-1" {
		t.Errorf("Facts = %v", f)
	}
	if s := md.String(); strings.Contains(s, "hunter2") || !strings.Contains(s, "user-data 44 bytes") {
		t.Errorf("String = %q", s)
	}
}
