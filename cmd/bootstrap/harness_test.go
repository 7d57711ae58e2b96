package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/testbed"
)

// asBinaryEnv makes the test binary behave as the bootstrap binary: the
// tests that need a real process (one a failpoint kills) run it as a child.
const asBinaryEnv = "BOOTSTRAP_TEST_AS_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(asBinaryEnv) == "1" {
		main()
	}
	os.Exit(m.Run())
}

// childResult is how a child bootstrap process ended.
type childResult struct {
	code           int
	signaled       bool
	stdout, stderr string
}

// runChild runs bootstrap as a child process with extra environment.
func runChild(t *testing.T, env []string, args ...string) childResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), asBinaryEnv+"=1"), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := childResult{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
		ws, _ := ee.Sys().(syscall.WaitStatus)
		r.signaled = ws.Signaled()
	} else if err != nil {
		t.Fatalf("running bootstrap: %v", err)
	}
	return r
}

// seedBed is a Vagrant-style machine: a seed directory for the file
// datasource, a target root and a state directory, all under one temp dir.
type seedBed struct {
	dir, seed, root, state string
}

func newSeedBed(t *testing.T, metaData, userData string) *seedBed {
	t.Helper()
	dir := t.TempDir()
	b := &seedBed{dir: dir, seed: filepath.Join(dir, "seed"), root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state")}
	for _, d := range []string{b.seed, b.root} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(b.seed, "meta-data"), metaData)
	if userData != "" {
		writeFile(t, filepath.Join(b.seed, "user-data"), userData)
	}
	return b
}

// args are the flags that point a command at the bed.
func (b *seedBed) args(cmd string, more ...string) []string {
	return append([]string{cmd, "--datasource", "file", "--datasource-dir", b.seed, "--root", b.root, "--state-dir", b.state}, more...)
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// ec2Bed is an EC2 instance on loopback: the IMDSv2 emulator (reached
// through AWS_EC2_METADATA_SERVICE_ENDPOINT, as on a real run) and an
// in-process object store the role's credentials read from.
type ec2Bed struct {
	imds  *testbed.IMDS
	store *testbed.ObjectStore
	s3URL string
	root  string
	state string
}

func newEC2Bed(t *testing.T, cfg testbed.IMDSConfig) *ec2Bed {
	t.Helper()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	b := &ec2Bed{store: testbed.NewObjectStore()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: b.store.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	b.s3URL = "http://" + ln.Addr().String()

	if cfg.Role == "" {
		cfg.Role = "cmd-test-role"
	}
	b.imds = testbed.NewIMDS(cfg)
	u, err := b.imds.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.imds.Close() })
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", u)
	dir := t.TempDir()
	b.root, b.state = filepath.Join(dir, "root"), filepath.Join(dir, "state")
	if err := os.Mkdir(b.root, 0o755); err != nil {
		t.Fatal(err)
	}
	return b
}

// awsSection points S3 at the bed's object store, with a short deadline.
func (b *ec2Bed) awsSection() string {
	return "aws:\n  deadline: 5s\n  s3:\n    endpoint: " + b.s3URL + "\n    path_style: true\n"
}

func (b *ec2Bed) args(cmd string, more ...string) []string {
	return append([]string{cmd, "--datasource", "ec2", "--root", b.root, "--state-dir", b.state, "--log-format", "json"}, more...)
}

// logRecord returns the JSON log record with message msg, or fails.
func logRecord(t *testing.T, stderr, msg string) map[string]any {
	t.Helper()
	for _, line := range strings.Split(stderr, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			return rec
		}
	}
	t.Fatalf("no log record %q in:\n%s", msg, stderr)
	return nil
}
