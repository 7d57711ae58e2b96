package systemd

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/plan"
)

func decode(t *testing.T, src string) *config.Config {
	t.Helper()
	cfg, err := config.ParseConfig("c.yaml", []byte(src), map[string]string{"instance_id": "i-1"})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

const servicesYAML = `services:
  - name: app.service
    content: |
      # the operator's own comment stays
      [Unit]
      Description=App
      [Service]
      ExecStart=/usr/local/bin/app --id ${instance_id}
      [Install]
      WantedBy=multi-user.target
    dropins:
      - name: 10-limits.conf
        sections:
          - section: Service
            options: [LimitNOFILE=65536]
    enabled: true
    started: true
  - name: apt-daily.timer
    masked: true
`

func TestServicesCapability(t *testing.T) {
	dir := t.TempDir()
	in := &capability.Input{Config: decode(t, servicesYAML), Root: openRoot(t, dir)}
	var c capability.Capability = Services{}
	steps, err := c.Steps(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 1 || steps[0].Name != StepServices || steps[0].Frequency != plan.PerInstance || len(steps[0].Actions) != 2 {
		t.Fatalf("steps = %+v", steps)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("planning touched the root: %v", ents)
	}
	env, _ := newEnv(t, in.Root)
	apply(t, env, steps[0].Actions)
	unit, err := os.ReadFile(filepath.Join(dir, "etc/systemd/system/app.service"))
	if err != nil || !strings.HasPrefix(string(unit), "# the operator's own comment stays\n") || !strings.Contains(string(unit), "--id i-1\n") {
		t.Fatalf("unit written as %q, %v", unit, err)
	}
	dropin, err := os.ReadFile(filepath.Join(dir, "etc/systemd/system/app.service.d/10-limits.conf"))
	if err != nil || string(dropin) != "[Service]\nLimitNOFILE=65536\n" {
		t.Fatalf("drop-in written as %q, %v", dropin, err)
	}
	want := []string{
		"/etc/systemd/system/apt-daily.timer -> /dev/null",
		"/etc/systemd/system/multi-user.target.wants/app.service -> /etc/systemd/system/app.service",
	}
	if got := linkTree(t, dir); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("links %v, want %v", got, want)
	}
	if d := steps[0].Actions[0].Describe(); d.Kind != "service" || d.Path != "/etc/systemd/system/app.service" || d.SHA256 == "" || !strings.Contains(d.Note, "starts at boot") {
		t.Errorf("description %+v", d)
	}
}

func TestServicesCapabilityBadInput(t *testing.T) {
	dir := t.TempDir()
	symlinkHost(t, dir, "/dev/null", "etc/systemd/system/app.service")
	in := &capability.Input{Config: decode(t, "services:\n  - name: app.service\n    enabled: true\n"), Root: openRoot(t, dir)}
	_, err := Services{}.Steps(context.Background(), in)
	want := "c.yaml:3:14: services[0].enabled: app.service is masked (/etc/systemd/system/app.service -> /dev/null); set masked: false to unmask it"
	if !badinput.Is(err) || err.Error() != want {
		t.Fatalf("err = %v, want bad input %q", err, want)
	}
	in.Config = decode(t, "files: []\n")
	if steps, err := (Services{}).Steps(context.Background(), in); steps != nil || err != nil {
		t.Fatalf("no services: %v %v", steps, err)
	}
}

// A root that cannot be read as expected fails the run (exit 1); it is not
// something the operator's configuration can fix.
func TestServicesCapabilityReadErrorIsNotBadInput(t *testing.T) {
	dir := t.TempDir()
	writeHost(t, dir, "usr/lib/systemd/system/app.service", svcText+"[Install]\nWantedBy=multi-user.target\n")
	if err := os.MkdirAll(filepath.Join(dir, "etc/systemd/system/app.service.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "etc/systemd/system/app.service.d/10-x.conf"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := &capability.Input{Config: decode(t, "services:\n  - name: app.service\n    enabled: true\n"), Root: openRoot(t, dir)}
	_, err := Services{}.Steps(context.Background(), in)
	if err == nil || badinput.Is(err) || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("err = %v (bad input: %v), want a plain read error", err, badinput.Is(err))
	}
}
