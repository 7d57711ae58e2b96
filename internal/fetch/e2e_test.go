package fetch

import (
	"bytes"
	"context"
	"errors"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/testbed"
	"github.com/opsboot/bootstrap/internal/testbed/minio"
)

// TestE2EMinIO runs the real credential path: STS session credentials
// minted by MinIO (limited to s3:GetObject on config/*) are served by the
// IMDS emulator as the instance role's, reach S3 through ec2rolecreds on
// the datasource's shared client, and MinIO checks signature, token and
// policy. Skipped without a MinIO binary unless BOOTSTRAP_E2E=1.
func TestE2EMinIO(t *testing.T) {
	srv := minio.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, b := range []string{"config", "other"} {
		if err := srv.CreateBucket(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	for _, obj := range []struct{ bucket, key string }{{"config", "layers/base.yaml"}, {"other", "secret.yaml"}} {
		if err := srv.Put(ctx, obj.bucket, obj.key, payload); err != nil {
			t.Fatal(err)
		}
	}
	mint := func(t *testing.T) testbed.Credentials {
		t.Helper()
		c, err := srv.AssumeRole(ctx, minio.ReadOnlyPolicy("config", ""), minio.MinDuration)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	const role = "web"
	setupWindow := func(t *testing.T, c testbed.Credentials, deadline, window time.Duration) (*instance, *Fetcher) {
		t.Helper()
		isolateAWSEnv(t)
		in := newInstance(t, testbed.IMDSConfig{Role: role, Region: srv.Region, Credentials: c}, deadline)
		f := newTest(Options{Region: srv.Region, S3Endpoint: srv.URL, S3PathStyle: true,
			IMDS: in.ds.CredentialsClient(), Role: in.ds.Role, Deadline: deadline, IAMPropagation: window}, nil)
		return in, f
	}
	setup := func(t *testing.T, c testbed.Credentials, deadline time.Duration) (*instance, *Fetcher) {
		t.Helper()
		return setupWindow(t, c, deadline, 0)
	}
	const allowed = "s3://config/layers/base.yaml"

	t.Run("allowed object with role credentials from IMDS", func(t *testing.T) {
		in, f := setup(t, mint(t), 5*time.Second)
		b, err := f.Bytes(ctx, allowed, digest(payload), 0)
		if err != nil || !bytes.Equal(b, payload) {
			t.Fatalf("Bytes: %v", err)
		}
		blob, err := f.File(ctx, allowed, digest(payload), t.TempDir())
		if err != nil || blob.Size != int64(len(payload)) {
			t.Fatalf("File: %+v, %v", blob, err)
		}
		// Token PUT, role list (Role, reused by ec2rolecreds), credentials;
		// then the cache serves the second fetch.
		if in.ds.Requests() != 3 || f.Requests() != 2 {
			t.Errorf("requests: IMDS %d (want 3), S3 %d (want 2)", in.ds.Requests(), f.Requests())
		}
		t.Logf("IMDS requests %d, S3 requests %d", in.ds.Requests(), f.Requests())
	})

	t.Run("another bucket: AccessDenied after the deadline", func(t *testing.T) {
		_, f := setup(t, mint(t), 1500*time.Millisecond)
		start := time.Now()
		_, err := f.Bytes(ctx, "s3://other/secret.yaml", "", 0)
		var fe *Error
		if !errors.As(err, &fe) || fe.Code != "AccessDenied" || fe.Final || fe.Deadline != 1500*time.Millisecond {
			t.Fatalf("err = %v (%+v)", err, fe)
		}
		for _, w := range []string{"s3://other/secret.yaml: access denied (AccessDenied) for role \"web\" after ",
			"arn:aws:s3:::other/secret.yaml"} {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("message %q lacks %q", err, w)
			}
		}
		if took := time.Since(start); took < time.Second || took > 3500*time.Millisecond {
			t.Errorf("took %v, want about the 1.5s deadline", took)
		}
		t.Log(err)
	})

	t.Run("a denied object fails after the IAM propagation window, not the deadline", func(t *testing.T) {
		_, f := setupWindow(t, mint(t), 10*time.Second, time.Second)
		start := time.Now()
		_, err := f.Bytes(ctx, "s3://other/secret.yaml", "", 0)
		var fe *Error
		if !errors.As(err, &fe) || fe.Code != "AccessDenied" || !fe.Final || fe.Propagation != time.Second {
			t.Fatalf("err = %v (%+v)", err, fe)
		}
		if took := time.Since(start); took < 900*time.Millisecond || took > 4*time.Second {
			t.Errorf("took %v, want about the 1s window", took)
		}
		// Later, a denial is final at the first answer.
		start = time.Now()
		if _, err := f.Bytes(ctx, "s3://other/secret.yaml", "", 0); !errors.As(err, &fe) || fe.Attempts != 1 || !fe.Final {
			t.Fatalf("second fetch: %v (%+v), want final after 1 attempt", err, fe)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("second fetch took %v", took)
		}
		t.Log(err)
	})

	t.Run("a large object in ranged parts, and in two streams", func(t *testing.T) {
		big := randomBytes(3<<20+12345, 3)
		if err := srv.Put(ctx, "config", "big.bin", big); err != nil {
			t.Fatal(err)
		}
		for _, fast := range []float64{math.Inf(1), 0} {
			_, f := setup(t, mint(t), 5*time.Second)
			f.parts = partTuning{threshold: 1 << 20, size: 256 << 10, streams: 3, probe: 256 << 10, fast: fast}
			blob, err := f.File(ctx, "s3://config/big.bin", digest(big), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := os.ReadFile(blob.Path); !bytes.Equal(got, big) {
				t.Fatal("content differs")
			}
			want := int64(1 + 9) // the first MiB, then 2 MiB + 12345 in 256 KiB parts
			if fast == 0 {
				want = 2
			}
			if f.Requests() != want {
				t.Errorf("fast=%v: %d S3 requests, want %d", fast, f.Requests(), want)
			}
		}
	})

	t.Run("role list 404 at boot, then the role appears", func(t *testing.T) {
		in, f := setup(t, mint(t), 5*time.Second)
		in.imds.RoleMissingFor(600 * time.Millisecond)
		start := time.Now()
		if _, err := f.Bytes(ctx, allowed, "", 0); err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took < 500*time.Millisecond {
			t.Errorf("took %v, want a wait for the role", took)
		}
	})

	t.Run("NoSuchKey is final at once", func(t *testing.T) {
		_, f := setup(t, mint(t), 5*time.Second)
		start := time.Now()
		_, err := f.Bytes(ctx, "s3://config/layers/missing.yaml", "", 0)
		var fe *Error
		if !errors.As(err, &fe) || fe.Code != "NoSuchKey" || !fe.Final || fe.Attempts != 1 {
			t.Fatalf("err = %v (%+v)", err, fe)
		}
		if took := time.Since(start); took > time.Second {
			t.Errorf("took %v", took)
		}
	})

	t.Run("sha256 mismatch", func(t *testing.T) {
		_, f := setup(t, mint(t), 5*time.Second)
		dir := t.TempDir()
		_, err := f.File(ctx, allowed, strings.Repeat("0", 64), dir)
		var fe *Error
		if !errors.As(err, &fe) || fe.Code != CodeSHA256Mismatch || !fe.Final || !strings.Contains(err.Error(), "got "+digest(payload)) {
			t.Fatalf("err = %v", err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatal("temp file left behind")
		}
	})

	t.Run("credentials rotate when they expire", func(t *testing.T) {
		a := mint(t)
		// MinIO's session lasts 15 min; the emulator says 2 s, as IMDS
		// does for credentials about to be rotated.
		a.Expiration = time.Now().Add(2 * time.Second)
		in, f := setup(t, a, 5*time.Second)
		if _, err := f.Bytes(ctx, allowed, "", 0); err != nil {
			t.Fatal(err)
		}
		b := mint(t)
		in.imds.SetCredentials(b)
		time.Sleep(time.Until(a.Expiration) + 100*time.Millisecond)
		if _, err := f.Bytes(ctx, allowed, "", 0); err != nil {
			t.Fatal(err)
		}
		c, err := f.Credentials(ctx)
		if err != nil || c.AccessKeyID != b.AccessKeyID {
			t.Fatalf("credentials not rotated: %v", err)
		}
		if n := in.credentialGETs(role); n != 2 {
			t.Errorf("credentials fetched %d times, want 2", n)
		}
	})

	t.Run("refused credentials are dropped and fetched again", func(t *testing.T) {
		bogus := mint(t)
		bogus.AccessKeyID = "ASIABOGUSBOGUSBOGUS0"
		in, f := setup(t, bogus, 5*time.Second)
		good := mint(t)
		time.AfterFunc(300*time.Millisecond, func() { in.imds.SetCredentials(good) })
		if _, err := f.Bytes(ctx, allowed, "", 0); err != nil {
			t.Fatal(err)
		}
		if n := in.credentialGETs(role); n < 2 {
			t.Errorf("credentials fetched %d times, want a refetch after InvalidAccessKeyId", n)
		}
	})
}
