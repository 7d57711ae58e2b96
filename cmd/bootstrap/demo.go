package main

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/opsboot/bootstrap/internal/engine"
	"github.com/opsboot/bootstrap/internal/state"
	"github.com/opsboot/bootstrap/internal/testbed"
)

//go:embed demo
var demoFiles embed.FS

// cmdDemo runs the real pipeline against an IMDSv2 emulator and an in-process
// object store, both on loopback: the datasource, the role credentials, the S3
// layer and the files are the same code paths as on EC2.
func cmdDemo(ctx context.Context, c *cli, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(c.stderr, "bootstrap demo: unexpected arguments %q\n", args)
		return exitUsage
	}
	if err := isolateFromAWS(); err != nil {
		return c.fail(err)
	}
	work, err := os.MkdirTemp("", "bootstrap-demo-")
	if err != nil {
		return c.fail(err)
	}
	if !c.keep {
		defer os.RemoveAll(work)
	}
	root, stateDir := filepath.Join(work, "root"), filepath.Join(work, "state")
	if c.g.root != "/" {
		root = c.g.root
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return c.fail(err)
	}

	store := testbed.NewObjectStore()
	for key, file := range map[string]string{
		"layers/base.yaml":      "demo/base.yaml",
		"files/motd":            "demo/motd",
		"files/app-credentials": "demo/app-credentials",
	} {
		b, err := demoFiles.ReadFile(file)
		if err != nil {
			return c.fail(err)
		}
		store.Put("demo-config", key, b)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return c.fail(err)
	}
	srv := &http.Server{Handler: store.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	defer srv.Close()
	s3URL := "http://" + ln.Addr().String()

	userData, err := demoFiles.ReadFile("demo/user-data.yaml")
	if err != nil {
		return c.fail(err)
	}
	imds := testbed.NewIMDS(testbed.IMDSConfig{
		InstanceID: "i-0demo0000000001", Region: "eu-west-1", AvailabilityZone: "eu-west-1a",
		UserData: []byte(strings.ReplaceAll(string(userData), "@S3_ENDPOINT@", s3URL)),
		Role:     "demo-instance-role",
		Credentials: testbed.Credentials{
			AccessKeyID: "ASIADEMO0000EXAMPLE1", SecretAccessKey: "demo/secret/access/key/not/real/0000000000",
			Token: "demo-session-token-not-real", Expiration: time.Now().Add(time.Hour),
		},
	})
	imdsURL, err := imds.Start()
	if err != nil {
		return c.fail(err)
	}
	defer imds.Close()

	fmt.Fprintf(c.stdout, "demo: IMDSv2 emulator at %s, object store at %s\ndemo: target root %s\n\n", imdsURL, s3URL, root)
	in := c.input("ec2")
	in.Datasource, in.IMDSEndpoint, in.Root = "ec2", imdsURL, root
	if os.Geteuid() != 0 {
		// Giving files to root needs root; the demo must run without it.
		in.KeepOwnership = true
		fmt.Fprintln(c.stdout, "demo: not running as root: files keep your ownership (the plan shows the configured owner)")
	}
	c.g.root, c.g.stateDir = root, stateDir

	fmt.Fprintln(c.stdout, "== plan (bootstrap plan)")
	if code := c.printPlan(ctx, in); code != exitOK {
		return code
	}
	fmt.Fprintln(c.stdout, "\n== run (bootstrap run)")
	res, err := engine.Run(ctx, in, stateDir)
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.stdout, "run %s done in %s: %d IMDS requests, %d S3 requests\n",
		res.Run, res.Duration.Round(time.Millisecond), res.IMDSRequests, res.Requests)

	fmt.Fprintln(c.stdout, "\n== journal ("+filepath.Join(stateDir, "journal.jsonl")+")")
	st, err := state.OpenExisting(stateDir, c.log)
	if err != nil {
		return c.fail(err)
	}
	entries, err := st.Journal()
	if err != nil {
		return c.fail(err)
	}
	for _, e := range entries {
		d := ""
		if !e.End.IsZero() {
			d = e.End.Sub(e.Start).Round(time.Millisecond).String()
		}
		fmt.Fprintf(c.stdout, "  %-12s %-8s %s\n", e.Step, e.Outcome, d)
	}

	fmt.Fprintln(c.stdout, "\n== files written under "+root)
	if err := listFiles(c, root); err != nil {
		return c.fail(err)
	}
	if c.keep {
		fmt.Fprintf(c.stdout, "\nkept: %s (try: bootstrap status --state-dir %s)\n", work, stateDir)
	}
	return exitOK
}

func listFiles(c *cli, root string) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		st := info.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, path)
		fmt.Fprintf(c.stdout, "  %04o %d:%d %6d  /%s\n", info.Mode().Perm(), st.Uid, st.Gid, info.Size(), rel)
		return nil
	})
}

// isolateFromAWS keeps the demo from picking up the operator's own AWS
// credentials or endpoints: it must use the emulator's role, like an instance.
func isolateFromAWS() error {
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_EC2_METADATA_DISABLED", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN"} {
		if err := os.Unsetenv(k); err != nil {
			return err
		}
	}
	for _, k := range []string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
		if err := os.Setenv(k, os.DevNull); err != nil {
			return err
		}
	}
	return nil
}
