//go:build e2e

// Package e2e runs the real, statically built bootstrap binary against the
// IMDSv2 emulator and a real MinIO whose STS session credentials are served
// through the emulator, so the IAM-role path is exercised for real. All
// traffic stays on 127.0.0.1.
//
// Run: BOOTSTRAP_E2E=1 go test -tags e2e ./e2e/ (MinIO from .ci/run).
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/testbed"
	"github.com/opsboot/bootstrap/internal/testbed/minio"
)

const (
	role        = "bootstrap-e2e-role"
	testVersion = "9.9.9-e2e"
	testCommit  = "0123456789abcdef"
)

var (
	bin   string
	s3    *minio.Server
	creds testbed.Credentials

	// Every byte any bootstrap invocation printed, searched for secrets at
	// the end of the suite.
	outputMu  sync.Mutex
	allOutput bytes.Buffer

	// secretFile is content marked secret: it must never be printed.
	secretFile = "db_password=e2e-Sup3r-S3cret-Passw0rd\n"
)

func TestMain(m *testing.M) {
	os.Exit(testMain(m))
}

func testMain(m *testing.M) int {
	work, err := os.MkdirTemp("", "bootstrap-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)

	bin = filepath.Join(work, "bootstrap")
	build := exec.Command("go", "build", "-trimpath", "-o", bin,
		"-ldflags", "-X main.version="+testVersion+" -X main.commit="+testCommit, "../cmd/bootstrap")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building bootstrap: %v\n%s", err, out)
		return 1
	}

	if _, err := minio.Binary(); err != nil {
		if os.Getenv("BOOTSTRAP_E2E") == "1" {
			fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
			return 1
		}
		fmt.Println("e2e: skipping: no MinIO binary (set BOOTSTRAP_E2E=1 to make this a failure)")
		return 0
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s3, err = minio.Start(ctx, minio.Options{Dir: filepath.Join(work, "minio"), Region: "eu-west-1"})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting MinIO: %v\n", err)
		return 1
	}
	defer s3.Stop()
	if err := seed(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "seeding MinIO: %v\n", err)
		return 1
	}
	creds, err = s3.AssumeRole(ctx, minio.ReadOnlyPolicy("config", ""), time.Hour)
	if err != nil {
		fmt.Fprintf(os.Stderr, "STS AssumeRole: %v\n", err)
		return 1
	}

	code := m.Run()
	// The scan runs even after a failure: a leak is worth knowing either way.
	return max(code, checkNoSecrets())
}

// seed stores the layers and files the tests include. Bucket "config" is
// readable by the role's session policy; bucket "other" is not.
func seed(ctx context.Context) error {
	objects := map[string]string{
		"config/layers/base.yaml": `files:
  - path: /etc/app/secret.conf
    source: s3://config/files/secret.conf
    secret: true
  - path: /etc/app/instance.conf
    content: "instance ${instance_id} in ${region}\n"
`,
		"config/layers/bad.yaml":     "files:\n  - path: /etc/x\n    mode: rw-r--r--\n    content: x\n",
		"config/layers/unknown.yaml": "files:\n  - path: /etc/y\n    content: y\nfiels: []\n",
		"config/files/secret.conf":   secretFile,
		"other/layers/base.yaml":     "files: []\n",
	}
	for _, b := range []string{"config", "other"} {
		if err := s3.CreateBucket(ctx, b); err != nil {
			return err
		}
	}
	for path, body := range objects {
		bucket, key, _ := strings.Cut(path, "/")
		if err := s3.Put(ctx, bucket, key, []byte(body)); err != nil {
			return err
		}
	}
	return nil
}

// scanFor adds a secret a test handed bootstrap to the end-of-suite scan.
func scanFor(name, value string) {
	outputMu.Lock()
	defer outputMu.Unlock()
	extraSecrets[name] = value
}

var extraSecrets = map[string]string{}

// fragment is the shortest piece of a long secret the scan looks for: a
// secret cut in two (a long line emitted in pieces) leaks as its halves.
const fragment = 16

// checkNoSecrets fails the suite if any invocation printed a credential or
// secret file content, or a piece of one, in logs, plans or errors.
func checkNoSecrets() int {
	outputMu.Lock()
	defer outputMu.Unlock()
	out := allOutput.String()
	if len(out) == 0 {
		fmt.Fprintln(os.Stderr, "e2e: no output captured: the secret check would be vacuous")
		return 1
	}
	secrets := map[string]string{
		"access key id": creds.AccessKeyID, "secret access key": creds.SecretAccessKey,
		"session token": creds.Token, "secret file content": strings.TrimSpace(secretFile),
		"minio root password": s3.RootPassword,
	}
	for name, s := range extraSecrets {
		secrets[name] = s
	}
	leaked := 0
	for name, s := range secrets {
		if s != "" && leaks(out, s) {
			fmt.Fprintf(os.Stderr, "e2e: the %s (or a %d-byte piece of it) appeared in bootstrap's output\n", name, fragment)
			leaked++
		}
	}
	fmt.Printf("e2e: searched %d bytes of bootstrap output for %d secrets and their pieces: %d leaked\n", len(out), len(secrets), leaked)
	if leaked > 0 {
		return 1
	}
	return 0
}

// leaks reports whether out holds s, or any fragment-byte piece of it.
func leaks(out, s string) bool {
	if len(s) <= fragment {
		return strings.Contains(out, s)
	}
	for i := 0; i+fragment <= len(s); i++ {
		if strings.Contains(out, s[i:i+fragment]) {
			return true
		}
	}
	return false
}

// bed is one emulated instance: an IMDS emulator, a target root and a state dir.
type bed struct {
	imds  *testbed.IMDS
	url   string
	root  string
	state string
	env   []string
}

func newBed(t *testing.T, cfg testbed.IMDSConfig) *bed {
	t.Helper()
	if cfg.Role == "" {
		cfg.Role = role
	}
	if cfg.Credentials.AccessKeyID == "" {
		cfg.Credentials = creds
	}
	if cfg.Region == "" {
		cfg.Region = "eu-west-1"
	}
	m := testbed.NewIMDS(cfg)
	u, err := m.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	dir := t.TempDir()
	b := &bed{imds: m, url: u, root: filepath.Join(dir, "root"), state: filepath.Join(dir, "state")}
	if err := os.Mkdir(b.root, 0o755); err != nil {
		t.Fatal(err)
	}
	return b
}

type result struct {
	code           int
	signaled       bool
	stdout, stderr string
	elapsed        time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout:\n%s\nstderr:\n%s", r.code, r.elapsed.Round(time.Millisecond), r.stdout, r.stderr)
}

// run invokes the binary as an operator would, with an environment that has
// nothing of the host's AWS setup: only the emulator reaches it.
func (b *bed) run(t *testing.T, args ...string) result {
	return b.runEnv(t, nil, args...)
}

func (b *bed) runEnv(t *testing.T, extraEnv []string, args ...string) result {
	t.Helper()
	full := append([]string{bin, args[0], "--datasource", "ec2", "--root", b.root, "--state-dir", b.state, "--log-format", "json"}, args[1:]...)
	env := append([]string{"AWS_EC2_METADATA_SERVICE_ENDPOINT=" + b.url}, extraEnv...)
	return b.runProgram(t, env, full...)
}

// runProgram runs argv (the binary itself, or a wrapper such as `ip netns
// exec NS bootstrap …`) with a clean environment plus b.env and extraEnv,
// bounded in time, and keeps its output for the end-of-suite secret scan.
func (b *bed) runProgram(t *testing.T, extraEnv []string, argv ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(cleanEnv(), extraEnv...)
	cmd.Env = append(cmd.Env, b.env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			r.signaled = true
		}
	} else if err != nil {
		t.Fatalf("running %s: %v", argv[0], err)
	}
	outputMu.Lock()
	allOutput.WriteString(r.stdout)
	allOutput.WriteString(r.stderr)
	outputMu.Unlock()
	return r
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "BOOTSTRAP_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull)
}

// userData is a user-data document that reads its layers from MinIO (or a
// proxy in front of it) with the role's credentials.
func userData(endpoint string, extra string, includes ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "#bootstrap-config\naws:\n  s3:\n    endpoint: %q\n    path_style: true\n  deadline: 40s\n", endpoint)
	if len(includes) > 0 {
		b.WriteString("include:\n")
		for _, inc := range includes {
			fmt.Fprintf(&b, "  - %s\n", inc)
		}
	}
	b.WriteString(extra)
	return []byte(b.String())
}

// logLine finds the JSON log record with this message.
func logLine(t *testing.T, stderr, msg string) map[string]any {
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

type journalEntry struct {
	Run, Instance, Step, Outcome, Error, Detail string
}

func readJournal(t *testing.T, stateDir string) []journalEntry {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stateDir, "journal.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []journalEntry
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e journalEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("journal line %q: %v", line, err)
		}
		out = append(out, e)
	}
	return out
}

// lastRun returns the final outcome per step of the journal's last run.
func lastRun(entries []journalEntry) map[string]string {
	if len(entries) == 0 {
		return nil
	}
	run := entries[len(entries)-1].Run
	out := map[string]string{}
	for _, e := range entries {
		if e.Run == run {
			out[e.Step] = e.Outcome
		}
	}
	return out
}

// s3Faults is a reverse proxy in front of MinIO that answers as S3 does
// while IAM propagates (403 AccessDenied) or while it sheds load (503
// SlowDown). Signatures stay valid: the Host header is passed through.
type s3Faults struct {
	denyUntil atomic.Int64
	slowDowns atomic.Int32
	denied    atomic.Int32
	url       string
}

func newS3Faults(t *testing.T) *s3Faults {
	t.Helper()
	target, _ := url.Parse(s3.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	f := &s3Faults{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if time.Now().UnixNano() < f.denyUntil.Load() {
			f.denied.Add(1)
			s3Error(w, http.StatusForbidden, "AccessDenied", "Access Denied.")
			return
		}
		if f.slowDowns.Add(-1) >= 0 {
			s3Error(w, http.StatusServiceUnavailable, "SlowDown", "Please reduce your request rate.")
			return
		}
		proxy.ServeHTTP(w, r)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	f.url = "http://" + ln.Addr().String()
	return f
}

func s3Error(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message><RequestId>E2E</RequestId></Error>`, code, msg)
}

func mustRead(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

// treeFiles lists the regular files under dir.
func treeFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}
