// Package minio starts a real MinIO server on loopback for tests and mints
// STS session credentials from it. MinIO is the only S3 stand-in that checks
// SigV4 signatures, session tokens and session policies, so the credential
// path (IMDS role credentials → S3) is tested against it rather than against
// the in-process testbed.ObjectStore.
package minio

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/opsboot/bootstrap/internal/testbed"
)

// PinnedModule is the MinIO build the CI pins (see .ci/run).
const PinnedModule = "github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c"

// DefaultRegion is MinIO's default region. MinIO rejects requests signed
// for another region than its own.
const DefaultRegion = "us-east-1"

const (
	startTimeout = 30 * time.Second // a fresh data dir starts in ~1.3 s
	stopTimeout  = 10 * time.Second // then SIGKILL
	outputLimit  = 64 << 10         // bytes of MinIO output kept for errors
)

// Binary finds the MinIO server binary: $BOOTSTRAP_MINIO_BIN, else "minio"
// on PATH, else $HOME/.cache/bootstrap-ci/bin/minio (where .ci/run builds
// it).
func Binary() (string, error) {
	if p := os.Getenv("BOOTSTRAP_MINIO_BIN"); p != "" {
		if err := isExecutable(p); err != nil {
			return "", fmt.Errorf("minio: BOOTSTRAP_MINIO_BIN=%s: %w", p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var cached string
	if home, err := os.UserHomeDir(); err == nil {
		cached = filepath.Join(home, ".cache", "bootstrap-ci", "bin", "minio")
		if isExecutable(cached) == nil {
			return cached, nil
		}
	}
	return "", fmt.Errorf("minio: server binary not found (not in $BOOTSTRAP_MINIO_BIN, not on PATH, not at %s); "+
		"install it with .ci/run, or: GOBIN=$HOME/.cache/bootstrap-ci/bin go install %s (~5 min the first time)",
		cached, PinnedModule)
}

func isExecutable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() || fi.Mode()&0o111 == 0 {
		return errors.New("not an executable file")
	}
	return nil
}

// Options configure Start.
type Options struct {
	// Binary is the MinIO server; "" means Binary().
	Binary string
	// Dir holds the data (Dir/data) and certs dirs; "" means a temporary
	// directory removed by Stop.
	Dir string
	// Region is the server's region (MINIO_SITE_REGION); "" means
	// DefaultRegion. Set it to the emulated instance's region so that a
	// client signing for that region is accepted.
	Region string
	// Logf, if set, receives MinIO's output lines (with the root
	// credentials redacted) and start/stop events. It must stay usable
	// until Stop returns.
	Logf func(string, ...any)
}

// Server is a running MinIO. RootUser and RootPassword are random per
// server; never log them.
type Server struct {
	URL, RootUser, RootPassword string
	Region                      string

	cmd      *exec.Cmd
	exited   chan struct{} // closed when the process has been waited for
	waitErr  error
	out      *outputBuffer
	tempDir  string // removed by Stop; "" when Options.Dir was given
	logf     func(string, ...any)
	stopOnce sync.Once
	stopErr  error
}

// Start runs MinIO on a random free port of 127.0.0.1 and waits (bounded in
// tries and time, and by ctx) until /minio/health/live answers. The
// console is off (MINIO_BROWSER=off), update checks are off, and the
// process gets a clean environment so it sees no proxy and no AWS
// settings. A port lost to a race is retried with a new one (3 tries).
func Start(ctx context.Context, o Options) (*Server, error) {
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = Binary(); err != nil {
			return nil, err
		}
	}
	logf := o.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	region := o.Region
	if region == "" {
		region = DefaultRegion
	}
	dir, tempDir := o.Dir, ""
	if dir == "" {
		d, err := os.MkdirTemp("", "bootstrap-minio-")
		if err != nil {
			return nil, fmt.Errorf("minio: %w", err)
		}
		dir, tempDir = d, d
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(ctx, bin, dir, region, logf)
		if err == nil {
			s.tempDir = tempDir
			return s, nil
		}
		lastErr = err
		if ctx.Err() != nil || !errors.Is(err, errPortTaken) {
			break
		}
	}
	if tempDir != "" {
		_ = os.RemoveAll(tempDir)
	}
	return nil, lastErr
}

var errPortTaken = errors.New("port already in use")

func start(ctx context.Context, bin, dir, region string, logf func(string, ...any)) (*Server, error) {
	for _, d := range []string{"data", "certs"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			return nil, fmt.Errorf("minio: %w", err)
		}
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		URL:          "http://127.0.0.1:" + strconv.Itoa(port),
		RootUser:     "testbed-" + randomHex(6),
		RootPassword: randomHex(20),
		Region:       region,
		exited:       make(chan struct{}),
		logf:         logf,
	}
	s.out = &outputBuffer{redact: []string{s.RootPassword, s.RootUser}, logf: logf}
	s.cmd = exec.Command(bin, "server", "--quiet", "--anonymous",
		"--address", "127.0.0.1:"+strconv.Itoa(port),
		// The console is off (MINIO_BROWSER=off); should it start anyway,
		// it stays on loopback.
		"--console-address", "127.0.0.1:0",
		"--certs-dir", filepath.Join(dir, "certs"),
		filepath.Join(dir, "data"))
	s.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + dir,
		"MINIO_ROOT_USER=" + s.RootUser,
		"MINIO_ROOT_PASSWORD=" + s.RootPassword,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
		"MINIO_CALLHOME_ENABLE=off",
		"MINIO_SITE_REGION=" + region,
	}
	s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
	s.cmd.SysProcAttr = sysProcAttr()
	begin := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("minio: start %s: %w", bin, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitLive(ctx); err != nil {
		_ = s.kill()
		if strings.Contains(s.out.String(), "address already in use") {
			err = fmt.Errorf("%w: %w", errPortTaken, err)
		}
		return nil, err
	}
	logf("minio: %s up in %v", s.URL, time.Since(begin).Round(time.Millisecond))
	return s, nil
}

// waitLive polls the liveness endpoint: at most 600 tries, startTimeout, and
// ctx; it stops at once if the process exits.
func (s *Server) waitLive(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	url := s.URL + "/minio/health/live"
	var last error
	for i := 0; i < 600; i++ {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("status %d", resp.StatusCode)
		}
		last = err
		select {
		case <-s.exited:
			return fmt.Errorf("minio: exited before it was up (%v); output:\n%s", s.waitErr, s.out.String())
		case <-ctx.Done():
			return fmt.Errorf("minio: not up after %d tries (%v, last error: %v); output:\n%s", i+1, ctx.Err(), last, s.out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("minio: not up after 600 tries (last error: %v); output:\n%s", last, s.out.String())
}

// Stop terminates MinIO (SIGTERM, then SIGKILL after 10 s), waits for it and
// removes the temporary directory if Start made one. It is safe to call
// twice.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		s.stopErr = s.kill()
		if s.tempDir != "" {
			if err := os.RemoveAll(s.tempDir); err != nil && s.stopErr == nil {
				s.stopErr = err
			}
		}
		s.logf("minio: %s stopped", s.URL)
	})
	return s.stopErr
}

func (s *Server) kill() error {
	select {
	case <-s.exited:
		return nil // already gone (its exit status was reported by Start)
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
	}
	_ = s.cmd.Process.Kill()
	select {
	case <-s.exited:
		return nil
	case <-time.After(stopTimeout):
		return fmt.Errorf("minio: pid %d did not exit after SIGKILL", s.cmd.Process.Pid)
	}
}

// Output is MinIO's recent output (up to 64 KiB), credentials redacted.
func (s *Server) Output() string { return s.out.String() }

// S3 returns an S3 client for the server with the given credentials
// (path-style, the server's region).
func (s *Server) S3(creds aws.CredentialsProvider) *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.URL),
		UsePathStyle: true,
		Credentials:  creds,
		DisableLogOutputChecksumValidationSkipped: true,
	})
}

func (s *Server) root() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(s.RootUser, s.RootPassword, "")
}

// CreateBucket creates a bucket as root; a bucket that already exists is
// not an error.
func (s *Server) CreateBucket(ctx context.Context, name string) error {
	_, err := s.S3(s.root()).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "BucketAlreadyOwnedByYou" {
		return nil
	}
	if err != nil {
		return fmt.Errorf("minio: create bucket %s: %w", name, err)
	}
	return nil
}

// Put uploads body to bucket/key as root.
func (s *Server) Put(ctx context.Context, bucket, key string, body []byte) error {
	_, err := s.S3(s.root()).PutObject(ctx, &s3.PutObjectInput{
		Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body),
	})
	if err != nil {
		return fmt.Errorf("minio: put s3://%s/%s: %w", bucket, key, err)
	}
	return nil
}

// MinDuration is the shortest session MinIO grants.
const MinDuration = 900 * time.Second

// AssumeRole mints session credentials with STS AssumeRole at the server's
// endpoint, signed with the root credentials. sessionPolicy ("" for none)
// limits what they may do (see ReadOnlyPolicy). d is raised to MinDuration;
// to test rotation, serve a shorter Expiration from the IMDS emulator.
func (s *Server) AssumeRole(ctx context.Context, sessionPolicy string, d time.Duration) (testbed.Credentials, error) {
	d = max(d, MinDuration)
	client := sts.New(sts.Options{Region: s.Region, BaseEndpoint: aws.String(s.URL), Credentials: s.root()})
	in := &sts.AssumeRoleInput{
		// MinIO ignores the role ARN for root-signed AssumeRole; the SDK
		// requires one.
		RoleArn:         aws.String("arn:aws:iam::000000000000:role/bootstrap-testbed"),
		RoleSessionName: aws.String("bootstrap-testbed"),
		DurationSeconds: aws.Int32(int32(d / time.Second)),
	}
	if sessionPolicy != "" {
		in.Policy = aws.String(sessionPolicy)
	}
	out, err := client.AssumeRole(ctx, in)
	if err != nil {
		return testbed.Credentials{}, fmt.Errorf("minio: sts AssumeRole: %w", err)
	}
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return testbed.Credentials{}, errors.New("minio: sts AssumeRole: incomplete credentials in the answer")
	}
	return testbed.Credentials{
		AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey,
		Token: *c.SessionToken, Expiration: c.Expiration.UTC(),
	}, nil
}

// ReadOnlyPolicy is a session policy allowing only s3:GetObject on
// arn:aws:s3:::bucket/prefix* — what a booting instance needs.
func ReadOnlyPolicy(bucket, prefix string) string {
	return ReadOnlyPolicyFor(bucket + "/" + prefix)
}

// ReadOnlyPolicyFor is ReadOnlyPolicy for several "bucket/prefix" paths.
func ReadOnlyPolicyFor(paths ...string) string {
	type statement struct {
		Effect   string
		Action   []string
		Resource []string
	}
	st := statement{Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{}}
	for _, p := range paths {
		st.Resource = append(st.Resource, "arn:aws:s3:::"+p+"*")
	}
	b, err := json.Marshal(struct {
		Version   string
		Statement []statement
	}{"2012-10-17", []statement{st}})
	if err != nil {
		panic(err) // fixed types: cannot fail
	}
	return string(b)
}

// Require starts a MinIO in t.TempDir() for the test and stops it at
// cleanup. Without a binary the test is skipped, unless BOOTSTRAP_E2E=1
// (CI), where a missing binary is a failure.
func Require(t testing.TB) *Server {
	t.Helper()
	bin := RequireBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	s, err := Start(ctx, Options{Binary: bin, Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Stop(); err != nil {
			t.Error(err)
		}
	})
	return s
}

// RequireBinary returns the MinIO binary, or skips the test without one
// (fails it when BOOTSTRAP_E2E=1), for tests that start servers themselves.
func RequireBinary(t testing.TB) string {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		if os.Getenv("BOOTSTRAP_E2E") == "1" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return bin
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("minio: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

// outputBuffer keeps the tail of MinIO's output for error messages and
// forwards complete lines to logf, with secrets redacted in both.
type outputBuffer struct {
	mu      sync.Mutex
	buf     []byte
	partial []byte
	redact  []string
	logf    func(string, ...any)
}

func (b *outputBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > outputLimit {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-outputLimit:]...)
	}
	b.partial = append(b.partial, p...)
	for {
		i := bytes.IndexByte(b.partial, '\n')
		if i < 0 {
			break
		}
		b.logf("minio: %s", b.scrub(string(b.partial[:i])))
		b.partial = b.partial[i+1:]
	}
	if len(b.partial) > outputLimit { // a runaway line: flush it
		b.logf("minio: %s", b.scrub(string(b.partial)))
		b.partial = nil
	}
	return len(p), nil
}

func (b *outputBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.scrub(string(b.buf))
}

func (b *outputBuffer) scrub(s string) string {
	for _, r := range b.redact {
		if r != "" {
			s = strings.ReplaceAll(s, r, "[REDACTED]")
		}
	}
	return s
}
