package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/golden"
)

// TestPlanMergesFilesByPath is the merge rule end to end: a base layer with
// three files, a role layer that changes one and removes one.
func TestPlanMergesFilesByPath(t *testing.T) {
	dir := t.TempDir()
	base := filepath.Join(dir, "base.yaml")
	os.WriteFile(base, []byte(`files:
  - path: /etc/motd
    content: "base\n"
  - path: /etc/app.conf
    content: "base\n"
  - path: /etc/debug.conf
    content: "on\n"
`), 0o644)
	role := filepath.Join(dir, "role.yaml")
	os.WriteFile(role, []byte(`include:
  - file://`+base+`
files:
  - path: /etc/app.conf
    content: "role\n"
    mode: "0640"
  - path: /etc/debug.conf
    remove: true
`), 0o644)
	root := t.TempDir()
	code, out, errs := runCLI(t, "", "plan", "--datasource", "none", "--config", role, "--root", root, "--state-dir", t.TempDir())
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	out = strings.ReplaceAll(out, dir, "DIR")
	if i := strings.Index(out, "plan for instance "); i >= 0 {
		// The none datasource's instance id is this machine's machine-id.
		line := out[i:]
		line = line[:strings.IndexByte(line, '\n')]
		out = strings.Replace(out, line, "plan for instance ID (datasource none)", 1)
	}
	golden.Check(t, filepath.Join("testdata", "plan-merge-by-key.golden"), []byte(out))
}

// TestSystemActionsBadInput: each mistake is exit 2, placed at its source,
// line, column and key, and nothing is applied under the root.
func TestSystemActionsBadInput(t *testing.T) {
	cases := []struct{ name, doc, want string }{
		{"unknown package manager", "packages:\n  manager: pacman\n  install: [hello]\n",
			`config.yaml:2:12: packages.manager: unknown package manager "pacman"`},
		{"empty package name", "packages:\n  install:\n    - hello\n    - name: \"\"\n",
			"config.yaml:4:13: packages.install[1].name: "},
		{"command with argv and shell", "commands:\n  - name: a\n    argv: [true]\n  - name: b\n    argv: [ls]\n    shell: ls\n",
			"config.yaml:4:5: commands[1]: set argv or shell, not both"},
		{"unit name without a suffix", "services:\n  - name: nginx\n    content: |\n      [Service]\n      ExecStart=/bin/true\n",
			"config.yaml:2:11: services[0].name: "},
		{"cloud-config runcmd entry", "#cloud-config\nruncmd:\n  - ls\n  - {x: y}\n",
			"config.yaml:4:5: runcmd[1]: want a string"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := filepath.Join(dir, "config.yaml")
			os.WriteFile(cfg, []byte(c.doc+"files:\n  - path: /etc/should-not-exist\n    content: x\n"), 0o644)
			if strings.HasPrefix(c.doc, "#cloud-config") {
				os.WriteFile(cfg, []byte(c.doc+"write_files:\n  - path: /etc/should-not-exist\n    content: x\n"), 0o644)
			}
			root := t.TempDir()
			for _, cmd := range []string{"validate", "plan", "run"} {
				code, _, errs := runCLI(t, "", cmd, "--datasource", "none", "--config", cfg, "--root", root, "--state-dir", filepath.Join(dir, "state"))
				if code != 2 || !strings.Contains(errs, c.want) {
					t.Errorf("%s: exit %d, stderr:\n%s\nwant exit 2 with %q", cmd, code, errs, c.want)
				}
			}
			if entries, _ := os.ReadDir(root); len(entries) != 0 {
				t.Errorf("something was written under the root: %v", entries)
			}
		})
	}
}

// TestUnknownOwnerFailsBeforeAnythingIsWritten: owners are resolved against
// the target root when the plan is made, so run writes no file at all.
func TestUnknownOwnerFailsBeforeAnythingIsWritten(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte("files:\n  - path: /etc/first\n    content: a\n  - path: /etc/second\n    content: b\n    owner: nosuchuser\n"), 0o644)
	root := t.TempDir()
	for _, cmd := range []string{"plan", "run"} {
		code, _, errs := runCLI(t, "", cmd, "--datasource", "none", "--config", cfg, "--root", root, "--state-dir", filepath.Join(dir, "state"))
		if code != 2 || !strings.Contains(errs, `config.yaml:6:12: files[1].owner: user "nosuchuser": unknown user`) {
			t.Errorf("%s: exit %d:\n%s", cmd, code, errs)
		}
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("run wrote under the root: %v", entries)
	}
}

// TestSystemActionsThroughTheEngine runs commands, a unit and a timer
// through the whole pipeline under a temp root: the order of the list, the
// links, and a rerun that does nothing.
func TestSystemActionsThroughTheEngine(t *testing.T) {
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	os.Mkdir(root, 0o755)
	log := filepath.Join(dir, "order.log")
	cfg := filepath.Join(dir, "config.yaml")
	os.WriteFile(cfg, []byte(`commands:
  - name: last
    shell: echo final >> `+log+`
  - name: first
    stage: early
    argv: [/bin/sh, -c, "echo early >> `+log+`"]
files:
  - path: /etc/app.conf
    content: "x=1\n"
services:
  - name: app.service
    content: |
      [Service]
      ExecStart=/bin/true
      [Install]
      WantedBy=multi-user.target
    enabled: true
  - name: app-sync.timer
    content: |
      [Timer]
      OnCalendar=hourly
      [Install]
      WantedBy=timers.target
    enabled: true
`), 0o644)
	state := filepath.Join(dir, "state")
	args := []string{"--datasource", "none", "--config", cfg, "--root", root, "--state-dir", state}
	code, out, errs := runCLI(t, "", append([]string{"plan"}, args...)...)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s", code, errs)
	}
	var order []string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "step ") {
			order = append(order, strings.Fields(line)[1])
		}
	}
	if got := strings.Join(order, " "); got != "command:first files services command:last" {
		t.Errorf("step order: %s\n%s", got, out)
	}
	if code, _, errs := runCLI(t, "", append([]string{"run"}, args...)...); code != 0 {
		t.Fatalf("run: exit %d\n%s", code, errs)
	}
	for link, target := range map[string]string{
		"etc/systemd/system/multi-user.target.wants/app.service": "/etc/systemd/system/app.service",
		"etc/systemd/system/timers.target.wants/app-sync.timer":  "/etc/systemd/system/app-sync.timer",
	} {
		if got, err := os.Readlink(filepath.Join(root, link)); err != nil || got != target {
			t.Errorf("%s -> %q (%v), want %s", link, got, err, target)
		}
	}
	if got, _ := os.ReadFile(log); string(got) != "early\nfinal\n" {
		t.Errorf("commands ran as %q", got)
	}
	// A reboot: the early command runs again (always), the rest is done.
	if code, _, errs := runCLI(t, "", append([]string{"run"}, args...)...); code != 0 {
		t.Fatalf("rerun: exit %d\n%s", code, errs)
	}
	if got, _ := os.ReadFile(log); string(got) != "early\nfinal\nearly\n" {
		t.Errorf("after a rerun commands ran as %q", got)
	}
}
