package systemd

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	sdbus "github.com/coreos/go-systemd/v22/dbus"
	"github.com/coreos/go-systemd/v22/util"
)

// Manager is the part of systemd's D-Bus API the live path uses. The real
// one is a D-Bus connection; tests use a fake that records the calls.
type Manager interface {
	// Reload is systemctl daemon-reload: systemd rereads unit files.
	Reload(ctx context.Context) error
	// NeedsReload reports systemd's NeedDaemonReload for a unit: its files
	// changed on disk since systemd loaded it (a run killed after writing
	// them, before reloading).
	NeedsReload(ctx context.Context, name string) (bool, error)
	// Enable, Disable, Mask and Unmask report whether they changed a link.
	Enable(ctx context.Context, names []string) (bool, error)
	Disable(ctx context.Context, names []string) (bool, error)
	Mask(ctx context.Context, names []string) (bool, error)
	Unmask(ctx context.Context, names []string) (bool, error)
	// Start starts the unit (restarts it when restart is set) and waits
	// for the job's result.
	Start(ctx context.Context, name string, restart bool) error
	Close()
}

// StartTimeout bounds one start job: a oneshot unit's job lasts until its
// program exits.
const StartTimeout = 5 * time.Minute

// callTimeout bounds every other D-Bus call.
const callTimeout = 30 * time.Second

// Booted reports whether systemd runs the machine whose root is dir: dir
// is / and systemd is PID 1 (sd_booted: /run/systemd/system exists). A
// variable so tests can pretend.
var Booted = func(dir string) bool {
	return filepath.Clean(dir) == "/" && util.IsRunningSystemd()
}

// Connect opens the system manager's D-Bus API. A variable so tests can
// pass a fake.
var Connect = func(ctx context.Context) (Manager, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c, err := sdbus.NewSystemConnectionContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("connect to systemd over D-Bus: %w", err)
	}
	return &dbusManager{c: c}, nil
}

type dbusManager struct{ c *sdbus.Conn }

func (m *dbusManager) Close() { m.c.Close() }

func (m *dbusManager) Reload(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := m.c.ReloadContext(ctx); err != nil {
		return fmt.Errorf("systemd daemon-reload: %w", err)
	}
	return nil
}

func (m *dbusManager) NeedsReload(ctx context.Context, name string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	p, err := m.c.GetUnitPropertyContext(ctx, name, "NeedDaemonReload")
	if err != nil {
		return false, fmt.Errorf("systemd: read NeedDaemonReload of %s: %w", name, err)
	}
	need, _ := p.Value.Value().(bool)
	return need, nil
}

func (m *dbusManager) Enable(ctx context.Context, names []string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	_, changes, err := m.c.EnableUnitFilesContext(ctx, names, false, false)
	if err != nil {
		return false, fmt.Errorf("systemd enable %v: %w", names, err)
	}
	return len(changes) > 0, nil
}

func (m *dbusManager) Disable(ctx context.Context, names []string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	changes, err := m.c.DisableUnitFilesContext(ctx, names, false)
	if err != nil {
		return false, fmt.Errorf("systemd disable %v: %w", names, err)
	}
	return len(changes) > 0, nil
}

func (m *dbusManager) Mask(ctx context.Context, names []string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	changes, err := m.c.MaskUnitFilesContext(ctx, names, false, false)
	if err != nil {
		return false, fmt.Errorf("systemd mask %v: %w", names, err)
	}
	return len(changes) > 0, nil
}

func (m *dbusManager) Unmask(ctx context.Context, names []string) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	changes, err := m.c.UnmaskUnitFilesContext(ctx, names, false)
	if err != nil {
		return false, fmt.Errorf("systemd unmask %v: %w", names, err)
	}
	return len(changes) > 0, nil
}

func (m *dbusManager) Start(ctx context.Context, name string, restart bool) error {
	ctx, cancel := context.WithTimeout(ctx, StartTimeout)
	defer cancel()
	verb, call := "start", m.c.StartUnitContext
	if restart {
		verb, call = "restart", m.c.RestartUnitContext
	}
	done := make(chan string, 1)
	if _, err := call(ctx, name, "replace", done); err != nil {
		return fmt.Errorf("systemd %s %s: %w", verb, name, err)
	}
	select {
	case res := <-done:
		return jobResult(verb, name, res)
	case <-ctx.Done():
		return fmt.Errorf("systemd %s %s: no job result after %s; see systemctl status %s", verb, name, StartTimeout, name)
	}
}

// jobResult turns a job's result into an error that says where to look.
func jobResult(verb, name, res string) error {
	switch res {
	case "done":
		return nil
	case "dependency":
		return fmt.Errorf("systemd %s %s: a unit it requires failed to start; see systemctl list-dependencies %s", verb, name, name)
	default: // canceled, timeout, failed, skipped
		return fmt.Errorf("systemd %s %s: job %s; see journalctl -u %s", verb, name, res, name)
	}
}
