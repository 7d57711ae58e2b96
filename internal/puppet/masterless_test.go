package puppet

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/rootfs"
)

type entry struct {
	name, body string
	typ        byte
	mode       int64
}

func tarball(t *testing.T, gz bool, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w *tar.Writer
	var z *gzip.Writer
	if gz {
		z = gzip.NewWriter(&buf)
		w = tar.NewWriter(z)
	} else {
		w = tar.NewWriter(&buf)
	}
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: mode, Size: int64(len(e.body)), Linkname: "/etc/shadow"}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if err := w.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			w.Write([]byte(e.body))
		}
	}
	w.Close()
	if z != nil {
		z.Close()
	}
	return buf.Bytes()
}

func TestUnpack(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		want    map[string]string // path under dir → content
		wantErr string
	}{
		{"gzip, ./ prefixes, an executable", tarball(t, true, entry{name: "./manifests/", typ: tar.TypeDir}, entry{name: "./manifests/site.pp", body: "notice(1)\n"},
			entry{name: "modules/m/files/run", body: "#!/bin/sh\n", mode: 0o755}), map[string]string{"manifests/site.pp": "notice(1)\n", "modules/m/files/run": "#!/bin/sh\n"}, ""},
		{"plain tar", tarball(t, false, entry{name: "manifests/site.pp", body: "x"}), map[string]string{"manifests/site.pp": "x"}, ""},
		{"escape with ..", tarball(t, true, entry{name: "../../etc/cron.d/x", body: "x"}), nil, `../../etc/cron.d/x: leads out of the archive's directory`},
		{"absolute", tarball(t, true, entry{name: "/etc/x", body: "x"}), nil, `/etc/x: absolute path in the archive`},
		{"a symlink", tarball(t, true, entry{name: "manifests/l", typ: tar.TypeSymlink}), nil, `manifests/l: only files and directories are unpacked, links and devices are refused`},
		{"empty", tarball(t, true), nil, "holds no files"},
		{"not a tarball", []byte("hello, world"), nil, "read the archive"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			root, err := rootfs.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer root.Close()
			blob := filepath.Join(t.TempDir(), "blob")
			os.WriteFile(blob, tt.data, 0o600)
			f, _ := os.Open(blob)
			defer f.Close()
			err = unpack(context.Background(), root, "/var/cache/x", f)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for p, want := range tt.want {
				got, err := os.ReadFile(filepath.Join(dir, "var/cache/x", p))
				if err != nil || string(got) != want {
					t.Errorf("%s: %q, %v", p, got, err)
				}
			}
			if fi, err := os.Stat(filepath.Join(dir, "var/cache/x/modules/m/files/run")); err == nil && fi.Mode().Perm() != 0o755 {
				t.Errorf("executable mode %v", fi.Mode())
			}
		})
	}
}

func TestPuppetErrorAt(t *testing.T) {
	const dir = "/var/cache/bootstrap/puppet/0123456789abcdef"
	tail := []string{
		"Error: Facter: Permission denied @ rb_sysopen - /proc/1/environ",
		"Error: Could not parse for environment production: Syntax error at 'content' (file: " + dir + "/manifests/site.pp, line: 3, column: 3) on node vm",
		"",
	}
	want := "manifests/site.pp:3:3: Could not parse for environment production: Syntax error at 'content'"
	if got := puppetErrorAt(tail, dir); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := puppetErrorAt([]string{"Error: something (file: /etc/x.pp, line: 9)"}, dir); got != "/etc/x.pp:9: something" {
		t.Errorf("a file outside the tree: %q", got)
	}
	if got := puppetErrorAt([]string{"Error: no position"}, dir); got != "" {
		t.Errorf("no position: %q", got)
	}
}

// applyRunner plays puppet apply: it fails like puppet on a broken manifest.
type applyRunner struct{ argv []string }

func (r *applyRunner) Run(_ context.Context, s command.Spec, out func(string)) (command.Result, error) {
	r.argv = s.Argv
	site := s.Argv[len(s.Argv)-1]
	b, err := os.ReadFile(filepath.Join(s.Chroot, site))
	if err != nil || strings.Contains(string(b), "broken") {
		line := "Error: Could not parse for environment production: Syntax error at 'broken' (file: " + site + ", line: 2, column: 1) on node n"
		out(line)
		return command.Result{ExitCode: 1, Tail: []string{line}}, nil
	}
	return command.Result{ExitCode: 2}, nil
}

func TestMasterless(t *testing.T) {
	good := tarball(t, true, entry{name: "manifests/site.pp", body: "notice('ok')\n"}, entry{name: "modules/m/manifests/init.pp", body: "class m {}\n"}, entry{name: "hiera.yaml", body: "version: 5\n"})
	bad := tarball(t, true, entry{name: "manifests/site.pp", body: "notice('ok')\nbroken }\n"})
	for _, tt := range []struct {
		name, src, wantErr string
	}{
		{"applies", "s3://b/good.tgz", ""},
		{"a broken manifest names file and line", "s3://b/bad.tgz", "puppet apply exited 1: manifests/site.pp:2:1: Could not parse for environment production: Syntax error at 'broken'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t, "puppet:\n  masterless:\n    source: "+tt.src+"\n    hiera_config: hiera.yaml\n  facts: {team: ops}\n")
			b.in.Fetcher = memFetch{"s3://b/good.tgz": string(good), "s3://b/bad.tgz": string(bad)}
			r := &applyRunner{}
			steps, err := Capability{Runner: r, Manager: b.pkgs}.Steps(context.Background(), b.in)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, s := range steps {
				names = append(names, s.Name)
			}
			if strings.Join(names, " ") != "puppet:install puppet:config puppet:apply" {
				t.Fatalf("steps %q", names)
			}
			err = applySteps(steps, b.env)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				argv := strings.Join(r.argv, " ")
				for _, want := range []string{"/usr/bin/puppet apply --modulepath /var/cache/bootstrap/puppet/", "/modules --hiera_config /var/cache/bootstrap/puppet/", "/hiera.yaml --detailed-exitcodes --color=false /var/cache/bootstrap/puppet/"} {
					if !strings.Contains(argv, want) {
						t.Errorf("argv %q lacks %q", argv, want)
					}
				}
				facts, _ := os.ReadFile(filepath.Join(b.dir, "etc/facter/facts.d/bootstrap.yaml"))
				if !strings.Contains(string(facts), `team: "ops"`) && !strings.Contains(string(facts), "team: ops") {
					t.Errorf("facts.d: %q", facts)
				}
				if _, err := os.Stat(filepath.Join(b.dir, "etc/puppet/csr_attributes.yaml")); err == nil {
					t.Error("masterless wrote csr_attributes.yaml")
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
		})
	}
}
