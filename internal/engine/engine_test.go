package engine

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/files"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
	"github.com/opsboot/bootstrap/internal/state"
	"github.com/opsboot/bootstrap/internal/testbed"
)

// world is an instance in-process: the IMDS emulator and the demo object store
// on loopback, a target root and a state dir.
type world struct {
	imds     *testbed.IMDS
	store    *testbed.ObjectStore
	s3URL    string
	root     string
	stateDir string
	logs     *bytes.Buffer
	red      *secret.Redactor
}

func newWorld(t *testing.T) *world { return newWorldB(t) }

func newWorldB(t testing.TB) *world {
	t.Helper()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "BOOTSTRAP_FAILPOINT"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	w := &world{store: testbed.NewObjectStore(), logs: &bytes.Buffer{}, red: &secret.Redactor{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: w.store.Handler(), ReadHeaderTimeout: time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	w.s3URL = "http://" + ln.Addr().String()
	w.imds = testbed.NewIMDS(testbed.IMDSConfig{InstanceID: "i-0engine000000001", Region: "eu-west-1", Role: "engine-role",
		Credentials: testbed.Credentials{AccessKeyID: "ASIAENGINETEST000001", SecretAccessKey: "engine-secret-access-key-0000", Token: "engine-session-token-0000", Expiration: time.Now().Add(time.Hour)}})
	if _, err := w.imds.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.imds.Close() })
	dir := t.TempDir()
	w.root, w.stateDir = filepath.Join(dir, "root"), filepath.Join(dir, "state")
	os.Mkdir(w.root, 0o755)
	return w
}

func (w *world) userData(body string) {
	w.imds.SetUserData([]byte("aws:\n  deadline: 2s\n  s3:\n    endpoint: " + w.s3URL + "\n    path_style: true\n" + body))
}

func (w *world) input() Input {
	return Input{Datasource: "ec2", IMDSEndpoint: w.imds.URL(), Root: w.root, Redactor: w.red,
		Log: slog.New(w.red.Handler(slog.NewTextHandler(w.logs, nil)))}
}

func TestIncludesMergeBeforeTheIncludingDocument(t *testing.T) {
	w := newWorld(t)
	w.store.Put("cfg", "a.yaml", []byte("include:\n  - s3://cfg/a1.yaml\nfiles:\n  - path: /a\n    content: a\n"))
	w.store.Put("cfg", "a1.yaml", []byte("aws:\n  region: eu-west-1\n"))
	w.store.Put("cfg", "b.yaml", []byte("files:\n  - path: /b\n    content: b\n"))
	w.userData("include:\n  - s3://cfg/a.yaml\n  - s3://cfg/b.yaml\n")
	l, err := Load(context.Background(), w.input())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"s3://cfg/a1.yaml", "s3://cfg/a.yaml", "s3://cfg/b.yaml", "user-data"}
	if strings.Join(l.Layers, " ") != strings.Join(want, " ") {
		t.Fatalf("layers %v, want %v", l.Layers, want)
	}
	// files merge by path: both layers' files are kept, in layer order.
	if len(l.Config.Files) != 2 || l.Config.Files[0].Path != "/a" || l.Config.Files[1].Path != "/b" {
		t.Fatalf("files %+v", l.Config.Files)
	}
}

func TestIncludeErrors(t *testing.T) {
	tests := []struct {
		name    string
		objects map[string]string
		ud      string
		code    int
		want    string
	}{
		{"cycle", map[string]string{"x.yaml": "include: [s3://cfg/y.yaml]\n", "y.yaml": "include: [s3://cfg/x.yaml]\n"},
			"include: [s3://cfg/x.yaml]\n", 2, "included twice"},
		{"missing object is final and fast", nil, "include: [s3://cfg/nope.yaml]\n", 1, "nope.yaml"},
		{"unknown fact", nil, "include: [\"s3://cfg/${nope}.yaml\"]\n", 2, "nope"},
		{"bad layer names its source", map[string]string{"bad.yaml": "files: {path: /x}\n"}, "include: [s3://cfg/bad.yaml]\n", 2, "s3://cfg/bad.yaml:1:"},
		{"sha256 mismatch", map[string]string{"ok.yaml": "files: []\n"},
			"include:\n  - source: s3://cfg/ok.yaml\n    sha256: " + strings.Repeat("0", 64) + "\n", 1, "sha256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t)
			for k, v := range tt.objects {
				w.store.Put("cfg", k, []byte(v))
			}
			w.userData(tt.ud)
			start := time.Now()
			_, err := Load(context.Background(), w.input())
			if err == nil {
				t.Fatal("no error")
			}
			if ExitCode(err) != tt.code || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("exit %d, error %q: want exit %d containing %q", ExitCode(err), err, tt.code, tt.want)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("took %s", time.Since(start))
			}
		})
	}
}

func TestNestedIncludesAreBounded(t *testing.T) {
	w := newWorld(t)
	for i := 0; i < maxDepth+2; i++ {
		w.store.Put("cfg", "l"+string(rune('a'+i))+".yaml", []byte("include: [s3://cfg/l"+string(rune('a'+i+1))+".yaml]\n"))
	}
	w.userData("include: [s3://cfg/la.yaml]\n")
	_, err := Load(context.Background(), w.input())
	if err == nil || !strings.Contains(err.Error(), "nested deeper") || ExitCode(err) != 2 {
		t.Fatalf("err = %v", err)
	}
}

func TestPlanNeverShowsSecretsAndRunMatchesPlan(t *testing.T) {
	w := newWorld(t)
	w.store.Put("cfg", "key.pem", []byte("-----BEGIN KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END KEY-----\n"))
	w.userData(`files:
  - path: /etc/app/key.pem
    source: s3://cfg/key.pem
    secret: true
  - path: /etc/app/password
    content: hunter2-very-secret
    secret: true
  - path: /etc/app/b64
    content: aGVsbG8K
    encoding: base64
    mode: 0640
`)
	ctx := context.Background()
	l, err := Load(ctx, w.input())
	if err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(w.root)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	p, err := Plan(ctx, l, PlanInput{Root: root, Scratch: t.TempDir(), Redactor: w.red})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	p.Write(&out)
	text := out.String()
	for _, s := range []string{"hunter2", "c2VjcmV0", "aGVsbG8K"} {
		if strings.Contains(text, s) {
			t.Fatalf("plan shows %q:\n%s", s, text)
		}
	}
	if !strings.Contains(text, "/etc/app/b64 root:root 0640 sha256:") || !strings.Contains(text, "/etc/app/password root:root 0600 secret (19 bytes)") {
		t.Fatalf("plan:\n%s", text)
	}
	if _, err := Run(ctx, w.input(), w.stateDir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(w.root, "etc/app/b64")); string(b) != "hello\n" {
		t.Fatalf("b64 decoded to %q", b)
	}
	// The redactor learnt the secrets while planning: logs stay clean.
	if strings.Contains(w.logs.String(), "hunter2") || strings.Contains(w.logs.String(), "engine-secret-access-key") {
		t.Fatal("secret in logs")
	}
}

func TestRunJournalsAndSkipsOnReboot(t *testing.T) {
	w := newWorld(t)
	w.userData("files:\n  - path: /etc/x\n    content: \"${instance_id}\\n\"\n")
	ctx := context.Background()
	res, err := Run(ctx, w.input(), w.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if !res.NewInstance || res.IMDSRequests == 0 || res.IMDSRequests > 8 {
		t.Fatalf("result %+v", res)
	}
	if b, _ := os.ReadFile(filepath.Join(w.root, "etc/x")); string(b) != "i-0engine000000001\n" {
		t.Fatalf("etc/x = %q", b)
	}
	res2, err := Run(ctx, w.input(), w.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if res2.NewInstance || !res2.Plan.Steps[0].Done {
		t.Fatalf("second run should see the same instance with files done: %+v", res2)
	}
	st, _ := state.Open(w.stateDir, nil)
	entries, _ := st.Journal()
	sum := state.Summarize(entries)
	if sum.State != state.StateDone || sum.Run != res2.Run {
		t.Fatalf("summary %+v", sum)
	}
	var skipped bool
	for _, s := range sum.Steps {
		skipped = skipped || (s.Step == files.StepFiles && s.Outcome == state.OutcomeSkipped)
	}
	if !skipped {
		t.Fatalf("files not skipped on reboot: %+v", sum.Steps)
	}
}

func TestRunRefusesWhileAnotherHoldsTheLock(t *testing.T) {
	w := newWorld(t)
	w.userData("")
	st, err := state.Open(w.stateDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := st.Lock(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	_, err = Run(context.Background(), w.input(), w.stateDir)
	if !errors.Is(err, state.ErrLocked) || ExitCode(err) != 1 {
		t.Fatalf("err = %v", err)
	}
}

func TestConfigErrorIsJournaledAndWritesNothing(t *testing.T) {
	w := newWorld(t)
	w.userData("files:\n  - path: relative/path\n    content: x\n")
	_, err := Run(context.Background(), w.input(), w.stateDir)
	if ExitCode(err) != 2 || !strings.Contains(err.Error(), "user-data:") {
		t.Fatalf("err = %v", err)
	}
	if ents, _ := os.ReadDir(w.root); len(ents) != 0 {
		t.Fatalf("root not empty: %v", ents)
	}
	st, _ := state.Open(w.stateDir, nil)
	entries, _ := st.Journal()
	sum := state.Summarize(entries)
	if sum.State != state.StateFailed || sum.FailedStep != StepConfig {
		t.Fatalf("summary %+v", sum)
	}
}

func TestLocalConfigGovernsIMDSAndSkipsUserData(t *testing.T) {
	w := newWorld(t)
	w.userData("this: is not read\n")
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("imds:\n  deadline: 3s\nfiles:\n  - path: /etc/local\n    content: local\n"), 0o644)
	in := w.input()
	in.Config = cfg
	l, err := Load(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if l.Layers[0] != cfg || len(l.Config.Files) != 1 {
		t.Fatalf("layers %v files %+v", l.Layers, l.Config.Files)
	}
	for _, r := range w.imds.Requests() {
		if strings.HasSuffix(r.Path, "/user-data") {
			t.Fatal("user-data fetched although --config was given")
		}
	}
}

func TestLocalConfigAWSSectionMayUseFactsAndWrappedBase64(t *testing.T) {
	w := newWorld(t)
	w.store.Put("cfg", "eu-west-1/base.yaml", []byte("files:\n  - path: /etc/wrapped\n    encoding: base64\n    content: |\n      aGVsbG8g\n      d29ybGQK\n"))
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(cfg, []byte("aws:\n  region: ${region}\n  s3:\n    endpoint: "+w.s3URL+"\n    path_style: true\ninclude: [\"s3://cfg/${region}/base.yaml\"]\n"), 0o644)
	in := w.input()
	in.Config = cfg
	if _, err := Run(context.Background(), in, w.stateDir); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(w.root, "etc/wrapped")); string(b) != "hello world\n" {
		t.Fatalf("etc/wrapped = %q", b)
	}
}

func TestEmptyUserDataSaysSo(t *testing.T) {
	w := newWorld(t)
	res, err := Run(context.Background(), w.input(), w.stateDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Plan.Steps) != 0 || !strings.Contains(w.logs.String(), "no configuration") {
		t.Fatalf("steps %v, logs:\n%s", res.Plan.Steps, w.logs)
	}
}
