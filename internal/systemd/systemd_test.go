package systemd

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/golden"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

func yes() *bool { b := true; return &b }
func no() *bool  { b := false; return &b }

// periodic is the kind of service + timer pair Chef's and Puppet's
// capabilities build from Go values.
func periodic(t testing.TB) []Unit {
	t.Helper()
	svc, err := NewFile("", Sections(
		Section{"Unit", [][2]string{{"Description", "Chef Infra Client run"}, {"After", "network-online.target"}, {"Wants", "network-online.target"}}},
		Section{"Service", [][2]string{{"Type", "oneshot"}, {"ExecStart", "/bin/true -c /etc/chef/client.rb"}, {"Environment", "A=1"}, {"Environment", "B=2"}}},
	))
	if err != nil {
		t.Fatal(err)
	}
	timer, err := NewFile("", Sections(
		Section{"Unit", [][2]string{{"Description", "Chef Infra Client every 30 minutes"}}},
		Section{"Timer", [][2]string{{"OnBootSec", "5min"}, {"OnUnitActiveSec", "30min"}, {"RandomizedDelaySec", "5min"}}},
		Section{"Install", [][2]string{{"WantedBy", "timers.target"}}},
	))
	if err != nil {
		t.Fatal(err)
	}
	return []Unit{
		{Name: "chef-client.service", Body: svc},
		{Name: "chef-client.timer", Body: timer, Enable: yes(), Start: true},
	}
}

func TestRenderedUnits(t *testing.T) {
	for _, u := range periodic(t) {
		golden.Check(t, filepath.Join("testdata", u.Name+".golden"), u.Body.Data)
	}
}

// writeHost puts a file into a test root the way a package would.
func writeHost(t *testing.T, root, p, content string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlinkHost(t *testing.T, root, target, p string) {
	t.Helper()
	full := filepath.Join(root, p)
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, full); err != nil {
		t.Fatal(err)
	}
}

func openRoot(t testing.TB, dir string) *rootfs.Root {
	t.Helper()
	r, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func newEnv(t testing.TB, root *rootfs.Root) (*plan.Env, *bytes.Buffer) {
	t.Helper()
	var logs bytes.Buffer
	red := &secret.Redactor{}
	return &plan.Env{Root: root, Redactor: red, Scratch: t.TempDir(),
		Log: slog.New(red.Handler(slog.NewTextHandler(&logs, nil)))}, &logs
}

// linkTree lists every symlink under dir as "path -> target", sorted.
func linkTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out = append(out, strings.TrimPrefix(p, dir)+" -> "+target)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

const svcText = "[Service]\nExecStart=/bin/true\n"

func TestEnableLinks(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		unit    string
		want    []string
		wantErr string
	}{
		{
			name: "unit in /etc: wants, requires, alias and Also",
			setup: func(t *testing.T, dir string) {
				writeHost(t, dir, "etc/systemd/system/demo.service", svcText+"[Install]\nWantedBy=multi-user.target\nRequiredBy=foo.target\nAlias=demo-alias.service\nAlso=demo.timer\n")
				writeHost(t, dir, "etc/systemd/system/demo.timer", "[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n")
			},
			unit: "demo.service",
			want: []string{
				"/etc/systemd/system/multi-user.target.wants/demo.service -> /etc/systemd/system/demo.service",
				"/etc/systemd/system/foo.target.requires/demo.service -> /etc/systemd/system/demo.service",
				"/etc/systemd/system/demo-alias.service -> /etc/systemd/system/demo.service",
				"/etc/systemd/system/timers.target.wants/demo.timer -> /etc/systemd/system/demo.timer",
			},
		},
		{
			name: "unit in /usr/lib through /lib -> usr/lib, lists and repeated keys",
			setup: func(t *testing.T, dir string) {
				symlinkHost(t, dir, "usr/lib", "lib")
				writeHost(t, dir, "usr/lib/systemd/system/lib.service", svcText+"[Install]\nWantedBy=a.target b.target\nWantedBy=c.target\n")
			},
			unit: "lib.service",
			want: []string{
				"/etc/systemd/system/a.target.wants/lib.service -> /lib/systemd/system/lib.service",
				"/etc/systemd/system/b.target.wants/lib.service -> /lib/systemd/system/lib.service",
				"/etc/systemd/system/c.target.wants/lib.service -> /lib/systemd/system/lib.service",
			},
		},
		{
			name: "template with DefaultInstance and specifiers",
			setup: func(t *testing.T, dir string) {
				writeHost(t, dir, "etc/systemd/system/tpl@.service", svcText+"[Install]\nWantedBy=multi-user.target getty@%i.service\nDefaultInstance=one\n")
			},
			unit: "tpl@.service",
			want: []string{
				"/etc/systemd/system/multi-user.target.wants/tpl@one.service -> /etc/systemd/system/tpl@.service",
				"/etc/systemd/system/getty@one.service.wants/tpl@one.service -> /etc/systemd/system/tpl@.service",
			},
		},
		{
			name: "instance of a template",
			setup: func(t *testing.T, dir string) {
				writeHost(t, dir, "etc/systemd/system/tpl@.service", svcText+"[Install]\nWantedBy=multi-user.target\n")
			},
			unit: "tpl@two.service",
			want: []string{"/etc/systemd/system/multi-user.target.wants/tpl@two.service -> /etc/systemd/system/tpl@.service"},
		},
		{
			name: "[Install] in a drop-in; an empty assignment resets",
			setup: func(t *testing.T, dir string) {
				writeHost(t, dir, "usr/lib/systemd/system/d.service", svcText+"[Install]\nWantedBy=old.target\n")
				writeHost(t, dir, "etc/systemd/system/d.service.d/10-i.conf", "[Install]\nWantedBy=\nWantedBy=x.target\n")
			},
			unit: "d.service",
			want: []string{"/etc/systemd/system/x.target.wants/d.service -> /usr/lib/systemd/system/d.service"},
		},
		{
			name: "template without DefaultInstance",
			setup: func(t *testing.T, dir string) {
				writeHost(t, dir, "etc/systemd/system/t@.service", svcText+"[Install]\nWantedBy=a.target\n")
			},
			unit:    "t@.service",
			wantErr: "t@.service is a template without DefaultInstance=; enable an instance of it (t@NAME.service)",
		},
		{
			name:    "masked",
			setup:   func(t *testing.T, dir string) { symlinkHost(t, dir, "/dev/null", "etc/systemd/system/m.service") },
			unit:    "m.service",
			wantErr: "m.service is masked (/etc/systemd/system/m.service -> /dev/null); set masked: false to unmask it",
		},
		{
			name: "an alias link is refused, as systemctl does",
			setup: func(t *testing.T, dir string) {
				writeHost(t, dir, "etc/systemd/system/e.service", svcText)
				symlinkHost(t, dir, "/etc/systemd/system/e.service", "etc/systemd/system/f.service")
			},
			unit:    "f.service",
			wantErr: "/etc/systemd/system/f.service is a link to /etc/systemd/system/e.service (an alias); enable e.service instead",
		},
		{
			name:    "not found",
			setup:   func(t *testing.T, dir string) {},
			unit:    "nope.service",
			wantErr: "unit nope.service: not found on the unit path /etc/systemd/system, /run/systemd/system, /usr/local/lib/systemd/system, /lib/systemd/system, /usr/lib/systemd/system",
		},
		{
			name: "unsupported specifier",
			setup: func(t *testing.T, dir string) {
				writeHost(t, dir, "etc/systemd/system/s.service", svcText+"[Install]\nWantedBy=%H.target\n")
			},
			unit:    "s.service",
			wantErr: `s.service: "%H.target": specifier %H is not supported in [Install] offline (use %n, %N, %p or %i)`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			tt.setup(t, dir)
			r := &resolver{root: openRoot(t, dir)}
			links, err := r.enableLinks(tt.unit)
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range links {
				got = append(got, l.Path+" -> "+l.Target)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("links:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func apply(t *testing.T, env *plan.Env, actions []plan.Action) {
	t.Helper()
	for _, a := range actions {
		if err := a.Apply(context.Background(), env); err != nil {
			t.Fatalf("%s: %v", a.Describe(), err)
		}
	}
}

// stamps records the mtime and inode of every entry under dir.
func stamps(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t) // atime aside: reading is not a change
		out[p] = fmt.Sprintf("mtime %d ctime %d.%d inode %d", fi.ModTime().UnixNano(), st.Ctim.Sec, st.Ctim.Nsec, st.Ino)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestOfflineApplyIsIdempotent(t *testing.T) {
	dir := t.TempDir()
	root := openRoot(t, dir)
	units := periodic(t)
	units[0].Dropins = []*File{mustParse(t, "10-nice.conf", "[Service]\nNice=10\n")}
	actions, err := Actions(root, units...)
	if err != nil {
		t.Fatal(err)
	}
	env, logs := newEnv(t, root)
	apply(t, env, actions)
	want := []string{"/etc/systemd/system/timers.target.wants/chef-client.timer -> /etc/systemd/system/chef-client.timer"}
	if got := linkTree(t, dir); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("links after apply: %v", got)
	}
	for _, p := range []string{"etc/systemd/system/chef-client.service", "etc/systemd/system/chef-client.service.d/10-nice.conf"} {
		fi, err := os.Stat(filepath.Join(dir, p))
		if err != nil || fi.Mode().Perm() != 0o644 {
			t.Fatalf("%s: %v %v", p, fi, err)
		}
	}
	before := stamps(t, dir)
	logs.Reset()
	time.Sleep(10 * time.Millisecond) // a rewrite would show in the mtimes
	again, err := Actions(root, periodic(t)[0], periodic(t)[1])
	if err != nil {
		t.Fatal(err)
	}
	again[0].(*UnitAction).Unit.Dropins = units[0].Dropins
	apply(t, env, again)
	if after := stamps(t, dir); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("second apply changed the tree:\nbefore %v\nafter  %v", before, after)
	}
	if strings.Contains(logs.String(), "written") || strings.Contains(logs.String(), "created") {
		t.Errorf("second apply logged a change:\n%s", logs)
	}
}

func mustParse(t *testing.T, name, text string) *File {
	t.Helper()
	f, err := ParseFile(name, []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestDisableMaskUnmask(t *testing.T) {
	dir := t.TempDir()
	writeHost(t, dir, "usr/lib/systemd/system/a.service", svcText+"[Install]\nWantedBy=multi-user.target\nAlias=b.service\n")
	symlinkHost(t, dir, "/usr/lib/systemd/system/a.service", "etc/systemd/system/multi-user.target.wants/a.service")
	symlinkHost(t, dir, "/usr/lib/systemd/system/a.service", "etc/systemd/system/b.service")
	symlinkHost(t, dir, "/usr/lib/systemd/system/a.service", "etc/systemd/system/other.target.wants/a.service")
	symlinkHost(t, dir, "/dev/null", "etc/systemd/system/c.service")
	writeHost(t, dir, "usr/lib/systemd/system/c.service", svcText)
	writeHost(t, dir, "etc/systemd/system/keep.service", svcText)
	root := openRoot(t, dir)
	actions, err := Actions(root,
		Unit{Name: "a.service", Enable: no()},
		Unit{Name: "c.service", Mask: no()},
		Unit{Name: "d.service", Mask: yes()},
	)
	if err != nil {
		t.Fatal(err)
	}
	env, _ := newEnv(t, root)
	apply(t, env, actions)
	want := []string{"/etc/systemd/system/d.service -> /dev/null"}
	if got := linkTree(t, dir); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("links: %v, want %v", got, want)
	}
	for _, d := range []string{"multi-user.target.wants", "other.target.wants"} {
		if _, err := os.Lstat(filepath.Join(dir, "etc/systemd/system", d)); !os.IsNotExist(err) {
			t.Errorf("%s left behind empty: %v", d, err)
		}
	}
	// Masking would replace an administrator's unit file: refused.
	actions, err = Actions(root, Unit{Name: "keep.service", Mask: yes()})
	if err != nil {
		t.Fatal(err)
	}
	if err := actions[0].Apply(context.Background(), env); err == nil || !strings.Contains(err.Error(), "is not a mask") {
		t.Fatalf("mask over a unit file: %v", err)
	}
}

func TestPlanDescriptions(t *testing.T) {
	dir := t.TempDir()
	writeHost(t, dir, "lib/systemd/system/ssh.service", svcText+"[Install]\nWantedBy=multi-user.target\nAlias=sshd.service\n")
	root := openRoot(t, dir)
	units := append(periodic(t),
		Unit{Name: "ssh.service", Enable: yes(), Start: true},
		Unit{Name: "nginx.service", Enable: yes(), Start: true}, // a package installs it later in the run
		Unit{Name: "apt-daily.timer", Mask: yes()},
		Unit{Name: "old.service", Enable: no()},
		Unit{Name: "tmp.mount", Start: true},
	)
	units[0].Dropins = []*File{mustParse(t, "10-nice.conf", "[Service]\nNice=10\n")}
	render := func(live bool) []byte {
		saved := Booted
		defer func() { Booted = saved }()
		Booted = func(string) bool { return live }
		actions, err := Actions(root, units...)
		if err != nil {
			t.Fatal(err)
		}
		p := &plan.Plan{Instance: "i-0123", Datasource: "none", Steps: []*plan.Step{{Name: StepServices, Frequency: plan.PerInstance, Actions: actions}}}
		var b bytes.Buffer
		if err := p.Write(&b); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	golden.Check(t, filepath.Join("testdata", "plan-offline.golden"), render(false))
	golden.Check(t, filepath.Join("testdata", "plan-live.golden"), render(true))
}

// fakeManager records the D-Bus calls the live path makes.
type fakeManager struct {
	calls    []string
	stale    map[string]bool // NeedDaemonReload
	enabled  map[string]bool
	startErr map[string]string // unit → job result
}

func (f *fakeManager) Reload(context.Context) error { f.calls = append(f.calls, "Reload"); return nil }
func (f *fakeManager) Close()                       { f.calls = append(f.calls, "Close") }

func (f *fakeManager) NeedsReload(_ context.Context, name string) (bool, error) {
	f.calls = append(f.calls, "Get NeedDaemonReload "+name)
	return f.stale[name], nil
}

func (f *fakeManager) links(verb string, names []string, on bool) (bool, error) {
	f.calls = append(f.calls, verb+" "+strings.Join(names, " "))
	changed := false
	for _, n := range names {
		if f.enabled[verb[:2]+n] != on {
			f.enabled[verb[:2]+n], changed = on, true
		}
	}
	return changed, nil
}
func (f *fakeManager) Enable(_ context.Context, n []string) (bool, error) {
	return f.links("EnableUnitFiles", n, true)
}
func (f *fakeManager) Disable(_ context.Context, n []string) (bool, error) {
	return f.links("DisableUnitFiles", n, true)
}
func (f *fakeManager) Mask(_ context.Context, n []string) (bool, error) {
	return f.links("MaskUnitFiles", n, true)
}
func (f *fakeManager) Unmask(_ context.Context, n []string) (bool, error) {
	return f.links("UnmaskUnitFiles", n, true)
}
func (f *fakeManager) Start(_ context.Context, name string, restart bool) error {
	verb := "StartUnit"
	if restart {
		verb = "RestartUnit"
	}
	f.calls = append(f.calls, verb+" "+name+" replace")
	if res := f.startErr[name]; res != "" {
		return jobResult("start", name, res)
	}
	return nil
}

func useFake(t *testing.T, f *fakeManager) {
	t.Helper()
	savedB, savedC := Booted, Connect
	t.Cleanup(func() { Booted, Connect = savedB, savedC })
	Booted = func(string) bool { return true }
	Connect = func(context.Context) (Manager, error) { return f, nil }
}

func TestLivePathTranscript(t *testing.T) {
	f := &fakeManager{enabled: map[string]bool{}, startErr: map[string]string{}, stale: map[string]bool{}}
	useFake(t, f)
	dir := t.TempDir()
	writeHost(t, dir, "lib/systemd/system/ssh.service", svcText+"[Install]\nWantedBy=multi-user.target\n")
	root := openRoot(t, dir)
	units := append(periodic(t), Unit{Name: "ssh.service", Enable: yes(), Start: true}, Unit{Name: "old.service", Enable: no()})
	env, _ := newEnv(t, root)
	run := func() []string {
		f.calls = nil
		actions, err := Actions(root, units...)
		if err != nil {
			t.Fatal(err)
		}
		apply(t, env, actions)
		return f.calls
	}
	tests := []struct {
		name string
		want []string
	}{
		{"first run: files written, reload, enable, reload, start the new timer by restart", []string{
			"Reload", "EnableUnitFiles chef-client.timer ssh.service", "DisableUnitFiles old.service", "Reload",
			"RestartUnit chef-client.timer replace", "StartUnit ssh.service replace", "Close"}},
		{"second run: nothing changed, no reload, start is a no-op job", []string{
			"Get NeedDaemonReload chef-client.service", "Get NeedDaemonReload chef-client.timer",
			"EnableUnitFiles chef-client.timer ssh.service", "DisableUnitFiles old.service",
			"StartUnit chef-client.timer replace", "StartUnit ssh.service replace", "Close"}},
		{"after a run killed between writing and reloading: systemd says the timer is stale", []string{
			"Get NeedDaemonReload chef-client.service", "Get NeedDaemonReload chef-client.timer", "Reload",
			"EnableUnitFiles chef-client.timer ssh.service", "DisableUnitFiles old.service",
			"RestartUnit chef-client.timer replace", "StartUnit ssh.service replace", "Close"}},
	}
	for i, tt := range tests {
		f.stale["chef-client.timer"] = i == 2
		if got := run(); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
			t.Errorf("%s:\n%s\nwant:\n%s", tt.name, strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
		}
	}
	// The live path leaves links to systemd: none made by hand.
	if got := linkTree(t, dir); len(got) != 0 {
		t.Errorf("links made by hand on the live path: %v", got)
	}
	f.startErr["ssh.service"] = "failed"
	actions, err := Actions(root, units...)
	if err != nil {
		t.Fatal(err)
	}
	var last error
	for _, a := range actions {
		last = a.Apply(context.Background(), env)
	}
	if last == nil || last.Error() != "systemd start ssh.service: job failed; see journalctl -u ssh.service" {
		t.Errorf("failed job: %v", last)
	}
}

func TestGoValuesAreChecked(t *testing.T) {
	sec := func(name string, opts ...[2]string) []Section { return []Section{{Name: name, Options: opts}} }
	fileErrs := []struct {
		secs []Section
		want string
	}{
		{sec("Service", [2]string{"ExecStart", "/bin/true\nExecStartPost=/bin/evil"}), "[Service] ExecStart: the value must be one line"},
		{sec("Service", [2]string{"ExecStart", `/bin/echo \`}), "[Service] ExecStart: the value must be one line"},
		{sec("Service", [2]string{"Exec Start", "x"}), `[Service]: option name "Exec Start" is not valid`},
		{sec("Serv]ice"), `section name "Serv]ice" is not valid`},
	}
	for _, tt := range fileErrs {
		if _, err := NewFile("", Sections(tt.secs...)); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("NewFile(%v): %v, want %q", tt.secs, err, tt.want)
		}
	}
	root := openRoot(t, t.TempDir())
	unitErrs := []struct {
		units []Unit
		want  string
	}{
		{[]Unit{{Name: "app", Start: true}}, `unit name: "app" has no unit type suffix`},
		{[]Unit{{Name: "a.service", Start: true}, {Name: "a.service", Enable: yes()}}, "unit a.service given twice"},
		{[]Unit{{Name: "a.service", Dropins: []*File{mustParse(t, "../x.conf", svcText)}}}, `a.service: drop-in name "../x.conf": want a file name ending in .conf`},
	}
	for _, tt := range unitErrs {
		if _, err := Actions(root, tt.units...); err == nil || !strings.HasPrefix(err.Error(), tt.want) {
			t.Errorf("Actions: %v, want %q", err, tt.want)
		}
	}
}
