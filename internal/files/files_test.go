package files

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/fetch"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

// noFetch is a Fetcher for configs with inline content only.
type noFetch struct{}

func (noFetch) Bytes(context.Context, string, string, int64) ([]byte, error) {
	return nil, errors.New("no fetches in this test")
}
func (noFetch) File(context.Context, string, string, string) (*fetch.Blob, error) {
	return nil, errors.New("no fetches in this test")
}

func load(t *testing.T, doc string) *config.Config {
	t.Helper()
	cfg, err := config.ParseConfig("test.yaml", []byte(doc), map[string]string{})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func input(t *testing.T, cfg *config.Config) (*capability.Input, *plan.Env) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\n"), 0o644)
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	if os.Geteuid() != 0 {
		root.KeepOwnership()
	}
	red := &secret.Redactor{}
	log := slog.New(slog.DiscardHandler)
	in := &capability.Input{Config: cfg, Fetcher: noFetch{}, Redactor: red, Log: log, Root: root, Scratch: t.TempDir()}
	return in, &plan.Env{Root: root, Log: log, Redactor: red, Scratch: in.Scratch}
}

func apply(t *testing.T, env *plan.Env, steps []*plan.Step) error {
	t.Helper()
	for _, s := range steps {
		for _, a := range s.Actions {
			if err := a.Apply(context.Background(), env); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestUnknownOwnerIsBadInputAtPlanTime(t *testing.T) {
	cfg := load(t, "files:\n  - path: /etc/a\n    content: a\n  - path: /etc/b\n    content: b\n    owner: nginx\n    group: www\n")
	in, _ := input(t, cfg)
	_, err := Files{}.Steps(context.Background(), in)
	if !badinput.Is(err) {
		t.Fatalf("err = %v, want bad input", err)
	}
	for _, want := range []string{`test.yaml:6:12: files[1].owner: user "nginx": unknown user in `, `test.yaml:7:12: files[1].group: group "www": unknown group in `} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestDeferredFilesWaitForTheirOwner(t *testing.T) {
	cfg := load(t, `files:
  - path: /etc/early
    content: e
  - path: /etc/nginx/site.conf
    content: s
    owner: nginx
    group: nginx
    defer: true
  - path: /etc/nginx/other.conf
    content: o
    defer: true
`)
	in, env := input(t, cfg)
	early, err := Files{}.Steps(context.Background(), in)
	if err != nil {
		t.Fatalf("a deferred file's owner is not checked with the early files: %v", err)
	}
	late, err := Deferred{}.Steps(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(early) != 1 || len(early[0].Actions) != 1 || late[0].Name != StepDeferred || len(late[0].Actions) != 3 {
		t.Fatalf("steps: early %+v late %+v", early, late)
	}
	if d := late[0].Actions[0].Describe().String(); d != "check that owners nginx of the deferred files exist" {
		t.Errorf("first deferred action: %s", d)
	}
	// No nginx user yet: the check fails before either deferred file is written.
	err = apply(t, env, late)
	if err == nil || !strings.Contains(err.Error(), `files[1].owner: user "nginx"`) {
		t.Fatalf("err = %v", err)
	}
	for _, p := range []string{"etc/nginx/site.conf", "etc/nginx/other.conf"} {
		if _, err := os.Stat(filepath.Join(env.Root.Dir(), p)); !os.IsNotExist(err) {
			t.Errorf("%s written before the owners check passed", p)
		}
	}
	// The package created the user: now both are written, the owner applied.
	dir := env.Root.Dir()
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\nnginx:x:101:102::/var/www:/usr/sbin/nologin\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\nnginx:x:102:\n"), 0o644)
	if err := apply(t, env, late); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		assertOwner(t, filepath.Join(dir, "etc/nginx/site.conf"), 101, 102)
	}
}

func TestDoneStepsFetchNothing(t *testing.T) {
	cfg := load(t, "files:\n  - path: /etc/a\n    source: s3://bucket/a\n")
	in, _ := input(t, cfg)
	in.Done = func(step string) bool { return step == StepFiles }
	steps, err := Files{}.Steps(context.Background(), in)
	if err != nil || len(steps) != 1 || !steps[0].Done {
		t.Fatalf("steps %+v, err %v", steps, err)
	}
}

func TestSecretContentIsRegistered(t *testing.T) {
	cfg := load(t, "files:\n  - path: /etc/k\n    content: aGVsbG8tc2VjcmV0\n    encoding: base64\n    secret: true\n")
	in, _ := input(t, cfg)
	if _, err := (Files{}).Steps(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if got := in.Redactor.Redact("key is hello-secret"); bytes.Contains([]byte(got), []byte("hello-secret")) {
		t.Errorf("decoded secret content not registered: %s", got)
	}
}
