//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"debug/elf"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/testbed"
)

func TestStaticBinaryAndVersion(t *testing.T) {
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("binary has a dynamic loader (PT_INTERP): not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("binary links %v", libs)
	}
	b := newBed(t, testbed.IMDSConfig{})
	r := b.run(t, "version")
	if r.code != 0 || !strings.Contains(r.stdout, testVersion) || !strings.Contains(r.stdout, testCommit) {
		t.Fatalf("version: %s", r)
	}
}

func TestRunWithS3LayerAndRoleCredentials(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{InstanceID: "i-0e2e000000000001"})
	b.imds.SetUserData(userData(s3.URL, "", "s3://config/layers/base.yaml"))

	plan := b.run(t, "plan")
	if plan.code != 0 {
		t.Fatalf("plan: %s", plan)
	}
	for _, want := range []string{"/etc/app/secret.conf", "root:root 0600 secret", "from s3://config/files/secret.conf", "/etc/app/instance.conf", "sha256:"} {
		if !strings.Contains(plan.stdout, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan.stdout)
		}
	}
	if got := treeFiles(t, b.root); len(got) != 0 {
		t.Fatalf("plan wrote under the root: %v", got)
	}

	before := b.imds.RequestCount()
	r := b.run(t, "run")
	if r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	secretPath := filepath.Join(b.root, "etc/app/secret.conf")
	if got := mustRead(t, secretPath); got != secretFile {
		t.Errorf("secret.conf content differs")
	}
	if m := mode(t, secretPath); m != 0o600 {
		t.Errorf("secret.conf mode %04o, want 0600", m)
	}
	if got := mustRead(t, filepath.Join(b.root, "etc/app/instance.conf")); got != "instance i-0e2e000000000001 in eu-west-1\n" {
		t.Errorf("instance.conf = %q", got)
	}
	steps := lastRun(readJournal(t, b.state))
	for _, s := range []string{"datasource", "config", "files", "run"} {
		if steps[s] != "ok" {
			t.Errorf("journal: step %s = %q, want ok (%v)", s, steps[s], steps)
		}
	}
	fin := logLine(t, r.stderr, "run finished")
	n, _ := fin["imds_requests"].(float64)
	served := b.imds.RequestCount() - before
	// token, identity document, mac, local-hostname, user-data, role list
	// (waited for), credentials: 7, one under the budget of 8.
	if n != 7 || int(n) != served {
		t.Errorf("imds_requests logged %v, emulator served %d: want both 7", n, served)
	}

	// status reads the journal.
	st := b.run(t, "status", "--json")
	if st.code != 0 || !strings.Contains(st.stdout, `"done"`) {
		t.Errorf("status: %s", st)
	}
}

func TestDeniedBucketNamesBucketKeyAndRole(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{})
	ud := strings.Replace(string(userData(s3.URL, "", "s3://other/layers/base.yaml")), "deadline: 40s", "deadline: 4s", 1)
	b.imds.SetUserData([]byte(ud))
	r := b.run(t, "run")
	if r.code != 1 {
		t.Fatalf("want exit 1: %s", r)
	}
	last := lastLine(r.stderr)
	t.Logf("operator sees: %s", last)
	for _, want := range []string{"other", "layers/base.yaml", role, "AccessDenied"} {
		if !strings.Contains(last, want) {
			t.Errorf("error %q lacks %q", last, want)
		}
	}
	if r.elapsed > 30*time.Second {
		t.Errorf("took %s: the 4s deadline was not kept", r.elapsed)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func TestIMDSDownAtBootThenUp(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{})
	b.imds.SetUserData(userData(s3.URL, "", "s3://config/layers/base.yaml"))
	b.imds.DownFor(20 * time.Second)
	r := b.run(t, "run")
	if r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	if r.elapsed < 19*time.Second {
		t.Fatalf("finished in %s while IMDS was down for 20s", r.elapsed)
	}
}

func TestIMDSNeverUp(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now: connection refused
	b := newBed(t, testbed.IMDSConfig{})
	b.url = "http://" + addr
	cfg := filepath.Join(t.TempDir(), "config.yaml")
	os.WriteFile(cfg, []byte("imds:\n  deadline: 6s\n"), 0o644)
	r := b.run(t, "run", "--config", cfg)
	if r.code != 1 {
		t.Fatalf("want exit 1: %s", r)
	}
	msg := lastLine(r.stderr)
	t.Logf("operator sees: %s", msg)
	if !strings.Contains(msg, "IMDS") || !strings.Contains(msg, "6s") || !strings.Contains(msg, addr) {
		t.Errorf("message %q should name IMDS, its address and the 6s deadline", msg)
	}
	if r.elapsed > 15*time.Second {
		t.Errorf("took %s, deadline 6s", r.elapsed)
	}
}

func TestIMDSv1OnlyEndpoint(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{V1Only: true})
	b.imds.SetUserData(userData(s3.URL, "", "s3://config/layers/base.yaml"))
	cfgDir := t.TempDir()
	strict := filepath.Join(cfgDir, "strict.yaml")
	os.WriteFile(strict, []byte("imds:\n  deadline: 5s\ninclude:\n  - s3://config/layers/base.yaml\naws:\n  s3:\n    endpoint: "+s3.URL+"\n    path_style: true\n"), 0o644)
	r := b.run(t, "run", "--config", strict)
	t.Logf("operator sees: %s", lastLine(r.stderr))
	if r.code != 1 || !strings.Contains(r.stderr, "allow_v1") {
		t.Fatalf("IMDSv1-only endpoint without allow_v1: want exit 1 naming imds.allow_v1: %s", r)
	}
	if _, err := os.Stat(filepath.Join(b.root, "etc/app/secret.conf")); err == nil {
		t.Fatal("a file was written although IMDS was refused")
	}
	allow := filepath.Join(cfgDir, "allow.yaml")
	os.WriteFile(allow, []byte("imds:\n  allow_v1: true\n  deadline: 5s\ninclude:\n  - s3://config/layers/base.yaml\naws:\n  s3:\n    endpoint: "+s3.URL+"\n    path_style: true\n"), 0o644)
	r = b.run(t, "run", "--config", allow)
	if r.code != 0 {
		t.Fatalf("with allow_v1: %s", r)
	}
	for _, req := range b.imds.Requests() {
		if req.HadToken {
			t.Fatalf("a request carried a token on a v1-only endpoint: %+v", req)
		}
	}
}

func TestBootFaultsRecovered(t *testing.T) {
	proxy := newS3Faults(t)
	b := newBed(t, testbed.IMDSConfig{})
	b.imds.SetUserData(userData(proxy.url, "", "s3://config/layers/base.yaml"))
	b.imds.RoleMissingFor(15 * time.Second)
	b.imds.Throttle(6, 429)
	proxy.denyUntil.Store(time.Now().Add(25 * time.Second).UnixNano()) // role appears at 15s, IAM "propagates" 10s later
	proxy.slowDowns.Store(2)
	r := b.run(t, "run")
	if r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	if proxy.denied.Load() == 0 {
		t.Fatal("the AccessDenied window was never hit: the test proves nothing")
	}
	if got := mustRead(t, filepath.Join(b.root, "etc/app/secret.conf")); got != secretFile {
		t.Fatal("secret.conf content differs")
	}
	var throttled int
	for _, req := range b.imds.Requests() {
		if req.Status == 429 {
			throttled++
		}
	}
	if throttled != 6 {
		t.Errorf("429 answered %d times, want 6", throttled)
	}
}

func TestMalformedSecondLayerWritesNothing(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{})
	b.imds.SetUserData(userData(s3.URL, "", "s3://config/layers/base.yaml", "s3://config/layers/bad.yaml"))
	r := b.run(t, "run")
	if r.code != 2 {
		t.Fatalf("want exit 2: %s", r)
	}
	t.Logf("operator sees: %s", lastLine(r.stderr))
	if !strings.Contains(r.stderr, "s3://config/layers/bad.yaml:3:") || !strings.Contains(r.stderr, "files[0].mode") {
		t.Errorf("error should name s3://config/layers/bad.yaml:3:COL and files[0].mode:\n%s", r.stderr)
	}
	if got := treeFiles(t, b.root); len(got) != 0 {
		t.Fatalf("files written under the root: %v", got)
	}
}

func TestUnknownKeyIsNamed(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{})
	b.imds.SetUserData(userData(s3.URL, "", "s3://config/layers/unknown.yaml"))
	r := b.run(t, "run")
	t.Logf("operator sees: %s", lastLine(r.stderr))
	if r.code != 2 || !strings.Contains(r.stderr, "s3://config/layers/unknown.yaml:4:1") || !strings.Contains(r.stderr, "fiels") {
		t.Fatalf("want exit 2 naming fiels at unknown.yaml:4:1: %s", r)
	}
}

func TestGzipUserData(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{})
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(userData(s3.URL, "", "s3://config/layers/base.yaml"))
	zw.Close()
	b.imds.SetUserData(buf.Bytes())
	if r := b.run(t, "run"); r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	if got := mustRead(t, filepath.Join(b.root, "etc/app/secret.conf")); got != secretFile {
		t.Fatal("secret.conf differs")
	}
}

// mimeUserData is what cloud-init's make-mime or Terraform's cloudinit_config
// produce: a cloud-config part, our config and a shell script.
func mimeUserData(endpoint string) []byte {
	return []byte(`Content-Type: multipart/mixed; boundary="===BOUNDARY=="
MIME-Version: 1.0

--===BOUNDARY==
Content-Type: text/cloud-config; charset="us-ascii"
Content-Disposition: attachment; filename="cloud.yaml"

#cloud-config
users: [default]
ssh_pwauth: false
runcmd: ["echo hi"]
write_files:
  - path: /etc/from-cloud-config
    content: hello from cloud-config
    permissions: "0640"
--===BOUNDARY==
Content-Type: text/x-shellscript; charset="us-ascii"
Content-Disposition: attachment; filename="setup.sh"

#!/bin/sh
set -e
echo "script ran for $BOOTSTRAP_INSTANCE_ID"
echo run >> "$BOOTSTRAP_ROOT/script-runs"
--===BOUNDARY==
Content-Type: text/x-bootstrap-config; charset="us-ascii"
Content-Disposition: attachment; filename="bootstrap.yaml"

` + string(userData(endpoint, "", "s3://config/layers/base.yaml")) + `
--===BOUNDARY==--
`)
}

func TestMIMEMultipartUserDataAndCloudConfigWarning(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{})
	b.imds.SetUserData(mimeUserData(s3.URL))
	r := b.run(t, "run")
	if r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	if n := strings.Count(r.stderr, "ignoring unsupported keys"); n != 1 {
		t.Errorf("want exactly one warning about unsupported cloud-config keys, got %d:\n%s", n, r.stderr)
	}
	if !strings.Contains(r.stderr, "ssh_pwauth, users") {
		t.Errorf("warning should name ssh_pwauth and users:\n%s", r.stderr)
	}
	// MIME config parts merge in order, lists replace: the later part's
	// included base.yaml files win over the cloud-config write_files.
	if got := mustRead(t, filepath.Join(b.root, "etc/app/secret.conf")); got != secretFile {
		t.Fatal("secret.conf differs")
	}
	if got := mustRead(t, filepath.Join(b.root, "script-runs")); got != "run\n" {
		t.Fatalf("script-runs = %q, want one run", got)
	}
	if !strings.Contains(r.stderr, "script ran for i-") {
		t.Errorf("script output not logged:\n%s", r.stderr)
	}
}

func TestScriptFailureFailsTheRun(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{})
	b.imds.SetUserData([]byte("#!/bin/sh\necho about to fail\nexit 3\n"))
	r := b.run(t, "run")
	if r.code != 1 || !strings.Contains(r.stderr, "exited with status 3") {
		t.Fatalf("want exit 1 naming status 3: %s", r)
	}
	if steps := lastRun(readJournal(t, b.state)); steps["run"] != "failed" {
		t.Fatalf("journal: %v", steps)
	}
}

func TestSameInstanceSkipsNewInstanceReruns(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{InstanceID: "i-0aaaaaaaaaaaaaaa1"})
	b.imds.SetUserData(mimeUserData(s3.URL))
	if r := b.run(t, "run"); r.code != 0 {
		t.Fatalf("first run: %s", r)
	}
	r := b.run(t, "run")
	if r.code != 0 {
		t.Fatalf("second run: %s", r)
	}
	steps := lastRun(readJournal(t, b.state))
	if steps["files"] != "skipped" || steps["script:user-data[2](setup.sh)"] != "skipped" {
		t.Fatalf("reboot: per-instance steps should be skipped: %v", steps)
	}
	if got := mustRead(t, filepath.Join(b.root, "script-runs")); got != "run\n" {
		t.Fatalf("script ran again on the same instance: %q", got)
	}

	// The same disk booted as a new instance (an AMI made from this one).
	b2 := newBed(t, testbed.IMDSConfig{InstanceID: "i-0bbbbbbbbbbbbbbb2"})
	b2.root, b2.state = b.root, b.state
	b2.imds.SetUserData(mimeUserData(s3.URL))
	if r := b2.run(t, "run"); r.code != 0 {
		t.Fatalf("new instance run: %s", r)
	}
	steps = lastRun(readJournal(t, b.state))
	if steps["files"] != "ok" || steps["script:user-data[2](setup.sh)"] != "ok" {
		t.Fatalf("new instance: per-instance steps should run: %v", steps)
	}
	if got := mustRead(t, filepath.Join(b.root, "script-runs")); got != "run\nrun\n" {
		t.Fatalf("script-runs = %q, want two runs", got)
	}
}

// TestKilledAtEachStepBoundary kills the run with SIGKILL at every step
// boundary (and between two files), starts it again, and checks that the job
// is finished, that a step recorded done is not redone, and that no partial
// file is ever visible.
func TestKilledAtEachStepBoundary(t *testing.T) {
	script := "script:user-data[2](setup.sh)"
	points := []struct {
		name string
		// scriptRuns is how many times the script has run once the rerun
		// is over: 2 only where it ran but was not yet recorded done.
		scriptRuns int
	}{
		{"before:datasource", 1},
		{"after:datasource", 1},
		{"after:config", 1},
		{"before:files", 1},
		{"applied:file:/etc/app/secret.conf", 1}, // between two files
		{"applied:files", 1},
		{"after:files", 1},
		{"before:" + script, 1},
		{"applied:" + script, 2},
		{"after:" + script, 1},
	}
	for _, p := range points {
		t.Run(strings.ReplaceAll(p.name, "/", "_"), func(t *testing.T) {
			b := newBed(t, testbed.IMDSConfig{})
			b.imds.SetUserData(mimeUserData(s3.URL))
			r := b.runEnv(t, []string{"BOOTSTRAP_FAILPOINT=" + p.name}, "run")
			if !r.signaled {
				t.Fatalf("failpoint %s did not kill the run: %s", p.name, r)
			}
			checkNoPartialFiles(t, b.root)
			// A unit gated on status must not go ahead after a killed run.
			if st := b.run(t, "status"); st.code != 1 || !strings.Contains(st.stdout, "state: interrupted") {
				t.Fatalf("status after the kill: %s", st)
			}
			r = b.run(t, "run")
			if r.code != 0 {
				t.Fatalf("rerun: %s", r)
			}
			checkNoPartialFiles(t, b.root)
			if got := mustRead(t, filepath.Join(b.root, "etc/app/secret.conf")); got != secretFile {
				t.Fatal("secret.conf differs after the rerun")
			}
			if m := mode(t, filepath.Join(b.root, "etc/app/secret.conf")); m != 0o600 {
				t.Fatalf("mode %04o", m)
			}
			runs := strings.Count(mustRead(t, filepath.Join(b.root, "script-runs")), "run\n")
			if runs != p.scriptRuns {
				t.Fatalf("script ran %d times, want %d", runs, p.scriptRuns)
			}
			steps := lastRun(readJournal(t, b.state))
			if steps["run"] != "ok" {
				t.Fatalf("rerun journal: %v", steps)
			}
			perInstance := strings.HasSuffix(p.name, ":files") || strings.Contains(p.name, ":script:")
			if perInstance && strings.HasPrefix(p.name, "after:") && steps[strings.TrimPrefix(p.name, "after:")] != "skipped" {
				t.Fatalf("a step recorded done was redone: %v", steps)
			}
		})
	}
}

// checkNoPartialFiles: every file under root is a complete file we meant to
// write; no temp file is left where a reader could take it for real.
func checkNoPartialFiles(t *testing.T, root string) {
	t.Helper()
	want := map[string]string{
		"etc/app/secret.conf": secretFile,
	}
	for _, rel := range treeFiles(t, root) {
		if strings.Contains(filepath.Base(rel), "bootstrap-tmp") {
			continue // a stale temp file of a killed run; removed by the rerun
		}
		if body, ok := want[rel]; ok && mustRead(t, filepath.Join(root, rel)) != body {
			t.Fatalf("%s is partial or wrong", rel)
		}
	}
}

func TestNoPartialTempFilesAfterRerun(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{})
	b.imds.SetUserData(userData(s3.URL, "", "s3://config/layers/base.yaml"))
	if r := b.runEnv(t, []string{"BOOTSTRAP_FAILPOINT=applied:file:/etc/app/secret.conf"}, "run"); !r.signaled {
		t.Fatalf("not killed: %s", r)
	}
	if r := b.run(t, "run"); r.code != 0 {
		t.Fatalf("rerun: %s", r)
	}
	for _, f := range treeFiles(t, b.root) {
		if strings.Contains(f, "tmp") {
			t.Errorf("temp file left: %s", f)
		}
	}
}

// status --wait waits while a run holds the lock, then reports its outcome:
// what a user-data launcher or a Vagrant provisioner polls on.
func TestStatusWaitFollowsARunningRun(t *testing.T) {
	b := newBed(t, testbed.IMDSConfig{})
	b.imds.SetUserData(userData(s3.URL, "", "s3://config/layers/base.yaml"))
	b.imds.DownFor(4 * time.Second)
	done := make(chan result, 1)
	go func() { done <- b.run(t, "run") }()
	// Wait (bounded) until the run holds the lock.
	deadline := time.Now().Add(3 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(b.state, "lock")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the run never took its lock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := b.run(t, "status", "--wait", "--timeout", "2m")
	r := <-done
	if r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	if st.code != 0 || !strings.Contains(st.stdout, "state: done") {
		t.Fatalf("status --wait: %s", st)
	}
	if st.elapsed < 2*time.Second {
		t.Fatalf("status --wait returned after %s, while the run waited ~4s for IMDS", st.elapsed)
	}
}
