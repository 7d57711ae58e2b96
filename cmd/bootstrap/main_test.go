package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCLI(t *testing.T, stdin string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = Main(context.Background(), args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

func TestUsageAndExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
		want string // in stdout+stderr
	}{
		{nil, 2, "commands:"},
		{[]string{"--help"}, 0, "global flags"},
		{[]string{"help"}, 0, "validate"},
		{[]string{"help", "status"}, 0, "-wait"},
		{[]string{"run", "--help"}, 0, "-root"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"run", "--no-such-flag"}, 2, "no-such-flag"},
		{[]string{"--log-format", "xml", "version"}, 2, "--log-format"},
		{[]string{"run", "extra"}, 2, "unexpected arguments"},
		{[]string{"version"}, 0, "bootstrap dev (commit unknown"},
	}
	for _, tt := range tests {
		code, out, errs := runCLI(t, "", tt.args...)
		if code != tt.code || !strings.Contains(out+errs, tt.want) {
			t.Errorf("%v: exit %d, output %q: want exit %d containing %q", tt.args, code, out+errs, tt.code, tt.want)
		}
	}
}

func TestGlobalFlagsBeforeOrAfterCommand(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--state-dir", dir, "status", "--json"},
		{"status", "--state-dir", dir, "--json"},
	} {
		code, out, errs := runCLI(t, "", args...)
		if code != 0 || !strings.Contains(out, `"state": "none"`) {
			t.Errorf("%v: exit %d %s %s", args, code, out, errs)
		}
	}
}

func TestValidate(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("files:\n  - path: /etc/a\n    content: \"${instance_id}\"\n"), 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("files:\n  - path: /etc/a\n    content: a\n    mdoe: 0644\n"), 0o644)

	code, out, errs := runCLI(t, "", "validate", good)
	if code != 0 || !strings.Contains(out, "valid: 1 layer(s), 1 file(s)") {
		t.Fatalf("good: exit %d %s %s", code, out, errs)
	}
	code, _, errs = runCLI(t, "", "validate", bad)
	if code != 2 || !strings.Contains(errs, bad+":4:5") || !strings.Contains(errs, `"mdoe"`) {
		t.Fatalf("bad: exit %d %s", code, errs)
	}
	code, _, errs = runCLI(t, "files: 3\n", "validate", "-")
	if code != 2 || !strings.Contains(errs, "stdin:1:") {
		t.Fatalf("stdin: exit %d %s", code, errs)
	}
	code, _, errs = runCLI(t, "", "validate", filepath.Join(dir, "missing.yaml"))
	if code != 2 || !strings.Contains(errs, "missing.yaml") {
		t.Fatalf("missing: exit %d %s", code, errs)
	}
}

// The Vagrant path: the file datasource, plan then run then status.
func TestFileDatasourcePlanRunStatus(t *testing.T) {
	dir := t.TempDir()
	seed, root, st := filepath.Join(dir, "seed"), filepath.Join(dir, "root"), filepath.Join(dir, "state")
	os.MkdirAll(seed, 0o755)
	os.MkdirAll(root, 0o755)
	os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: vagrant-01\nlocal-hostname: web1\n"), 0o644)
	os.WriteFile(filepath.Join(seed, "user-data"), []byte("#cloud-config\nwrite_files:\n  - path: /etc/hello\n    content: hi from ${hostname}\n    permissions: '0640'\n"), 0o644)
	common := []string{"--datasource", "file", "--datasource-dir", seed, "--root", root, "--state-dir", st}

	code, out, errs := runCLI(t, "", append([]string{"plan", "--json"}, common...)...)
	if code != 0 {
		t.Fatalf("plan: %d %s", code, errs)
	}
	var p struct {
		Instance string
		Steps    []struct {
			Name    string
			Actions []struct{ Path, Mode, SHA256 string }
		}
	}
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("plan --json: %v\n%s", err, out)
	}
	if p.Instance != "vagrant-01" || len(p.Steps) != 1 || p.Steps[0].Actions[0].Path != "/etc/hello" || p.Steps[0].Actions[0].Mode != "0640" {
		t.Fatalf("plan %+v", p)
	}
	if code, _, errs := runCLI(t, "", append([]string{"run"}, common...)...); code != 0 {
		t.Fatalf("run: %d %s", code, errs)
	}
	// cloud-config is literal, as under cloud-init: no ${fact} expansion.
	if b, _ := os.ReadFile(filepath.Join(root, "etc/hello")); string(b) != "hi from ${hostname}" {
		t.Fatalf("etc/hello = %q", b)
	}
	code, out, _ = runCLI(t, "", "status", "--state-dir", st)
	if code != 0 || !strings.Contains(out, "done") || !strings.Contains(out, "vagrant-01") {
		t.Fatalf("status: %d %s", code, out)
	}
}

func TestDemo(t *testing.T) {
	// demo isolates itself from the host's AWS setup through the process
	// environment; t.Setenv restores it afterwards.
	for _, k := range []string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3"} {
		t.Setenv(k, "")
	}
	code, out, errs := runCLI(t, "", "demo")
	if code != 0 {
		t.Fatalf("demo: exit %d\n%s\n%s", code, out, errs)
	}
	for _, want := range []string{"== plan", "layer s3://demo-config/layers/base.yaml", "== journal", "files        ok", "== files written", "0600", "/etc/demo-app/credentials", "/etc/motd"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
	// The demo's secret file and its role credentials never show.
	for _, secret := range []string{"demo-not-a-real-token", "demo/secret/access/key", "demo-session-token"} {
		if strings.Contains(out+errs, secret) {
			t.Errorf("demo printed a secret %q", secret)
		}
	}
}

func TestMalformedMetaDataIsBadInput(t *testing.T) {
	seed := t.TempDir()
	os.WriteFile(filepath.Join(seed, "meta-data"), []byte("instance-id: a\ninstance-idd: b\n"), 0o644)
	code, _, errs := runCLI(t, "", "plan", "--datasource", "file", "--datasource-dir", seed, "--state-dir", t.TempDir(), "--root", t.TempDir())
	if code != 2 || !strings.Contains(errs, filepath.Join(seed, "meta-data")+":2") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}
