package netsetup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"time"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
)

// Step names: keys of the journal, never renamed. Both run on every boot,
// as Vagrant configures networks on every up: they converge, and a rerun
// with nothing to change changes nothing.
const (
	StepNetwork  = "network"
	StepHostname = "hostname"
	// StepENIs configures EC2 secondary ENIs from the datasource's facts.
	StepENIs = "network:eni"
)

// Limits.
const (
	maxOwnedFile  = 1 << 20 // a network file we read back or splice
	maxDirEntries = 4096    // entries read from one configuration directory
	reloadTimeout = 60 * time.Second
)

// Live is the running network namespace: its devices, and per-device
// configuration. The real one is netlink; tests use a fake.
type Live interface {
	Links
	// Configure brings f's device to f's addressing, changing only what
	// differs, and says what it changed. It refuses the primary.
	Configure(f Iface) ([]string, error)
	// ConfigureENI brings dev to the secondary ENI's addresses, table and
	// rules, changing only what differs.
	ConfigureENI(dev string, e ENI) ([]string, error)
}

// Network is the network: capability. The zero value uses netlink in the
// run's network namespace and runs reloads with command.Exec.
type Network struct {
	Live   Live
	Runner command.Runner
}

func (Network) Name() string { return "network" }

// Steps implements capability.Capability.
func (n Network) Steps(ctx context.Context, in *capability.Input) ([]*plan.Step, error) {
	cfg := in.Config
	var steps []*plan.Step
	s, err := n.networkStep(in, cfg)
	if err != nil {
		return nil, err
	}
	if s != nil {
		steps = append(steps, s)
	}
	e, err := n.eniStep(in)
	if err != nil {
		return nil, err
	}
	if e != nil {
		steps = append(steps, e)
	}
	h, err := hostnameStep(in, cfg.Network.Hostname, cfg.Network.EtcHosts == nil || *cfg.Network.EtcHosts, n.runner(in))
	if err != nil {
		return nil, err
	}
	if h != nil {
		steps = append(steps, h)
	}
	return steps, nil
}

// eniStep configures the instance's secondary ENIs (every run: ENIs are
// attached while an instance runs). An image build has none of its own.
func (n Network) eniStep(in *capability.Input) (*plan.Step, error) {
	if in.Image {
		return nil, nil
	}
	enis, err := ENIsFromFacts(in.Facts)
	if err != nil || len(enis) == 0 {
		return nil, err
	}
	links, err := n.live().List()
	if err != nil {
		return nil, fmt.Errorf("network: list devices: %w", err)
	}
	actions, err := ENIActions(enis, links, n.live())
	if err != nil || len(actions) == 0 {
		return nil, err
	}
	return &plan.Step{Name: StepENIs, Frequency: plan.Always, Actions: actions}, nil
}

func (n Network) runner(in *capability.Input) command.Runner {
	if n.Runner != nil {
		return n.Runner
	}
	return command.Exec{Redactor: in.Redactor}
}

func (n Network) live() Live {
	if n.Live != nil {
		return n.Live
	}
	return netlinkLive{}
}

func (n Network) networkStep(in *capability.Input, cfg *config.Config) (*plan.Step, error) {
	s := &plan.Step{Name: StepNetwork, Frequency: plan.Always}
	configured := false
	for i, a := range cfg.Network.Adapters {
		switch {
		case a.Kind == config.ForwardedPort:
			s.Actions = append(s.Actions, &note{what: fmt.Sprintf("forwarded_port host %d → guest %d/%s", a.Host, a.Guest, a.Protocol),
				why: "host-side NAT on the primary adapter: nothing to do in the guest"})
		case !a.Configured():
			s.Actions = append(s.Actions, &note{what: fmt.Sprintf("network.adapters[%d]", i), why: "auto_config: false: left alone"})
		default:
			configured = true
			if a.IPIgnored {
				in.Log.Warn("ip ignored: with type dhcp the address comes from DHCP (Vagrant passes the host adapter's address here)",
					"adapter", fmt.Sprintf("network.adapters[%d]", i), "ip", a.IP)
				s.Actions = append(s.Actions, &note{what: fmt.Sprintf("network.adapters[%d].ip %s", i, a.IP), why: "ignored: type dhcp"})
			}
		}
	}

	var ifs []Iface
	var err error
	if configured {
		if in.Image {
			ifs, err = imageIfaces(cfg)
		} else {
			var links []Link
			if links, err = n.live().List(); err != nil {
				return nil, fmt.Errorf("network: list devices: %w", err)
			}
			ifs, err = resolve(cfg, links)
		}
		if err != nil {
			return nil, badinput.Wrap(err)
		}
	}

	var st Stack
	if configured {
		if cfg.Network.Renderer != config.RendererAuto && cfg.Network.Renderer != "" {
			st = forced(in.Root, cfg.Network.Renderer)
		} else if st, err = detect(in.Root); err != nil {
			return nil, badinput.Wrap(cfg.Errorf("network.renderer", "%v", err))
		}
		s.Actions = append(s.Actions, &note{what: "renderer " + st.Renderer + backendText(st), why: st.Reason})
	}
	ch := &changes{}
	files, removals, err := renderAll(in.Root, ifs, st)
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	for _, f := range files {
		s.Actions = append(s.Actions, newWrite(f, ch))
	}
	for _, r := range removals {
		s.Actions = append(s.Actions, &removeFile{path: r, ch: ch})
	}
	if in.Image {
		for _, f := range ifs {
			s.Actions = append(s.Actions, &note{what: fmt.Sprintf("network.adapters[%d]", f.Entry), why: f.Reason + "; nothing configured live in an image build"})
		}
	} else {
		noReload := reloadBlocked(in.Root, st)
		for _, f := range ifs {
			s.Actions = append(s.Actions, newConfigure(f, st, files, n.live(), n.runner(in), noReload, ch))
		}
	}
	if len(s.Actions) == 0 {
		return nil, nil
	}
	return s, nil
}

// newConfigure is the device's action, with the stack's reload for the
// file that configures it.
func newConfigure(f Iface, st Stack, files []File, live Live, runner command.Runner, noReload string, ch *changes) *configure {
	c := &configure{f: f, live: live, runner: runner, noReload: noReload, ch: ch}
	file := ""
	for _, fl := range files {
		if fl.Dev == f.ID() || fl.Dev == "" {
			file = fl.Path
		}
	}
	for _, argv := range renderers[st.Renderer].Reload(f, st, file) {
		// Taking down a device that is not up fails harmlessly.
		c.reload = append(c.reload, reloadCmd{argv: argv, mayFail: argv[0] == "ifdown"})
	}
	return c
}

func backendText(st Stack) string {
	if st.Backend == "" {
		return ""
	}
	return " (" + st.Backend + ")"
}

// reloadBlocked says why the host's stack is not reloaded, or "": files
// under another root are not what the host's stack reads, and a stack
// that is not running has nothing to reload (it reads the files at boot).
func reloadBlocked(root *rootfs.Root, st Stack) string {
	if root.Dir() != "/" {
		return "the target root is not /, so the running stack does not read these files"
	}
	probe := map[string]string{
		"networkd":       "/run/systemd/netif/state",
		"networkmanager": "/run/NetworkManager",
		"ifupdown":       "/run/network/ifstate",
		"ifcfg":          "/etc/sysconfig/network-scripts/ifup-eth",
	}
	want := probe[st.Renderer]
	if st.Renderer == "netplan" {
		want = probe["networkd"]
		if st.Backend == "NetworkManager" {
			want = probe["networkmanager"]
		}
	}
	if _, err := os.Stat(want); err != nil {
		return fmt.Sprintf("%s is not running (%s is missing); it reads the files when it starts", st.Renderer, want)
	}
	return ""
}

// renderAll renders the chosen stack's files and finds the files we wrote
// earlier that nothing renders now: those of removed adapters, or of a
// stack we no longer use. ifs empty means no adapter is configured.
func renderAll(root *rootfs.Root, ifs []Iface, st Stack) ([]File, []string, error) {
	read := func(p string) ([]byte, error) { return root.ReadFile(p, maxOwnedFile) }
	var files []File
	if st.Renderer != "" {
		out, err := renderers[st.Renderer].Render(ifs, st, read)
		if err != nil {
			return nil, nil, err
		}
		files = out
	}
	if st.Renderer != "ifupdown" {
		// Our block in /etc/network/interfaces, left from another stack.
		out, err := ifupdown{}.Render(nil, st, read)
		if err != nil {
			return nil, nil, err
		}
		files = append(files, out...)
	}
	keep := map[string]bool{}
	for _, f := range files {
		keep[f.Path] = true
	}
	var stale []string
	for _, name := range rendererNames {
		r := renderers[name]
		for _, dir := range r.Dirs() {
			entries, err := readDir(root, dir)
			if err != nil {
				return nil, nil, err
			}
			for _, e := range entries {
				p := path.Join(dir, e)
				if keep[p] || !r.Owned(p) {
					continue
				}
				b, err := root.ReadFile(p, maxOwnedFile)
				if err != nil {
					continue // not a regular file, or too large to be ours
				}
				if hasMarker(b) {
					stale = append(stale, p)
				}
			}
		}
	}
	sort.Strings(stale)
	return files, stale, nil
}

// readDir lists a directory under the root; a missing one is empty.
func readDir(root *rootfs.Root, dir string) ([]string, error) {
	osr, err := os.OpenRoot(root.Dir())
	if err != nil {
		return nil, err
	}
	defer osr.Close()
	d, err := osr.Open(dir[1:])
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	defer d.Close()
	names, err := d.Readdirnames(maxDirEntries)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(names)
	return names, nil
}
