package fetch

import (
	"context"
	"crypto/rand"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/testbed"
	"github.com/opsboot/bootstrap/internal/testbed/minio"
)

// BenchmarkS3File measures the download path (GetObject, sha256, the temp
// file and its fsync) against a real MinIO with role credentials from the IMDS emulator,
// as in a first boot. Profile it with
//
//	go test -run '^$' -bench S3File -benchtime 5x -cpuprofile cpu.out ./internal/fetch
//
// BOOTSTRAP_BENCH_MB sets the object's size (default 256).
func BenchmarkS3File(b *testing.B) {
	size := 256
	if v := os.Getenv("BOOTSTRAP_BENCH_MB"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		size = n
	}
	srv := minio.Require(b)
	ctx := context.Background()
	if err := srv.CreateBucket(ctx, "bench"); err != nil {
		b.Fatal(err)
	}
	body := make([]byte, size<<20)
	rand.Read(body)
	if err := srv.Put(ctx, "bench", "big", body); err != nil {
		b.Fatal(err)
	}
	want := digest(body)
	body = nil
	c, err := srv.AssumeRole(ctx, minio.ReadOnlyPolicy("bench", ""), minio.MinDuration)
	if err != nil {
		b.Fatal(err)
	}
	isolateAWSEnv(b)
	in := newInstance(b, testbed.IMDSConfig{Role: "web", Region: srv.Region, Credentials: c}, 5*time.Second)
	f := New(Options{Region: srv.Region, S3Endpoint: srv.URL, S3PathStyle: true,
		IMDS: in.ds.CredentialsClient(), Role: in.ds.Role})
	dir := b.TempDir()
	b.SetBytes(int64(size) << 20)
	for b.Loop() {
		blob, err := f.File(ctx, "s3://bench/big", want, dir)
		if err != nil {
			b.Fatal(err)
		}
		// Installing the file fsyncs it: part of the cost of the download.
		fh, err := os.Open(blob.Path)
		if err != nil {
			b.Fatal(err)
		}
		if err := fh.Sync(); err != nil {
			b.Fatal(err)
		}
		fh.Close()
		os.Remove(blob.Path)
	}
}
