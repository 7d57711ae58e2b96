package netsetup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
)

// changes remembers which files this run changed, so a device is reloaded
// only when its file did: a rerun that changes nothing bounces nothing.
type changes struct {
	mu   sync.Mutex
	devs map[string]bool // device id → changed; "" for shared files
}

func (c *changes) mark(dev string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.devs == nil {
		c.devs = map[string]bool{}
	}
	c.devs[dev] = true
}

func (c *changes) changed(dev string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.devs[dev] || c.devs[""]
}

// writeFile is plan.File that records whether it changed the file.
type writeFile struct {
	*plan.File
	dev string
	ch  *changes
}

func newWrite(f File, ch *changes) *writeFile {
	sum := sha256.Sum256(f.Content)
	content := f.Content
	return &writeFile{File: &plan.File{Path: f.Path, Owner: "0", Group: "0", Mode: f.Mode,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(content)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }},
		dev: f.Dev, ch: ch}
}

func (w *writeFile) Apply(ctx context.Context, env *plan.Env) error {
	same, err := env.Root.Current(w.Path, w.SHA256, rootfs.FileSpec{Mode: w.Mode, Owner: w.Owner, Group: w.Group})
	if err != nil {
		return err
	}
	if !same {
		w.ch.mark(w.dev)
	}
	return w.File.Apply(ctx, env)
}

// removeFile removes a file we wrote for an adapter no longer configured.
// It checks the Marker again when it applies: a file someone rewrote since
// the plan is not ours any more and stays.
type removeFile struct {
	path string
	dev  string
	ch   *changes
}

func (r *removeFile) Describe() plan.Description {
	return plan.Description{Kind: "remove", Path: r.path, Note: "written by bootstrap for an adapter no longer configured"}
}

func (r *removeFile) Apply(ctx context.Context, env *plan.Env) error {
	b, err := env.Root.ReadFile(r.path, maxOwnedFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if !hasMarker(b) {
		env.Log.Warn("not removing a file that no longer carries our marker", "path", r.path)
		return nil
	}
	osr, err := os.OpenRoot(env.Root.Dir())
	if err != nil {
		return err
	}
	defer osr.Close()
	if err := osr.Remove(strings.TrimPrefix(r.path, "/")); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", r.path, err)
	}
	r.ch.mark(r.dev)
	env.Log.Info("file removed", "path", r.path)
	return nil
}

// note is an action that only informs the plan (a forwarded port).
type note struct{ what, why string }

func (n *note) Describe() plan.Description {
	return plan.Description{Kind: "network", Path: n.what, Note: n.why}
}
func (n *note) Apply(ctx context.Context, env *plan.Env) error { return nil }

// reloadCmd is one command of a device's reload.
type reloadCmd struct {
	argv    []string
	mayFail bool // taking a device down that is not up fails harmlessly
}

// configure brings one device to its configuration: live through netlink,
// then, when its file changed and the stack runs, the stack's per-device
// reload.
type configure struct {
	f        Iface
	live     Live
	runner   command.Runner
	reload   []reloadCmd
	noReload string // why the stack is not reloaded, for the plan
	ch       *changes
}

func (c *configure) Describe() plan.Description {
	what := "via netlink"
	if c.f.DHCP {
		what = "link up via netlink; the lease is the stack's"
	}
	r := "then, when its file changed: "
	if c.noReload != "" {
		r = "no reload: " + c.noReload
	} else {
		cmds := make([]string, len(c.reload))
		for i, rc := range c.reload {
			cmds[i] = strings.Join(rc.argv, " ")
		}
		r += strings.Join(cmds, "; ")
	}
	return plan.Description{Kind: "configure", Path: c.f.Name,
		Note: fmt.Sprintf("network.adapters[%d] → %s because %s: %s, %s; %s", c.f.Entry, c.f.Name, c.f.Reason, c.f.Summary(), what, r)}
}

func (c *configure) Apply(ctx context.Context, env *plan.Env) error {
	changed, err := c.live.Configure(c.f)
	if err != nil {
		return fmt.Errorf("network.adapters[%d] (%s): %w", c.f.Entry, c.f.Name, err)
	}
	for _, ch := range changed {
		env.Log.Info("network changed", "device", c.f.Name, "change", ch)
	}
	if c.noReload != "" || !c.ch.changed(c.f.ID()) {
		return nil
	}
	for _, rc := range c.reload {
		log := env.Log.With("device", c.f.Name, "command", rc.argv[0])
		res, err := c.runner.Run(ctx, command.Spec{Argv: rc.argv, Timeout: reloadTimeout}, func(line string) { log.Info(line) })
		switch {
		case err != nil:
			return fmt.Errorf("reload %s: %w", c.f.Name, err)
		case res.ExitCode != 0 && !rc.mayFail:
			return fmt.Errorf("reload %s: %s exited with status %d: %s", c.f.Name, strings.Join(rc.argv, " "), res.ExitCode, strings.Join(res.Tail, " | "))
		}
	}
	return nil
}
