package testbed

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

func newObjectStoreServer(t *testing.T) (*ObjectStore, string) {
	t.Helper()
	s := NewObjectStore()
	srv := httptest.NewServer(s.Handler()) // listens on 127.0.0.1
	t.Cleanup(srv.Close)
	return s, srv.URL
}

func newS3Client(url string) *s3.Client {
	return s3.New(s3.Options{
		Region:       "eu-west-1",
		BaseEndpoint: aws.String(url),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEMO", "demo-secret", ""),
		DisableLogOutputChecksumValidationSkipped: true,
	})
}

func TestObjectStoreSDK(t *testing.T) {
	t.Parallel()
	store, url := newObjectStoreServer(t)
	store.Put("boot", "config/app.yaml", []byte("key: value\n"))
	c := newS3Client(url)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("boot"), Key: aws.String("config/app.yaml")})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != "key: value\n" || aws.ToInt64(out.ContentLength) != 11 || aws.ToString(out.ETag) == "" || out.LastModified == nil {
		t.Errorf("GetObject: body %q length %d etag %q modified %v", body, aws.ToInt64(out.ContentLength), aws.ToString(out.ETag), out.LastModified)
	}

	for _, tc := range []struct {
		name, bucket, key, code string
	}{
		{"missing key", "boot", "config/none.yaml", "NoSuchKey"},
		{"missing bucket", "nobucket", "x", "NoSuchBucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(tc.bucket), Key: aws.String(tc.key)})
			var api smithy.APIError
			if !errors.As(err, &api) || api.ErrorCode() != tc.code {
				t.Fatalf("GetObject error %v, want code %s", err, tc.code)
			}
			if tc.code == "NoSuchKey" {
				var nsk *types.NoSuchKey
				if !errors.As(err, &nsk) {
					t.Errorf("error is not a *types.NoSuchKey: %T", err)
				}
			}
		})
	}

	_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("boot"), Key: aws.String("new"), Body: strings.NewReader("x")})
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != "MethodNotAllowed" {
		t.Errorf("PutObject error %v, want MethodNotAllowed", err)
	}
	if _, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String("boot"), Key: aws.String("config/app.yaml")}); err != nil {
		t.Errorf("HeadObject: %v", err)
	}
	if _, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String("boot")}); err != nil {
		t.Errorf("HeadBucket: %v", err)
	}
}

func TestObjectStoreHTTP(t *testing.T) {
	t.Parallel()
	store, url := newObjectStoreServer(t)
	store.Put("b", "dir/k", []byte("hello"))
	c := &http.Client{Timeout: 5 * time.Second}
	for _, tc := range []struct {
		method, path string
		status       int
		code         string // XML error code in the body
	}{
		{http.MethodGet, "/b/dir/k", 200, ""},
		{http.MethodHead, "/b/dir/k", 200, ""},
		{http.MethodGet, "/b/dir/none", 404, "NoSuchKey"},
		{http.MethodGet, "/nob/k", 404, "NoSuchBucket"},
		{http.MethodDelete, "/b/dir/k", 405, "MethodNotAllowed"},
		{http.MethodPut, "/b/dir/k", 405, "MethodNotAllowed"},
		{http.MethodGet, "/b", 501, "NotImplemented"},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, url+tc.path, nil)
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.code != "" {
				if !strings.Contains(string(b), "<Code>"+tc.code+"</Code>") || resp.Header.Get("Content-Type") != "application/xml" {
					t.Errorf("body %s", b)
				}
				return
			}
			if resp.Header.Get("Content-Length") != strconv.Itoa(len("hello")) || resp.Header.Get("ETag") != `"5d41402abc4b2a76b9719d911017c592"` || resp.Header.Get("Last-Modified") == "" {
				t.Errorf("headers %v", resp.Header)
			}
			if want := map[string]string{http.MethodGet: "hello", http.MethodHead: ""}[tc.method]; string(b) != want {
				t.Errorf("body %q, want %q", b, want)
			}
		})
	}
}
