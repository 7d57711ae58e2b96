package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An image build: --datasource none takes the instance id from the
// target's /etc/machine-id, not the build host's, so two images built with
// one state dir do not skip each other's steps.
func TestNoneDatasourceReadsTheRootsMachineID(t *testing.T) {
	dir := t.TempDir()
	root, cfg := filepath.Join(dir, "root"), filepath.Join(dir, "image.yaml")
	writeFile(t, filepath.Join(root, "etc/machine-id"), "0123456789abcdef0123456789abcdef\n")
	writeFile(t, cfg, seedConfig)
	code, out, errs := runCLI(t, "", "plan", "--json", "--datasource", "none", "--root", root, "--config", cfg, "--state-dir", filepath.Join(dir, "state"))
	var p struct{ Instance string }
	if err := json.Unmarshal([]byte(out), &p); err != nil || code != 0 {
		t.Fatalf("plan: exit %d %v\n%s", code, err, errs)
	}
	if p.Instance != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("instance %q, want the root's machine-id", p.Instance)
	}
}

// Relative paths are made absolute at start: scripts run with the target
// root as working directory, so a relative --state-dir or --root would
// name another place for them.
func TestRelativePathsAreMadeAbsolute(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	script := "#!/bin/sh\nset -e\necho ran > \"$BOOTSTRAP_ROOT/ran\"\n"
	b := newSeedBed(t, "instance-id: vagrant-01\n", script)
	for _, p := range []*string{&b.seed, &b.root, &b.state} {
		rel, err := filepath.Rel(dir, *p)
		if err != nil {
			t.Fatal(err)
		}
		*p = rel
	}
	code, _, errs := runCLI(t, "", b.args("run")...)
	if code != 0 {
		t.Fatalf("run with relative paths: exit %d\n%s", code, errs)
	}
	if got, err := os.ReadFile(filepath.Join(dir, b.root, "ran")); string(got) != "ran\n" {
		t.Fatalf("the script did not write under the root: %q %v", got, err)
	}

	// A relative --config too, named absolutely in messages.
	writeFile(t, filepath.Join(dir, "bad.yaml"), "files: 3\n")
	code, _, errs = runCLI(t, "", "validate", "--config", "bad.yaml")
	if code != 2 || !strings.Contains(errs, filepath.Join(dir, "bad.yaml")+":1:") {
		t.Fatalf("validate --config bad.yaml: exit %d %s", code, errs)
	}
}

// Usage errors exit 2 on every command: the operator must fix a flag, a
// retry will not help.
func TestUsageErrorsExit2(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a-file")
	writeFile(t, file, "x")
	seed := filepath.Join(dir, "seed")
	writeFile(t, filepath.Join(seed, "meta-data"), "instance-id: vagrant-01\n")
	cfg := filepath.Join(dir, "c.yaml")
	writeFile(t, cfg, seedConfig)
	missing := filepath.Join(dir, "missing")
	st := filepath.Join(dir, "state")
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"run", "--datasource", "none", "--config", cfg, "--root", missing, "--state-dir", st}, []string{"--root", missing}},
		{[]string{"plan", "--datasource", "none", "--config", cfg, "--root", missing, "--state-dir", st}, []string{"--root", missing}},
		{[]string{"validate", "--root", file, cfg}, []string{"--root", file, "not a directory"}},
		{[]string{"run", "--datasource", "none", "--config", cfg, "--root", dir, "--state-dir", file}, []string{file}},
		{[]string{"run", "--datasource", "none", "--config", cfg, "--root", dir, "--state-dir", filepath.Join(file, "state")}, []string{file}},
		{[]string{"status", "--state-dir", file}, []string{file}},
		{[]string{"plan", "--datasource", "none", "--config", cfg, "--root", dir, "--state-dir", file}, []string{file}},
		{[]string{"run", "--datasource", "file", "--datasource-dir", missing, "--root", dir, "--state-dir", st}, []string{missing}},
		{[]string{"plan", "--datasource", "none", "--config", "http://config.example.com/web.yaml", "--root", dir, "--state-dir", st}, []string{"http://", "https://"}},
		{[]string{"validate", "http://config.example.com/web.yaml"}, []string{"http://", "https://"}},
	}
	for _, tt := range tests {
		code, out, errs := runCLI(t, "", tt.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s%s", tt.args, code, out, errs)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(errs, w) {
				t.Errorf("%v: message lacks %q:\n%s", tt.args, w, errs)
			}
		}
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("a missing --root was created")
	}
}
