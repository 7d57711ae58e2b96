package plan

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/golden"

	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

func digest(b string) string {
	s := sha256.Sum256([]byte(b))
	return hex.EncodeToString(s[:])
}

func content(b string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(b)), nil }
}

func samplePlan() *Plan {
	return &Plan{
		Instance: "i-0123456789abcdef0", Datasource: "ec2",
		Layers: []string{"s3://acme/base.yaml", "user-data"},
		Steps: []*Step{
			{Name: "files", Frequency: PerInstance, Actions: []Action{
				&File{Path: "/etc/motd", Owner: "root", Group: "root", Mode: 0o644, SHA256: digest("hi\n"), Size: 3, Source: "s3://acme/motd"},
				&File{Path: "/etc/app/key.pem", Owner: "app", Group: "app", Mode: 0o600, Secret: true, SHA256: digest("k"), Size: 1},
				&File{Path: "/etc/hosts", Append: true, SHA256: digest("10.0.0.1 db\n"), Size: 12},
			}},
			{Name: "script:user-data[2](setup.sh)", Frequency: PerInstance, Done: true, Actions: []Action{
				&Script{Name: "user-data[2](setup.sh)", Body: []byte("#!/bin/sh\necho secret-body\n"), SHA256: digest("x")},
			}},
		},
	}
}

func TestPlanRendering(t *testing.T) {
	var text bytes.Buffer
	if err := samplePlan().Write(&text); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "plan.txt.golden"), text.Bytes())
	js, err := json.MarshalIndent(samplePlan().JSON(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "plan.json.golden"), append(js, '\n'))
	for _, out := range []string{text.String(), string(js)} {
		if strings.Contains(out, digest("k")) || strings.Contains(out, "secret-body") {
			t.Fatalf("plan reveals a secret digest or a script body:\n%s", out)
		}
	}
}

func newEnv(t *testing.T) (*Env, *bytes.Buffer) {
	t.Helper()
	root, err := rootfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	var logs bytes.Buffer
	red := &secret.Redactor{}
	return &Env{Root: root, Redactor: red, Scratch: t.TempDir(),
		Log: slog.New(red.Handler(slog.NewTextHandler(&logs, nil)))}, &logs
}

func TestFileApplyIsIdempotent(t *testing.T) {
	env, logs := newEnv(t)
	opens := 0
	f := &File{Path: "/etc/a/b", Owner: "root", Group: "root", Mode: 0o640, SHA256: digest("body"), Size: 4,
		Open: func() (io.ReadCloser, error) { opens++; return content("body")() }}
	for i := 0; i < 2; i++ {
		if err := f.Apply(context.Background(), env); err != nil {
			t.Fatal(err)
		}
	}
	if opens != 1 || !strings.Contains(logs.String(), "file unchanged") {
		t.Fatalf("second apply should leave the file alone: opens=%d logs=%s", opens, logs)
	}
	fi, err := os.Stat(filepath.Join(env.Root.Dir(), "etc/a/b"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("stat: %v %v", fi, err)
	}
}

func TestFileApplyRefusesContentThatChangedSincePlan(t *testing.T) {
	env, _ := newEnv(t)
	f := &File{Path: "/etc/x", Mode: 0o644, SHA256: digest("planned"), Open: content("tampered")}
	if err := f.Apply(context.Background(), env); err == nil || !strings.Contains(err.Error(), "planned") {
		t.Fatalf("err = %v", err)
	}
}

func TestScript(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		timeout time.Duration
		wantErr string
		wantLog string
	}{
		{"ok with shebang", "#!/bin/sh\necho hello from $BOOTSTRAP_TEST\n", 0, "", "hello from yes"},
		{"no shebang runs under sh", "echo plain\n", 0, "", "plain"},
		{"non-zero exit", "#!/bin/sh\necho failing\nexit 7\n", 0, "exited with status 7", "failing"},
		{"timeout kills the group", "#!/bin/sh\nsleep 30 &\nsleep 30\n", 300 * time.Millisecond, "timeout", ""},
		{"secret output redacted", "#!/bin/sh\necho token=tok-abcdef-123456\n", 0, "", "token=" + secret.Mask},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env, logs := newEnv(t)
			env.Redactor.Add("tok-abcdef-123456")
			s := &Script{Name: "t", Body: []byte(tt.body), SHA256: digest(tt.body), Env: []string{"BOOTSTRAP_TEST=yes"}, Timeout: tt.timeout}
			start := time.Now()
			err := s.Apply(context.Background(), env)
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
			if !strings.Contains(logs.String(), tt.wantLog) || strings.Contains(logs.String(), "tok-abcdef") {
				t.Fatalf("logs %q, want %q", logs, tt.wantLog)
			}
			if time.Since(start) > 10*time.Second {
				t.Fatalf("took %s", time.Since(start))
			}
			if ents, _ := os.ReadDir(env.Scratch); len(ents) != 0 {
				t.Fatalf("script file left in scratch: %v", ents)
			}
		})
	}
}

// mapMarks is plan.Marks in memory.
type mapMarks map[string]bool

func (m mapMarks) Marked(k string) bool { return m[k] }
func (m mapMarks) Mark(k string) error  { m[k] = true; return nil }

func TestAppendOncePerInstance(t *testing.T) {
	env, _ := newEnv(t)
	env.Marks = mapMarks{}
	target := filepath.Join(env.Root.Dir(), "etc/sudoers")
	os.MkdirAll(filepath.Dir(target), 0o755)
	os.WriteFile(target, []byte("root ALL=(ALL) ALL\n"), 0o440)
	a := &File{Path: "/etc/sudoers", Append: true, SHA256: digest("ops ALL=(ALL) ALL\n"), Open: content("ops ALL=(ALL) ALL\n")}
	want := "root ALL=(ALL) ALL\nops ALL=(ALL) ALL\n"
	// The second apply is a rerun after a crash between the rename and the
	// step's record: the mark says this content is ours already.
	for i := 0; i < 2; i++ {
		if err := a.Apply(context.Background(), env); err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(target)
		if string(got) != want {
			t.Fatalf("apply %d: %q, want %q", i+1, got, want)
		}
	}
	fi, _ := os.Stat(target)
	if fi.Mode().Perm() != 0o440 {
		t.Errorf("mode %o: an append without a mode keeps the file's", fi.Mode().Perm())
	}

	// A crash after the mark but before the rename left the old content:
	// the append is made (the mark names the result, not the attempt).
	os.WriteFile(target, []byte("root ALL=(ALL) ALL\n"), 0o440)
	env.Marks = mapMarks{"append:/etc/sudoers@" + digest("something else"): true}
	if err := a.Apply(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(target); string(got) != want {
		t.Fatalf("after an interrupted attempt: %q", got)
	}

	// A missing file is created, 0644 root.
	b := &File{Path: "/etc/new.conf", Append: true, Open: content("x=1\n")}
	if err := b.Apply(context.Background(), env); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(env.Root.Dir(), "etc/new.conf"))
	if err != nil || fi.Mode().Perm() != 0o644 {
		t.Fatalf("new file: %v %v", fi, err)
	}
}

func TestAppendRefusesWhatItCannotRead(t *testing.T) {
	env, _ := newEnv(t)
	os.MkdirAll(filepath.Join(env.Root.Dir(), "etc"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(env.Root.Dir(), "etc/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &File{Path: "/etc/fifo", Append: true, Open: content("x")}
	if err := a.Apply(context.Background(), env); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err = %v", err)
	}
}

// A presigned source is described without its signature, credential or
// token, whoever built the action.
func TestFileDescribesPresignedSourceScrubbed(t *testing.T) {
	f := &File{Path: "/opt/app.tar", Owner: "root", Group: "root", Mode: 0o644,
		Source: "https://cdn.example.com/app.tar?X-Amz-Expires=60&X-Amz-Credential=ASIAEXAMPLE%2F1&X-Amz-Signature=0123abcd0123abcd"}
	d := f.Describe()
	if want := "https://cdn.example.com/app.tar?X-Amz-Expires=60&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED"; d.Source != want {
		t.Fatalf("Source = %q, want %q", d.Source, want)
	}
	if s := d.String(); strings.Contains(s, "0123abcd") || strings.Contains(s, "ASIAEXAMPLE") {
		t.Fatalf("description shows the signature: %s", s)
	}
}

// describedAs is an action from a capability that forgot to scrub its source.
type describedAs Description

func (d describedAs) Describe() Description                   { return Description(d) }
func (describedAs) Apply(ctx context.Context, env *Env) error { return nil }

// plan and plan --json show every source scrubbed, whichever action described
// itself, and so the layers.
func TestPlanShowsSourcesScrubbed(t *testing.T) {
	const presigned = "https://cdn.example.com/x?X-Amz-Expires=60&X-Amz-Security-Token=tok-0123abcd&X-Amz-Signature=0123abcd0123abcd"
	p := &Plan{Instance: "i-1", Datasource: "ec2", Layers: []string{presigned}, Steps: []*Step{
		{Name: "packages", Frequency: PerInstance, Actions: []Action{describedAs{Kind: "package", Path: "app", Source: presigned}}},
	}}
	var text bytes.Buffer
	p.Write(&text)
	js, _ := json.Marshal(p.JSON())
	for _, out := range []string{text.String(), string(js)} {
		if strings.Contains(out, "0123abcd") || strings.Count(out, "X-Amz-Signature=REDACTED") != 2 {
			t.Errorf("sources not scrubbed:\n%s", out)
		}
	}
}
