package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/opsboot/bootstrap/internal/testbed/minio"
)

// syncBuffer is written by run and read by the test at the same time.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{
		{"--object", "no-equals"},
		{"--object", "bucketonly=file"},
		{"--user-data", filepath.Join(t.TempDir(), "missing")},
		{"--role", ""},
		{"extra"},
	} {
		var stderr syncBuffer
		if code := run(context.Background(), args, io.Discard, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (stderr %s)", args, code, stderr.String())
		}
	}
}

func TestRun(t *testing.T) {
	for _, useMinio := range []bool{false, true} {
		name := "object store"
		if useMinio {
			name = "minio"
		}
		t.Run(name, func(t *testing.T) {
			if useMinio {
				minio.RequireBinary(t)
			}
			testRun(t, useMinio)
		})
	}
}

func testRun(t *testing.T, useMinio bool) {
	dir := t.TempDir()
	ud, obj, env := filepath.Join(dir, "ud"), filepath.Join(dir, "obj"), filepath.Join(dir, "testbed.env")
	if err := os.WriteFile(ud, []byte("#cloud-config\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(obj, []byte("payload"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"--user-data", ud, "--object", "boot/cfg/app.yaml=" + obj, "--object", "boot/cfg/b=" + obj, "--env-file", env}
	if useMinio {
		args = append(args, "--minio")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, args, &stdout, &stderr) }()

	// Wait for the env file: at most 300 × 50 ms.
	var exports []byte
	for i := 0; i < 300 && exports == nil; i++ {
		select {
		case code := <-done:
			t.Fatalf("run ended early with %d: %s", code, stderr.String())
		case <-time.After(50 * time.Millisecond):
		}
		exports, _ = os.ReadFile(env)
	}
	if exports == nil {
		t.Fatalf("no env file; stderr: %s", stderr.String())
	}
	if stdout.String() != string(exports) {
		t.Errorf("stdout %q differs from the env file %q", stdout.String(), exports)
	}
	vars := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(exports)), "\n") {
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if !ok || !strings.HasPrefix(line, "export ") {
			t.Fatalf("not an export line: %q", line)
		}
		vars[k] = v
	}
	for _, k := range []string{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_ENDPOINT_URL_S3"} {
		if !strings.HasPrefix(vars[k], "http://127.0.0.1:") {
			t.Errorf("%s=%q, want a loopback URL", k, vars[k])
		}
	}
	if vars["AWS_REGION"] != "eu-west-1" {
		t.Errorf("AWS_REGION=%q", vars["AWS_REGION"])
	}

	// What bootstrap will do: user-data and role credentials from IMDS,
	// then GetObject signed for the instance's region.
	opCtx, opCancel := context.WithTimeout(ctx, 20*time.Second)
	defer opCancel()
	client := imds.New(imds.Options{Endpoint: vars["AWS_EC2_METADATA_SERVICE_ENDPOINT"], ClientEnableState: imds.ClientEnabled, EnableFallback: aws.FalseTernary})
	out, err := client.GetUserData(opCtx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(out.Content); string(b) != "#cloud-config\n" {
		t.Errorf("user-data %q", b)
	}
	s3c := s3.New(s3.Options{
		Region: vars["AWS_REGION"], BaseEndpoint: aws.String(vars["AWS_ENDPOINT_URL_S3"]), UsePathStyle: true,
		Credentials: aws.NewCredentialsCache(ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = client })),
		DisableLogOutputChecksumValidationSkipped: true,
	})
	got, err := s3c.GetObject(opCtx, &s3.GetObjectInput{Bucket: aws.String("boot"), Key: aws.String("cfg/app.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(got.Body); string(b) != "payload" {
		t.Errorf("object %q", b)
	}
	got.Body.Close()
	if useMinio { // the session may only read
		_, err := s3c.PutObject(opCtx, &s3.PutObjectInput{Bucket: aws.String("boot"), Key: aws.String("x"), Body: strings.NewReader("x")})
		var api smithy.APIError
		if !errors.As(err, &api) || api.ErrorCode() != "AccessDenied" {
			t.Errorf("PutObject with the session: %v, want AccessDenied", err)
		}
	}

	creds, err := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = client }).Retrieve(opCtx)
	if err != nil {
		t.Fatal(err)
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d: %s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop after cancel")
	}
	for _, out := range []string{stdout.String(), stderr.String()} {
		if strings.Contains(out, creds.SecretAccessKey) || strings.Contains(out, creds.SessionToken) {
			t.Error("a credential reached the output")
		}
	}
}
