package pkgmgr

import (
	"context"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// apt is Debian's and Ubuntu's apt-get over dpkg.
type apt struct{ sys }

// aptTransient are apt's words for a mirror or network failure.
var aptTransient = []string{
	"Temporary failure resolving", "Could not resolve", "Failed to fetch", "Unable to fetch some archives",
	"Could not connect", "Connection failed", "Connection timed out", "Unable to connect",
	"Hash Sum mismatch", "503  Service Unavailable", "502  Bad Gateway", "Undetermined Error",
}

// NewApt returns the apt manager for o.Root.
func NewApt(o Options) Manager {
	s := newSys(o, "apt", aptTransient)
	s.lockBusy = []string{"Could not get lock", "Unable to lock directory", "Unable to acquire the dpkg frontend lock"}
	s.interrupted, s.repair = "dpkg was interrupted", []string{"dpkg", "--force-confdef", "--force-confold", "--configure", "-a"}
	return &apt{s}
}

func (a *apt) Name() string { return "apt" }

// dpkgQuery runs dpkg-query on the host against the root's database when the
// host has it (no chroot, so `plan` works without root), else inside the root.
func (a *apt) dpkgQuery(args ...string) []string {
	if a.Root == "/" || !a.HostHas("dpkg-query") {
		return append([]string{"dpkg-query"}, args...)
	}
	return append([]string{"dpkg-query", "--admindir=" + path.Join(a.Root, "var/lib/dpkg")}, args...)
}

func (a *apt) Installed(ctx context.Context, names []string) (map[string]string, error) {
	argv := a.dpkgQuery(append([]string{"-W", "-f=${Package}\\t${Architecture}\\t${Version}\\t${db:Status-Abbrev}\\n", "--"}, names...)...)
	spec := a.inRoot(argv)
	if strings.HasPrefix(argv[1], "--admindir=") {
		spec = commandSpec(argv...)
	}
	// Exit status 1: some names are not known at all, which is an answer.
	lines, err := a.query(ctx, spec, 1)
	if err != nil {
		return nil, err
	}
	asked, got := set(names), map[string]string{}
	for _, l := range lines {
		f, ok := splitFields(l, "\t", 4)
		// "ii": installed; "rc" and the like leave only config files.
		if !ok || len(f[3]) < 2 || f[3][1] != 'i' {
			continue
		}
		// Asked as libc6 or as libc6:i386 (multi-arch).
		for _, n := range []string{f[0], f[0] + ":" + f[1]} {
			if asked[n] {
				got[n] = f[2]
			}
		}
	}
	return got, nil
}

func (a *apt) Available(ctx context.Context, names []string) (map[string][]Offer, error) {
	// Empty cache paths: apt-cache builds its cache in memory instead of
	// writing it under the root, so plan touches nothing there.
	argv := append([]string{"apt-cache", "-o", "Dir::Cache::pkgcache=", "-o", "Dir::Cache::srcpkgcache=", "madison", "--"}, names...)
	lines, err := a.query(ctx, a.inRoot(argv))
	if err != nil {
		return nil, err
	}
	asked, got := set(names), map[string][]Offer{}
	for _, l := range lines {
		// "     hello |     2.10-3 | http://deb.debian.org/debian bookworm/main amd64 Packages"
		f, ok := splitFields(l, "|", 3)
		if !ok || !asked[f[0]] || !strings.HasSuffix(f[2], " Packages") {
			continue // a notice, or a source package
		}
		from := strings.TrimSuffix(f[2], " Packages")
		if i := strings.LastIndexByte(from, ' '); i > 0 {
			from = from[:i] // the architecture
		}
		got[f[0]] = append(got[f[0]], Offer{Version: f[1], From: from})
	}
	return got, nil
}

// Matches: a Debian pin is the exact version.
func (a *apt) Matches(installed, pin string) bool { return installed == pin }

func (a *apt) FileInfo(ctx context.Context, file string) (string, string, bool) {
	if !a.HostHas("dpkg-deb") {
		return "", "", false
	}
	lines, err := a.query(ctx, commandSpec("dpkg-deb", "--show", "--showformat=${Package}\\t${Version}\\n", file))
	if err != nil {
		return "", "", false
	}
	for _, l := range lines {
		if f, ok := splitFields(l, "\t", 2); ok {
			return f[0], f[1], true
		}
	}
	return "", "", false
}

// aptGet is apt-get's argv with the options every call takes: quiet, yes,
// and a bounded wait for the dpkg lock.
func (a *apt) aptGet(args ...string) []string {
	return append([]string{"apt-get", "-q", "-y", "-o", "DPkg::Lock::Timeout=" + strconv.Itoa(int(a.LockWait.Seconds()))}, args...)
}

// aptEnv keeps apt from asking questions and its messages in English, which
// the transient-failure check reads.
var aptEnv = []string{"DEBIAN_FRONTEND=noninteractive", "LC_ALL=C"}

// keepConfig answers dpkg's configuration-file questions: keep the local
// file unless the package's default is unchanged.
var keepConfig = []string{"-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold"}

func (a *apt) Update(ctx context.Context) error {
	return a.change(ctx, a.inRoot(a.aptGet("update"), aptEnv...))
}

func (a *apt) Upgrade(ctx context.Context) error {
	return a.change(ctx, a.inRoot(a.aptGet(append(keepConfig, "upgrade")...), aptEnv...))
}

func (a *apt) Install(ctx context.Context, pkgs []Request, files []string) error {
	args := append(append([]string{}, keepConfig...), "install")
	pinned := false
	for _, p := range pkgs {
		pinned = pinned || p.Version != ""
	}
	if pinned {
		// A pin is the version wanted, older than the installed one or not.
		args = append(args, "--allow-downgrades")
	}
	args = append(args, "--")
	for _, p := range pkgs {
		args = append(args, p.String())
	}
	for _, f := range files {
		if !strings.HasPrefix(f, "/") {
			panic(fmt.Sprintf("pkgmgr: package file %q is not absolute", f))
		}
		args = append(args, f) // a path (it has a /) is a file to apt
	}
	return a.change(ctx, a.inRoot(a.aptGet(args...), aptEnv...))
}
