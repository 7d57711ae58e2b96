// Command bootstrap-testbed runs the test bed on loopback for manual runs
// and benchmarks of bootstrap: the IMDS emulator, plus either a real MinIO
// (--minio: signatures, session token and a read-only session policy are
// checked, as on AWS) or the in-process object store (no checks; a demo).
//
//	bootstrap-testbed [--minio] [--user-data FILE] [--object bucket/key=FILE ...]
//	                  [--role NAME] [--region REGION] [--env-file FILE]
//
// It prints shell export lines pointing the AWS SDK at it (eval them, or
// source --env-file), then serves until SIGINT or SIGTERM.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/opsboot/bootstrap/internal/testbed"
	"github.com/opsboot/bootstrap/internal/testbed/minio"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

type object struct{ bucket, key, file string }

// objectFlags collects repeated --object bucket/key=FILE.
type objectFlags []object

func (o *objectFlags) String() string { return fmt.Sprint(len(*o), " objects") }

func (o *objectFlags) Set(v string) error {
	path, file, ok := strings.Cut(v, "=")
	bucket, key, ok2 := strings.Cut(path, "/")
	if !ok || !ok2 || bucket == "" || key == "" || file == "" {
		return errors.New("want bucket/key=FILE")
	}
	*o = append(*o, object{bucket, key, file})
	return nil
}

// Session credentials from MinIO last this long and are renewed this often,
// so the emulator always serves valid ones.
const (
	sessionDuration = time.Hour
	sessionRenew    = 45 * time.Minute
)

// run is main without the process: exit code 0 after a clean stop, 1 when
// something failed, 2 for bad usage or unreadable input.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	logger := log.New(stderr, "bootstrap-testbed: ", 0)
	fs := flag.NewFlagSet("bootstrap-testbed", flag.ContinueOnError)
	fs.SetOutput(stderr)
	useMinio := fs.Bool("minio", false, "serve objects from a real MinIO with read-only session credentials (else: the in-process store, which checks nothing)")
	userDataFile := fs.String("user-data", "", "serve this `file` as user-data")
	role := fs.String("role", "bootstrap-testbed", "instance profile role `name`")
	region := fs.String("region", "eu-west-1", "the instance's `region`")
	envFile := fs.String("env-file", "", "also write the export lines to this `file`")
	var objects objectFlags
	fs.Var(&objects, "object", "upload `bucket/key=FILE` (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		logger.Printf("unexpected arguments: %q", fs.Args())
		return 2
	}
	if *role == "" {
		logger.Print("--role must not be empty: the SDK needs a role to find credentials")
		return 2
	}

	// Read every input first, so a typo fails before anything starts.
	var userData []byte
	if *userDataFile != "" {
		b, err := os.ReadFile(*userDataFile)
		if err != nil {
			logger.Print(err)
			return 2
		}
		userData = b
	}
	bodies := make([][]byte, len(objects))
	for i, o := range objects {
		b, err := os.ReadFile(o.file)
		if err != nil {
			logger.Print(err)
			return 2
		}
		bodies[i] = b
	}

	imds := testbed.NewIMDS(testbed.IMDSConfig{Region: *region, Role: *role, UserData: userData})
	imdsURL, err := imds.Start()
	if err != nil {
		logger.Print(err)
		return 1
	}
	defer imds.Close()

	var s3URL string
	var wg sync.WaitGroup
	defer wg.Wait() // the renewal goroutine, after ctx is done
	if *useMinio {
		srv, err := startMinio(ctx, logger, *region, objects, bodies)
		if err != nil {
			logger.Print(err)
			return 1
		}
		defer func() {
			if err := srv.Stop(); err != nil {
				logger.Print(err)
			}
		}()
		policy := minio.ReadOnlyPolicyFor(bucketPaths(objects)...)
		creds, err := srv.AssumeRole(ctx, policy, sessionDuration)
		if err != nil {
			logger.Print(err)
			return 1
		}
		imds.SetCredentials(creds)
		wg.Add(1)
		go func() {
			defer wg.Done()
			renew(ctx, logger, srv, imds, policy)
		}()
		s3URL = srv.URL
	} else {
		store := testbed.NewObjectStore()
		for i, o := range objects {
			store.Put(o.bucket, o.key, bodies[i])
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			logger.Print(err)
			return 1
		}
		hs := &http.Server{Handler: store.Handler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = hs.Serve(ln) }() // ends when hs.Close closes ln
		defer hs.Close()
		s3URL = "http://" + ln.Addr().String()
	}

	exports := exportLines(imdsURL, s3URL, *region)
	if _, err := io.WriteString(stdout, exports); err != nil {
		logger.Print(err)
		return 1
	}
	if *envFile != "" {
		if err := writeFileAtomic(*envFile, []byte(exports)); err != nil {
			logger.Print(err)
			return 1
		}
	}
	store := "in-process object store (checks no signature)"
	if *useMinio {
		store = "MinIO, read-only session credentials served as role " + *role
	}
	logger.Printf("IMDS at %s, S3 at %s (%s), %d objects; stop with Ctrl-C", imdsURL, s3URL, store, len(objects))
	<-ctx.Done()
	logger.Print("stopping")
	return 0
}

// startMinio starts MinIO in the instance's region and uploads the objects.
func startMinio(ctx context.Context, logger *log.Logger, region string, objects []object, bodies [][]byte) (*minio.Server, error) {
	srv, err := minio.Start(ctx, minio.Options{Region: region, Logf: logger.Printf})
	if err != nil {
		return nil, err
	}
	for i, o := range objects {
		if err == nil {
			err = srv.CreateBucket(ctx, o.bucket)
		}
		if err == nil {
			err = srv.Put(ctx, o.bucket, o.key, bodies[i])
		}
	}
	if err != nil {
		_ = srv.Stop()
		return nil, err
	}
	return srv, nil
}

// renew replaces the served session credentials before they expire, until
// ctx is done. A failed renewal is logged; the old ones stay until expiry.
func renew(ctx context.Context, logger *log.Logger, srv *minio.Server, imds *testbed.IMDS, policy string) {
	t := time.NewTicker(sessionRenew)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		creds, err := srv.AssumeRole(ctx, policy, sessionDuration)
		if err != nil {
			logger.Printf("renewing session credentials: %v", err)
			continue
		}
		imds.SetCredentials(creds)
		logger.Printf("session credentials renewed, valid until %s", creds.Expiration.Format(time.RFC3339))
	}
}

// bucketPaths are the "bucket/" prefixes the session policy allows, one per
// bucket. With no objects, a name no bucket can have: the session may read
// nothing.
func bucketPaths(objects []object) []string {
	seen := map[string]bool{}
	var paths []string
	for _, o := range objects {
		if !seen[o.bucket] {
			seen[o.bucket] = true
			paths = append(paths, o.bucket+"/")
		}
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		paths = []string{"-no-bucket-/"}
	}
	return paths
}

// exportLines point the AWS SDK (and bootstrap) at the test bed. No secret
// is among them: credentials come from the emulated instance role.
func exportLines(imdsURL, s3URL, region string) string {
	var b strings.Builder
	for _, kv := range [][2]string{
		{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imdsURL},
		{"AWS_ENDPOINT_URL_S3", s3URL},
		{"AWS_REGION", region},
		{"AWS_DEFAULT_REGION", region},
	} {
		fmt.Fprintf(&b, "export %s=%s\n", kv[0], shellQuote(kv[1]))
	}
	return b.String()
}

func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:/") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// writeFileAtomic writes via a temp file and rename, so a reader never sees
// half a file.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after a successful rename: a no-op
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
