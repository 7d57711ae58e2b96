package minio

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/opsboot/bootstrap/internal/testbed"
)

func TestBinaryEnvOverride(t *testing.T) {
	t.Setenv("BOOTSTRAP_MINIO_BIN", filepath.Join(t.TempDir(), "no-such-minio"))
	if _, err := Binary(); err == nil || !strings.Contains(err.Error(), "BOOTSTRAP_MINIO_BIN") {
		t.Fatalf("Binary() error = %v, want one naming BOOTSTRAP_MINIO_BIN", err)
	}
	exe := filepath.Join(t.TempDir(), "minio")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BOOTSTRAP_MINIO_BIN", exe)
	if got, err := Binary(); err != nil || got != exe {
		t.Fatalf("Binary() = %q, %v; want %q", got, err, exe)
	}
}

func TestNotFoundSaysHowToInstall(t *testing.T) {
	t.Setenv("BOOTSTRAP_MINIO_BIN", "")
	t.Setenv("PATH", t.TempDir())
	t.Setenv("HOME", t.TempDir())
	_, err := Binary()
	if err == nil || !strings.Contains(err.Error(), "go install "+PinnedModule) {
		t.Fatalf("Binary() error = %v, want install instructions", err)
	}
}

func TestReadOnlyPolicy(t *testing.T) {
	var p struct {
		Version   string
		Statement []struct {
			Effect   string
			Action   []string
			Resource []string
		}
	}
	if err := json.Unmarshal([]byte(ReadOnlyPolicy("boot", "config/")), &p); err != nil {
		t.Fatal(err)
	}
	if p.Version != "2012-10-17" || len(p.Statement) != 1 || p.Statement[0].Effect != "Allow" ||
		strings.Join(p.Statement[0].Action, ",") != "s3:GetObject" ||
		strings.Join(p.Statement[0].Resource, ",") != "arn:aws:s3:::boot/config/*" {
		t.Fatalf("policy %+v", p)
	}
}

// A binary that exits at once makes Start fail fast with its output.
func TestStartReportsEarlyExit(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "fake-minio")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\necho \"fatal: no drives ($MINIO_ROOT_PASSWORD)\" >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := Start(ctx, Options{Binary: exe, Dir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "fatal: no drives ([REDACTED])") {
		t.Fatalf("Start error = %v, want the output with the password redacted", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("Start took %v to notice the exit", time.Since(start))
	}
}

type fixture struct {
	srv     *Server
	session testbed.Credentials
	ctx     context.Context
}

// setup starts a MinIO (Require's, or one in region when region != ""),
// with buckets, objects and read-only session credentials for boot/config/.
func setup(t *testing.T, region string) fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	var srv *Server
	if region == "" {
		srv = Require(t)
	} else {
		var err error
		srv, err = Start(ctx, Options{Binary: RequireBinary(t), Dir: t.TempDir(), Region: region, Logf: t.Logf})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := srv.Stop(); err != nil {
				t.Error(err)
			}
		})
	}
	for _, b := range []string{"boot", "other"} {
		if err := srv.CreateBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range []struct{ bucket, key, body string }{
		{"boot", "config/app.yaml", "key: value\n"},
		{"boot", "private/secret.txt", "nope"},
		{"other", "config/app.yaml", "other"},
	} {
		if err := srv.Put(ctx, o.bucket, o.key, []byte(o.body)); err != nil {
			t.Fatal(err)
		}
	}
	session, err := srv.AssumeRole(ctx, ReadOnlyPolicy("boot", "config/"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(session.Expiration); d < 14*time.Minute || d > 16*time.Minute {
		t.Errorf("session expires in %v, want about 15m (MinIO's minimum)", d)
	}
	if session.AccessKeyID == "" || session.SecretAccessKey == "" || session.Token == "" || session.AccessKeyID == srv.RootUser {
		t.Fatal("incomplete or root session credentials")
	}
	return fixture{srv, session, ctx}
}

func errorCode(err error) string {
	var api smithy.APIError
	if errors.As(err, &api) {
		return api.ErrorCode()
	}
	return ""
}

func TestSessionPolicy(t *testing.T) {
	f := setup(t, "")
	c := f.srv.S3(credentials.NewStaticCredentialsProvider(f.session.AccessKeyID, f.session.SecretAccessKey, f.session.Token))

	out, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String("boot"), Key: aws.String("config/app.yaml")})
	if err != nil {
		t.Fatalf("GetObject inside the prefix: %v", err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != "key: value\n" {
		t.Errorf("body %q", body)
	}

	for name, call := range map[string]func() error{
		"GetObject in another bucket": func() error {
			_, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String("other"), Key: aws.String("config/app.yaml")})
			return err
		},
		"GetObject outside the prefix": func() error {
			_, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String("boot"), Key: aws.String("private/secret.txt")})
			return err
		},
		"PutObject": func() error {
			_, err := c.PutObject(f.ctx, &s3.PutObjectInput{Bucket: aws.String("boot"), Key: aws.String("config/new.yaml"), Body: strings.NewReader("x")})
			return err
		},
		"ListObjectsV2": func() error {
			_, err := c.ListObjectsV2(f.ctx, &s3.ListObjectsV2Input{Bucket: aws.String("boot")})
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			if err := call(); errorCode(err) != "AccessDenied" {
				t.Fatalf("error %v, want AccessDenied", err)
			}
		})
	}

	t.Run("tampered session token", func(t *testing.T) {
		tok := []byte(f.session.Token)
		tok[len(tok)/2] ^= 1
		bad := f.srv.S3(credentials.NewStaticCredentialsProvider(f.session.AccessKeyID, f.session.SecretAccessKey, string(tok)))
		_, err := bad.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String("boot"), Key: aws.String("config/app.yaml")})
		if code := errorCode(err); code != "InvalidTokenId" {
			t.Fatalf("error %v, want InvalidTokenId", err)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		bad := f.srv.S3(credentials.NewStaticCredentialsProvider(f.session.AccessKeyID, "not-the-secret", f.session.Token))
		_, err := bad.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String("boot"), Key: aws.String("config/app.yaml")})
		if code := errorCode(err); code != "SignatureDoesNotMatch" {
			t.Fatalf("error %v, want SignatureDoesNotMatch", err)
		}
	})
}

// The realistic chain: session credentials served by the IMDS emulator as
// role credentials, picked up by the SDK's EC2 role provider, used on S3,
// with MinIO in the instance's region.
func TestIMDSRoleCredentialsChain(t *testing.T) {
	f := setup(t, "eu-west-1")
	m := testbed.NewIMDS(testbed.IMDSConfig{Region: "eu-west-1", Role: "boot-role", Credentials: f.session})
	url, err := m.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	provider := ec2rolecreds.New(func(o *ec2rolecreds.Options) {
		o.Client = imds.New(imds.Options{Endpoint: url, ClientEnableState: imds.ClientEnabled, EnableFallback: aws.FalseTernary})
	})
	c := f.srv.S3(aws.NewCredentialsCache(provider))
	out, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String("boot"), Key: aws.String("config/app.yaml")})
	if err != nil {
		t.Fatalf("GetObject with role credentials from IMDS: %v", err)
	}
	out.Body.Close()
	if _, err := c.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String("other"), Key: aws.String("config/app.yaml")}); errorCode(err) != "AccessDenied" {
		t.Errorf("other bucket: %v, want AccessDenied", err)
	}
	if m.RequestCount() < 3 { // token PUT, role list, role credentials
		t.Errorf("%d IMDS requests, want at least 3", m.RequestCount())
	}

	// The server really is in eu-west-1: a client signing for another
	// region is turned away.
	wrong := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.srv.URL), UsePathStyle: true,
		Credentials: aws.NewCredentialsCache(provider)})
	_, err = wrong.GetObject(f.ctx, &s3.GetObjectInput{Bucket: aws.String("boot"), Key: aws.String("config/app.yaml")})
	if code := errorCode(err); code != "AuthorizationHeaderMalformed" {
		t.Errorf("signed for us-east-1 against a eu-west-1 server: %v, want AuthorizationHeaderMalformed", err)
	}
}

func TestStopIsIdempotentAndHidesSecrets(t *testing.T) {
	bin := RequireBinary(t)
	var (
		mu   sync.Mutex
		logs strings.Builder
	)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := Start(ctx, Options{Binary: bin, Logf: func(f string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintf(&logs, f+"\n", a...)
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Stop() }) // if the test fails before its own Stop
	if err := s.CreateBucket(ctx, "bkt"); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateBucket(ctx, "bkt"); err != nil {
		t.Errorf("second CreateBucket: %v", err)
	}
	dir := s.tempDir
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("temporary dir %s left behind (%v)", dir, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "stopped") {
		t.Errorf("Logf got no stop event: %q", logs.String())
	}
	if strings.Contains(logs.String(), s.RootPassword) || strings.Contains(s.Output(), s.RootPassword) {
		t.Error("the root password reached the logs")
	}
}
