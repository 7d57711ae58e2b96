package command

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/golden"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

// Both stages are capabilities on the seam.
var _ = []capability.Capability{Early{}, Final{}}

// input decodes a one-layer config and returns what a capability plans
// from, with a temp target root and the log.
func input(t *testing.T, yml string, done func(string) bool) (*capability.Input, *bytes.Buffer) {
	t.Helper()
	cfg, err := config.ParseConfig("c.yaml", []byte(yml), map[string]string{"instance_id": "i-0123456789abcdef0"})
	if err != nil {
		t.Fatal(err)
	}
	root, err := rootfs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	red := &secret.Redactor{}
	red.Add(testSecret)
	var logs bytes.Buffer
	return &capability.Input{Config: cfg, Facts: map[string]string{"instance_id": "i-0123456789abcdef0"},
		Redactor: red, Root: root, Scratch: t.TempDir(), Done: done,
		Log: slog.New(red.Handler(slog.NewTextHandler(&logs, nil)))}, &logs
}

func planSteps(t *testing.T, in *capability.Input) []*plan.Step {
	t.Helper()
	var steps []*plan.Step
	for _, c := range []capability.Capability{Early{}, Final{}} {
		s, err := c.Steps(context.Background(), in)
		if err != nil {
			t.Fatal(err)
		}
		steps = append(steps, s...)
	}
	return steps
}

const transcript = `commands:
  - name: swap
    stage: early
    argv: [/sbin/swapon, -a]
  - name: register
    argv: [/usr/local/bin/register, --token, tok-abcdef-123456, --id, "${instance_id}"]
    env: [REGISTRY=https://registry.example.com, API_KEY=k]
    timeout: 90s
  - name: warm-cache
    shell: curl -fsS http://localhost/warm > /dev/null
    cwd: /srv/app
    retries: 3
    retry_on: [7, 22]
    creates: /var/lib/app/warmed
  - name: motd
    stage: early
    frequency: per-instance
    argv: [update-motd]
  - name: reindex
    frequency: always
    shell: /usr/local/bin/reindex
    retries: 2
`

func TestPlanTranscript(t *testing.T) {
	in, _ := input(t, transcript, nil)
	p := &plan.Plan{Instance: in.Instance(), Datasource: "none", Steps: planSteps(t, in)}
	var out bytes.Buffer
	if err := p.Write(&out); err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "plan.txt.golden"), out.Bytes())
	js, err := json.MarshalIndent(p.JSON(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("testdata", "plan.json.golden"), append(js, '\n'))
	if strings.Contains(out.String()+string(js), testSecret) {
		t.Fatalf("the plan shows a secret:\n%s", out.String())
	}
}

func TestImageBuildLeavesCommandsToFirstBoot(t *testing.T) {
	in, logs := input(t, "commands:\n  - {name: early, stage: early, argv: [x]}\n  - {name: last, argv: [y]}\n", nil)
	in.Image = true
	fake := &fakeRunner{}
	steps := planSteps(t, in)
	for _, s := range steps {
		if s.Frequency != plan.Always || s.Done {
			t.Errorf("step %s: %s done=%v; want always, so nothing is recorded for the image", s.Name, s.Frequency, s.Done)
		}
		fb, ok := s.Actions[0].(firstBoot)
		if !ok {
			t.Fatalf("step %s: action %T", s.Name, s.Actions[0])
		}
		fb.a.Runner = fake
		if d := fb.Describe(); !strings.HasPrefix(d.Note, "waits for first boot (--image); ") {
			t.Errorf("step %s: note %q", s.Name, d.Note)
		}
	}
	if err := apply(t, in, steps, map[string]bool{}); err != nil {
		t.Fatal(err)
	}
	if len(fake.ran) != 0 || strings.Count(logs.String(), "command waits for first boot") != 2 {
		t.Fatalf("ran %d; logs:\n%s", len(fake.ran), logs)
	}
}

func TestFrequencies(t *testing.T) {
	// Every step ran before on this instance: per-instance steps are done,
	// always steps run again, whatever their stage.
	in, _ := input(t, transcript, func(string) bool { return true })
	got := map[string]string{}
	for _, s := range planSteps(t, in) {
		got[s.Name] = string(s.Frequency)
		if s.Done {
			got[s.Name] += " done"
		}
	}
	want := map[string]string{
		"command:swap":       "always",            // early: every boot
		"command:motd":       "per-instance done", // early, asked once per instance
		"command:register":   "per-instance done", // final: once per instance
		"command:warm-cache": "per-instance done",
		"command:reindex":    "always", // final, asked every run
	}
	if len(got) != len(want) {
		t.Fatalf("steps %v, want %v", got, want)
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: %q, want %q", name, got[name], w)
		}
	}
}

// apply runs steps as the engine does: done steps are skipped, the first
// failure stops the run, per-instance steps are recorded when they succeed.
func apply(t *testing.T, in *capability.Input, steps []*plan.Step, record map[string]bool) error {
	t.Helper()
	env := &plan.Env{Root: in.Root, Log: in.Log, Redactor: in.Redactor, Scratch: in.Scratch}
	for _, s := range steps {
		if s.Done {
			continue
		}
		for _, a := range s.Actions {
			if err := a.Apply(context.Background(), env); err != nil {
				return err
			}
		}
		if s.Frequency == plan.PerInstance {
			record[s.Name] = true
		}
	}
	return nil
}

func TestRerunAfterFailureRedoesOnlyWhatWasNotDone(t *testing.T) {
	dir := t.TempDir()
	ran, fixed := filepath.Join(dir, "ran"), filepath.Join(dir, "fixed")
	cfg := "commands:\n" +
		"  - {name: boot, stage: early, shell: 'echo boot >> " + ran + "'}\n" +
		"  - {name: one, shell: 'echo one >> " + ran + "'}\n" +
		"  - {name: two, shell: 'echo two >> " + ran + "'}\n" +
		"  - {name: three, shell: 'echo three >> " + ran + "; test -e " + fixed + "'}\n" +
		"  - {name: four, shell: 'echo four >> " + ran + "'}\n"
	record := map[string]bool{}
	done := func(step string) bool { return record[step] }

	in, _ := input(t, cfg, done)
	err := apply(t, in, planSteps(t, in), record)
	if err == nil || err.Error() != "command three exited 1" {
		t.Fatalf("first run: %v", err)
	}
	if err := os.WriteFile(fixed, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	in, _ = input(t, cfg, done)
	if err := apply(t, in, planSteps(t, in), record); err != nil {
		t.Fatalf("second run: %v", err)
	}
	b, _ := os.ReadFile(ran)
	if got, want := strings.Fields(string(b)), "boot one two three boot three four"; strings.Join(got, " ") != want {
		t.Fatalf("ran %q, want %q", got, want)
	}
}

// fakeRunner records the specs it is asked to run.
type fakeRunner struct {
	ran  []Spec
	res  Result
	out  []string
	errs error
}

func (f *fakeRunner) Run(_ context.Context, s Spec, out func(string)) (Result, error) {
	f.ran = append(f.ran, s)
	for _, l := range f.out {
		out(l)
	}
	return f.res, f.errs
}

func TestActionApply(t *testing.T) {
	tests := []struct {
		name     string
		cfg      string
		present  string // a file made under the root first (var/run links to /run)
		res      Result
		out      []string
		wantRuns int
		wantErr  string
		wantLog  string
		real     bool // run with Exec, not the fake
	}{
		{name: "creates present: not run", cfg: "{name: once, argv: [mkswap, /swap], creates: /var/lib/swap/done}",
			present: "var/lib/swap/done", wantRuns: 0, wantLog: `msg="command not run: what it creates is there" command=once creates=/var/lib/swap/done`},
		{name: "creates through a symlink in the target", cfg: "{name: once, argv: [x], creates: /var/run/app.pid}",
			present: "run/app.pid", wantRuns: 0, wantLog: `msg="command not run: what it creates is there"`},
		{name: "creates below a file: run", cfg: "{name: once, argv: [x], creates: /run/app.pid/x}",
			present: "run/app.pid", wantRuns: 1},
		{name: "creates absent: run", cfg: "{name: once, argv: [mkswap, /swap], creates: /var/lib/swap/done}",
			present: "var/lib/swap/other", wantRuns: 1, wantLog: `msg="command finished" command=once`},
		{name: "output logged, redacted", cfg: "{name: talk, argv: [x]}", out: []string{"token " + testSecret},
			wantRuns: 1, wantLog: `msg="token [REDACTED]" command=talk`},
		{name: "a missing working directory is named", cfg: "{name: there, argv: [/bin/true], cwd: /srv/gone}", res: Result{ExitCode: -1},
			wantRuns: 0, real: true, wantErr: "command there: working directory ROOT/srv/gone does not exist"},
		{name: "non-zero exit", cfg: "{name: fail, argv: [x]}", res: Result{ExitCode: 4, Attempts: 1, Tail: []string{"boom"}},
			wantRuns: 1, wantErr: `command fail exited 4; last output: "boom"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, logs := input(t, "commands:\n  - "+tt.cfg+"\n", nil)
			if err := os.MkdirAll(filepath.Join(in.Root.Dir(), "var"), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/run", filepath.Join(in.Root.Dir(), "var/run")); err != nil {
				t.Fatal(err)
			}
			if tt.present != "" {
				p := filepath.Join(in.Root.Dir(), tt.present)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			steps := planSteps(t, in)
			fake := &fakeRunner{res: tt.res, out: tt.out}
			if !tt.real {
				steps[0].Actions[0].(*Action).Runner = fake
			}
			err := apply(t, in, steps, map[string]bool{})
			wantErr := strings.ReplaceAll(tt.wantErr, "ROOT", in.Root.Dir())
			if wantErr == "" && err != nil || wantErr != "" && (err == nil || err.Error() != wantErr) {
				t.Fatalf("err %v, want %q", err, tt.wantErr)
			}
			if len(fake.ran) != tt.wantRuns {
				t.Fatalf("ran %d times, want %d", len(fake.ran), tt.wantRuns)
			}
			if !strings.Contains(logs.String(), tt.wantLog) || strings.Contains(logs.String(), testSecret) {
				t.Fatalf("logs:\n%s\nwant %q", logs, tt.wantLog)
			}
		})
	}
}

func TestSpecFromConfig(t *testing.T) {
	in, _ := input(t, "commands:\n  - {name: s, shell: 'a | b', cwd: /srv, env: [A=1], timeout: 5s, retries: 2, retry_on: [75]}\n  - {name: v, argv: [prog, arg]}\n", nil)
	steps := planSteps(t, in)
	root := in.Root.Dir()
	got := []Spec{steps[0].Actions[0].(*Action).Spec, steps[1].Actions[0].(*Action).Spec}
	want := []Spec{
		{Argv: []string{"/bin/sh", "-c", "a | b"}, Dir: root + "/srv", Timeout: 5 * time.Second, Retries: 2, RetryOn: []int{75}, Name: "command s",
			Env: []string{"A=1", "BOOTSTRAP_ROOT=" + root, "BOOTSTRAP_INSTANCE_ID=i-0123456789abcdef0"}},
		{Argv: []string{"prog", "arg"}, Dir: root, Timeout: config.DefaultCommandTimeout, Name: "command v",
			Env: []string{"BOOTSTRAP_ROOT=" + root, "BOOTSTRAP_INSTANCE_ID=i-0123456789abcdef0"}},
	}
	for i := range want {
		g, w := got[i], want[i]
		if strings.Join(g.Argv, "\x00") != strings.Join(w.Argv, "\x00") || g.Dir != w.Dir || g.Timeout != w.Timeout ||
			g.Retries != w.Retries || strings.Join(g.Env, "\n") != strings.Join(w.Env, "\n") || g.Name != w.Name ||
			len(g.RetryOn) != len(w.RetryOn) {
			t.Errorf("spec %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestRelativeRootIsPassedAbsolute(t *testing.T) {
	parent := t.TempDir()
	if err := os.Mkdir(filepath.Join(parent, "img"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(parent)
	in, _ := input(t, "commands:\n  - {name: a, argv: [x], cwd: /srv}\n", nil)
	root, err := rootfs.Open("img") // as with --root img
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	in.Root = root
	s := planSteps(t, in)[0].Actions[0].(*Action).Spec
	want := filepath.Join(parent, "img")
	if s.Dir != want+"/srv" || !slices.Contains(s.Env, "BOOTSTRAP_ROOT="+want) {
		t.Fatalf("dir %q env %q; want both under %s", s.Dir, s.Env, want)
	}
}
