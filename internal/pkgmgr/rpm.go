package pkgmgr

import (
	"context"
	"strings"
)

// rpmDB is what dnf, yum and zypper share: the rpm database.
type rpmDB struct{ sys }

// rpmQuery runs rpm on the host with --root when the host has rpm, else
// inside the root.
func (r *rpmDB) rpmQuery(args ...string) []string {
	if r.Root == "/" || !r.HostHas("rpm") {
		return append([]string{"rpm"}, args...)
	}
	return append([]string{"rpm", "--root", r.Root}, args...)
}

func (r *rpmDB) Installed(ctx context.Context, names []string) (map[string]string, error) {
	argv := r.rpmQuery(append([]string{"-q", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n", "--"}, names...)...)
	spec := r.inRoot(argv)
	if argv[1] == "--root" {
		spec = commandSpec(argv...)
	}
	// rpm -q exits with the number of names not installed: an answer.
	lines, err := r.query(ctx, spec, exitCodes(1, len(names))...)
	if err != nil {
		return nil, err
	}
	asked, got := set(names), map[string]string{}
	for _, l := range lines {
		if f, ok := splitFields(l, "\t", 2); ok && asked[f[0]] {
			got[f[0]] = strings.TrimPrefix(f[1], "0:") // epoch 0 is never written
		}
	}
	return got, nil
}

func exitCodes(from, to int) []int {
	var c []int
	for i := from; i <= to && i < 256; i++ {
		c = append(c, i)
	}
	return c
}

// Matches: an rpm pin may leave out the epoch and the release, as dnf's
// name-version does.
func (r *rpmDB) Matches(installed, pin string) bool {
	if installed == pin {
		return true
	}
	evr := installed
	if _, vr, ok := strings.Cut(installed, ":"); ok && !strings.Contains(pin, ":") {
		evr = vr
	}
	return evr == pin || strings.HasPrefix(evr, pin+"-")
}

func (r *rpmDB) FileInfo(ctx context.Context, file string) (string, string, bool) {
	if !r.HostHas("rpm") {
		return "", "", false
	}
	lines, err := r.query(ctx, commandSpec("rpm", "-qp", "--qf", "%{NAME}\\t%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n", file))
	if err != nil {
		return "", "", false
	}
	for _, l := range lines {
		if f, ok := splitFields(l, "\t", 2); ok {
			return f[0], strings.TrimPrefix(f[1], "0:"), true
		}
	}
	return "", "", false
}

// dnfTransient are dnf's and yum's words for a mirror or network failure.
var dnfTransient = []string{
	"Curl error", "Cannot download", "Failed to download", "Cannot retrieve", "Could not resolve host",
	"timed out", "Errors during downloading metadata", "No more mirrors to try", "Status code: 5",
}

// dnf is Fedora's and RHEL's dnf; yum is the same commands for older
// releases (and Amazon Linux 2).
type dnf struct {
	rpmDB
	program string
}

// NewDnf returns the dnf manager for o.Root.
func NewDnf(o Options) Manager { return &dnf{rpmDB{newSys(o, "dnf", dnfTransient)}, "dnf"} }

// NewYum returns the yum manager for o.Root.
func NewYum(o Options) Manager { return &dnf{rpmDB{newSys(o, "yum", dnfTransient)}, "yum"} }

func (d *dnf) Name() string { return d.program }

func (d *dnf) cmd(args ...string) []string {
	return append([]string{d.program, "-y"}, args...)
}

func (d *dnf) Available(ctx context.Context, names []string) (map[string][]Offer, error) {
	args := []string{"list", "--available", "--showduplicates"}
	if d.program == "yum" {
		args = []string{"list", "available", "--showduplicates"}
	}
	lines, err := d.query(ctx, d.inRoot(append(append([]string{d.program, "-q"}, args...), names...)), 1)
	if err != nil {
		return nil, err
	}
	asked, got := set(names), map[string][]Offer{}
	for _, l := range lines {
		// "hello.x86_64    2.12.1-5.fc40    fedora"
		f := strings.Fields(l)
		if len(f) != 3 || !strings.Contains(f[0], ".") {
			continue
		}
		name := f[0][:strings.LastIndexByte(f[0], '.')]
		if !asked[name] {
			continue
		}
		got[name] = append(got[name], Offer{Version: strings.TrimPrefix(f[1], "0:"), From: f[2]})
	}
	return got, nil
}

func (d *dnf) Update(ctx context.Context) error {
	return d.change(ctx, d.inRoot(d.cmd("makecache"), "LC_ALL=C"))
}

func (d *dnf) Upgrade(ctx context.Context) error {
	return d.change(ctx, d.inRoot(d.cmd("upgrade"), "LC_ALL=C"))
}

func (d *dnf) Install(ctx context.Context, pkgs []Request, files []string) error {
	args := []string{"install", "--"}
	for _, p := range pkgs {
		if p.Version == "" {
			args = append(args, p.Name)
		} else {
			args = append(args, p.Name+"-"+p.Version)
		}
	}
	args = append(args, files...)
	return d.change(ctx, d.inRoot(d.cmd(args...), "LC_ALL=C"))
}

// zypper is SUSE's manager.
type zypper struct{ rpmDB }

var zypperTransient = []string{"Download (curl) error", "Timeout exceeded", "Could not resolve host", "Repository type can't be determined", "Valid metadata not found"}

// NewZypper returns the zypper manager for o.Root.
func NewZypper(o Options) Manager { return &zypper{rpmDB{newSys(o, "zypper", zypperTransient)}} }

func (z *zypper) Name() string { return "zypper" }

// zypperEnv bounds zypper's wait for another's lock (its own variable).
func (z *zypper) env() []string {
	return []string{"LC_ALL=C", "ZYPP_LOCK_TIMEOUT=" + itoa(int(z.LockWait.Seconds()))}
}

func (z *zypper) Available(ctx context.Context, names []string) (map[string][]Offer, error) {
	argv := append([]string{"zypper", "--non-interactive", "--quiet", "search", "--details", "--match-exact", "--type", "package", "--"}, names...)
	// 104: nothing found, which is an answer.
	lines, err := z.query(ctx, z.inRoot(argv, z.env()...), 104)
	if err != nil {
		return nil, err
	}
	asked, got := set(names), map[string][]Offer{}
	for _, l := range lines {
		// "v  | hello | package | 2.12.1-1.7 | x86_64 | Main Repository"
		f, ok := splitFields(l, "|", 6)
		if !ok || !asked[f[1]] || f[2] != "package" {
			continue
		}
		got[f[1]] = append(got[f[1]], Offer{Version: f[3], From: f[5]})
	}
	return got, nil
}

func (z *zypper) Update(ctx context.Context) error {
	return z.change(ctx, z.inRoot([]string{"zypper", "--non-interactive", "refresh"}, z.env()...))
}

func (z *zypper) Upgrade(ctx context.Context) error {
	return z.change(ctx, z.inRoot([]string{"zypper", "--non-interactive", "update"}, z.env()...))
}

func (z *zypper) Install(ctx context.Context, pkgs []Request, files []string) error {
	args := []string{"zypper", "--non-interactive", "install", "--"}
	for _, p := range pkgs {
		args = append(args, p.String()) // zypper takes name=version
	}
	args = append(args, files...)
	return z.change(ctx, z.inRoot(args, z.env()...))
}
