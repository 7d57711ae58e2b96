package netsetup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/plan"
)

// Hostname files, as Debian lays them out: the short name in
// /etc/hostname, and "127.0.1.1 FQDN SHORT" in /etc/hosts so the name
// resolves without DNS (Debian's installer writes that line; Vagrant's
// 127.0.X.1 scheme leaves stale ones, which is why we replace it).
const (
	hostnamePath = "/etc/hostname"
	hostsPath    = "/etc/hosts"
	hostnameAddr = "127.0.1.1"
)

func hostnameStep(in *capability.Input, name string, etcHosts bool, runner command.Runner) (*plan.Step, error) {
	if name == "" {
		return nil, nil
	}
	fqdn := strings.TrimSuffix(name, ".")
	short, _, _ := strings.Cut(fqdn, ".")
	cur, err := in.Root.ReadFile(hostsPath, maxOwnedFile)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("hostname: %w", err)
	}
	ch := &changes{}
	s := &plan.Step{Name: StepHostname, Frequency: plan.Always}
	s.Actions = append(s.Actions, newWrite(File{Path: hostnamePath, Mode: 0o644, Content: []byte(short + "\n")}, ch))
	if etcHosts {
		s.Actions = append(s.Actions, newWrite(File{Path: hostsPath, Mode: 0o644, Content: []byte(HostsWithName(string(cur), fqdn, short))}, ch))
	}
	// Only the booted system's own name is set live, and only through
	// systemd: an image or a test root has no running hostname to change.
	if in.Root.Dir() == "/" && !in.Image {
		if _, err := os.Stat("/run/systemd/system"); err == nil {
			s.Actions = append(s.Actions, &setHostname{name: short, runner: runner})
		}
	}
	return s, nil
}

// HostsWithName returns hosts with one "127.0.1.1 FQDN SHORT" line: every
// other 127.0.1.1 line (a stale name) is dropped, the line goes after the
// last 127.0.0.1 line (or first), and the rest is kept as it was.
func HostsWithName(hosts, fqdn, short string) string {
	names := fqdn
	if short != fqdn {
		names += " " + short
	}
	line := hostnameAddr + "\t" + names + "\n"
	if hosts == "" {
		return "127.0.0.1\tlocalhost\n" + line
	}
	if !strings.HasSuffix(hosts, "\n") {
		hosts += "\n"
	}
	var out []string
	at := 0
	for _, l := range strings.SplitAfter(hosts, "\n") {
		if l == "" {
			continue
		}
		fields := strings.Fields(l)
		if len(fields) > 0 && fields[0] == hostnameAddr {
			continue
		}
		out = append(out, l)
		if len(fields) > 0 && fields[0] == "127.0.0.1" {
			at = len(out)
		}
	}
	out = append(out[:at], append([]string{line}, out[at:]...)...)
	return strings.Join(out, "")
}

// setHostname sets the running system's name with hostnamectl, when it
// differs.
type setHostname struct {
	name   string
	runner command.Runner
}

func (h *setHostname) Describe() plan.Description {
	return plan.Description{Kind: "command", Command: []string{"hostnamectl", "set-hostname", h.name}, Note: "when the running name differs"}
}

func (h *setHostname) Apply(ctx context.Context, env *plan.Env) error {
	if cur, err := os.Hostname(); err == nil && cur == h.name {
		return nil
	}
	res, err := h.runner.Run(ctx, command.Spec{Argv: []string{"hostnamectl", "set-hostname", h.name}, Timeout: reloadTimeout},
		func(line string) { env.Log.Info(line, "command", "hostnamectl") })
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("hostnamectl set-hostname %s exited with status %d: %s", h.name, res.ExitCode, strings.Join(res.Tail, " | "))
	}
	return nil
}
