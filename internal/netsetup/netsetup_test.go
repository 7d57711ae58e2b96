package netsetup

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/golden"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

// fakeLive is a namespace with guestLinks; it records what it configures.
type fakeLive struct{ configured []string }

func (f *fakeLive) List() ([]Link, error) { return guestLinks, nil }
func (f *fakeLive) ConfigureENI(dev string, e ENI) ([]string, error) {
	f.configured = append(f.configured, dev+" ENI "+e.MAC)
	return nil, nil
}

func (f *fakeLive) Configure(i Iface) ([]string, error) {
	f.configured = append(f.configured, i.Name+" "+i.Summary())
	return nil, nil
}

type noRun struct{ t *testing.T }

func (n noRun) Run(ctx context.Context, s command.Spec, out func(string)) (command.Result, error) {
	n.t.Errorf("ran %v: a root that is not / must not reload the host's stack", s.Argv)
	return command.Result{}, nil
}

// debianRoot is a target root with ifupdown, as Debian 12 installs it.
func debianRoot(t *testing.T) string {
	dir := t.TempDir()
	writeAll(t, dir, []File{
		{Path: interfacesPath, Mode: 0o644, Content: []byte(debianInterfaces)},
		{Path: "/usr/sbin/ifup", Mode: 0o755, Content: []byte("#!/bin/sh\n")},
		{Path: "/etc/hosts", Mode: 0o644, Content: []byte("127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n\n::1     localhost ip6-localhost ip6-loopback\n")},
	})
	return dir
}

func runInput(t *testing.T, dir, src string, image bool) (*capability.Input, *plan.Env) {
	t.Helper()
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
	in := &capability.Input{Config: decode(t, src), Redactor: red, Log: log, Root: root, Scratch: t.TempDir(), Image: image}
	return in, &plan.Env{Root: root, Log: log, Redactor: red, Scratch: in.Scratch}
}

func planText(t *testing.T, steps []*plan.Step) string {
	var b bytes.Buffer
	if err := (&plan.Plan{Instance: "i-1", Datasource: "none", Steps: steps}).Write(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func applyAll(t *testing.T, env *plan.Env, steps []*plan.Step) {
	t.Helper()
	for _, s := range steps {
		for _, a := range s.Actions {
			if err := a.Apply(context.Background(), env); err != nil {
				t.Fatalf("%s: %v", s.Name, err)
			}
		}
	}
}

const twoAdapters = `network:
  hostname: web1.example.com
  adapters:
    - {kind: forwarded_port, guest: 80, host: 8080}
    - {kind: private_network, ip: 192.168.56.10}
    - {kind: public_network, ip: 10.20.0.5, netmask: 255.255.0.0, gateway: 10.20.0.1, mac: 525400000002}
    - {kind: private_network, type: dhcp, ip: 192.168.57.1, auto_config: false}
`

// TestPlanAndRerun plans and applies two adapters under a Debian root,
// then reruns: the plan says which device and why, the files are written
// once, and the rerun writes nothing.
func TestPlanAndRerun(t *testing.T) {
	dir := debianRoot(t)
	live := &fakeLive{}
	n := Network{Live: live, Runner: noRun{t}}
	in, env := runInput(t, dir, twoAdapters, false)
	steps, err := n.Steps(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/plan-two-adapters.golden", []byte(planText(t, steps)))
	applyAll(t, env, steps)
	if got := strings.Join(live.configured, "\n"); got != "eth1 192.168.56.10/24\neth2 10.20.0.5/16, default route via 10.20.0.1 metric 2003" {
		t.Errorf("configured:\n%s", got)
	}
	before := snapshot(t, dir)
	golden.Check(t, "testdata/hosts-debian.golden", []byte(before["/etc/hosts"]+"--- /etc/hostname\n"+before["/etc/hostname"]))

	in, env = runInput(t, dir, twoAdapters, false)
	steps, err = n.Steps(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	applyAll(t, env, steps)
	if after := snapshot(t, dir); !equalMaps(before, after) {
		t.Errorf("rerun changed files")
	}
}

// TestImageBuild renders MAC matches only; an index-given adapter is bad
// input saying to give the MAC, and nothing is configured live.
func TestImageBuild(t *testing.T) {
	dir := debianRoot(t)
	writeAll(t, dir, []File{{Path: "/etc/systemd/system/multi-user.target.wants/systemd-networkd.service", Mode: 0o644}})
	live := &fakeLive{}
	n := Network{Live: live, Runner: noRun{t}}
	in, _ := runInput(t, dir, "network:\n  adapters:\n    - {kind: private_network, ip: 10.0.0.2, mac: '52:54:00:00:00:07'}\n", true)
	steps, err := n.Steps(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/plan-image.golden", []byte(planText(t, steps)))

	in, _ = runInput(t, dir, "network:\n  adapters:\n    - {kind: private_network, ip: 10.0.0.2}\n", true)
	_, err = n.Steps(context.Background(), in)
	if !badinput.Is(err) || !strings.Contains(err.Error(), "network.adapters[0].adapter: an image build has no guest devices to count: give this adapter's mac") {
		t.Fatalf("err = %v, want bad input asking for the MAC", err)
	}
	if len(live.configured) != 0 {
		t.Errorf("an image build configured %v live", live.configured)
	}
}

// TestBadInputWritesNothing: a device that does not exist is bad input at
// plan time, before any action exists.
func TestBadInputWritesNothing(t *testing.T) {
	dir := debianRoot(t)
	before := snapshot(t, dir)
	in, _ := runInput(t, dir, "network:\n  adapters:\n    - {kind: private_network, ip: 10.0.0.2, adapter: 5}\n", false)
	_, err := Network{Live: &fakeLive{}, Runner: noRun{t}}.Steps(context.Background(), in)
	if !badinput.Is(err) || !strings.Contains(err.Error(), "c.yaml:3:54: network.adapters[0].adapter: adapter 5: there is no such device") {
		t.Fatalf("err = %v", err)
	}
	if !equalMaps(before, snapshot(t, dir)) {
		t.Error("files changed")
	}
}

func TestNoStackIsBadInput(t *testing.T) {
	in, _ := runInput(t, t.TempDir(), "network:\n  adapters:\n    - {kind: private_network, ip: 10.0.0.2}\n", false)
	_, err := Network{Live: &fakeLive{}, Runner: noRun{t}}.Steps(context.Background(), in)
	if !badinput.Is(err) || !strings.Contains(err.Error(), "network.renderer: no network stack found") {
		t.Fatalf("err = %v", err)
	}
}

func TestHostsWithName(t *testing.T) {
	tests := []struct{ name, hosts, fqdn, short, want string }{
		{"empty", "", "web1", "web1", "127.0.0.1\tlocalhost\n127.0.1.1\tweb1\n"},
		{"debian's stale line replaced", "127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n::1 localhost\n", "web1.example.com", "web1",
			"127.0.0.1\tlocalhost\n127.0.1.1\tweb1.example.com web1\n::1 localhost\n"},
		{"vagrant's duplicates dropped", "127.0.1.1 old\n127.0.0.1 localhost\n10.0.0.5 db\n127.0.1.1 web1.example.com web1", "web1.example.com", "web1",
			"127.0.0.1 localhost\n127.0.1.1\tweb1.example.com web1\n10.0.0.5 db\n"},
		{"no loopback line: first", "10.0.0.5 db\n", "web1", "web1", "127.0.1.1\tweb1\n10.0.0.5 db\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := HostsWithName(tt.hosts, tt.fqdn, tt.short)
			if got != tt.want {
				t.Errorf("got %q\nwant %q", got, tt.want)
			}
			if again := HostsWithName(got, tt.fqdn, tt.short); again != got {
				t.Errorf("not idempotent: %q", again)
			}
		})
	}
}

func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(p)
			out[strings.TrimPrefix(p, dir)] = fi.Mode().String() + fi.ModTime().String() + "\n" + string(b)
		}
		return nil
	})
	// The content only, for the hosts golden.
	for k, v := range out {
		_, body, _ := strings.Cut(v, "\n")
		if k == "/etc/hosts" || k == "/etc/hostname" {
			out[k] = body
		}
	}
	return out
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestBrokenBlockIsBadInput: our block opened but never closed in the
// operator's interfaces file is for a person to fix, not guessed at.
func TestBrokenBlockIsBadInput(t *testing.T) {
	dir := debianRoot(t)
	writeAll(t, dir, []File{{Path: interfacesPath, Mode: 0o644, Content: []byte(debianInterfaces + blockBegin + "\nauto eth1\n")}})
	in, _ := runInput(t, dir, "network:\n  adapters:\n    - {kind: private_network, ip: 10.0.0.2}\n", false)
	_, err := Network{Live: &fakeLive{}, Runner: noRun{t}}.Steps(context.Background(), in)
	if !badinput.Is(err) || !strings.Contains(err.Error(), "/etc/network/interfaces: line 9 opens our block") {
		t.Fatalf("err = %v", err)
	}
}

// TestEtcHosts: etc_hosts: false (cloud-config's manage_etc_hosts: false)
// writes /etc/hostname and leaves /etc/hosts byte for byte.
func TestEtcHosts(t *testing.T) {
	for _, tt := range []struct {
		etcHosts  string
		wantHosts string
	}{
		{"", "127.0.0.1\tlocalhost\n127.0.1.1\tweb1.example.com web1\n\n::1     localhost ip6-localhost ip6-loopback\n"},
		{"\n  etc_hosts: true", "127.0.0.1\tlocalhost\n127.0.1.1\tweb1.example.com web1\n\n::1     localhost ip6-localhost ip6-loopback\n"},
		{"\n  etc_hosts: false", "127.0.0.1\tlocalhost\n127.0.1.1\tdebian\n\n::1     localhost ip6-localhost ip6-loopback\n"},
	} {
		t.Run(strings.TrimSpace(tt.etcHosts), func(t *testing.T) {
			dir := debianRoot(t)
			in, env := runInput(t, dir, "network:\n  hostname: web1.example.com"+tt.etcHosts+"\n", false)
			steps, err := Network{Live: &fakeLive{}, Runner: noRun{t}}.Steps(context.Background(), in)
			if err != nil {
				t.Fatal(err)
			}
			applyAll(t, env, steps)
			files := snapshot(t, dir)
			if files["/etc/hosts"] != tt.wantHosts || files["/etc/hostname"] != "web1\n" {
				t.Errorf("hosts:\n%s\nhostname: %q", files["/etc/hosts"], files["/etc/hostname"])
			}
		})
	}
}
