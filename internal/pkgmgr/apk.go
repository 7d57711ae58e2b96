package pkgmgr

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// apk is Alpine's manager.
type apk struct{ sys }

var apkTransient = []string{"temporary error", "network error", "could not connect", "DNS lookup error", "timed out", "fetch "}

// NewApk returns the apk manager for o.Root.
func NewApk(o Options) Manager { return &apk{newSys(o, "apk", apkTransient)} }

func (a *apk) Name() string { return "apk" }

func itoa(i int) string { return strconv.Itoa(i) }

const maxAPKDB = 64 << 20

// Installed reads the root's lib/apk/db/installed (P: name, V: version
// records) directly: hosts other than Alpine rarely have apk.
func (a *apk) Installed(_ context.Context, names []string) (map[string]string, error) {
	r, err := os.OpenRoot(a.Root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open("lib/apk/db/installed")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Bounded: a real database is a few MiB.
	data, err := io.ReadAll(io.LimitReader(f, maxAPKDB+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxAPKDB {
		return nil, fmt.Errorf("%s/lib/apk/db/installed is larger than %d MiB", a.Root, maxAPKDB>>20)
	}
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	got := map[string]string{}
	var name string
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			name = ""
		case strings.HasPrefix(line, "P:"):
			name = line[2:]
		case strings.HasPrefix(line, "V:") && want[name]:
			got[name] = line[2:]
		}
	}
	return got, sc.Err()
}

func (a *apk) Available(ctx context.Context, names []string) (map[string][]Offer, error) {
	lines, err := a.query(ctx, a.inRoot(append([]string{"apk", "search", "--exact", "--"}, names...)))
	if err != nil {
		return nil, err
	}
	got := map[string][]Offer{}
	for _, l := range lines {
		// "hello-2.12-r0": the name is one of ours, the rest its version.
		for _, n := range names {
			if v, ok := strings.CutPrefix(l, n+"-"); ok && v != "" && v[0] >= '0' && v[0] <= '9' {
				got[n] = append(got[n], Offer{Version: v, From: "apk repositories"})
			}
		}
	}
	return got, nil
}

func (a *apk) Matches(installed, pin string) bool { return installed == pin }

// FileInfo: a .apk's name and version need apk itself; it is installed.
func (a *apk) FileInfo(context.Context, string) (string, string, bool) { return "", "", false }

func (a *apk) cmd(args ...string) []string {
	return append([]string{"apk", "--no-progress", "--wait", itoa(int(a.LockWait.Seconds()))}, args...)
}

func (a *apk) Update(ctx context.Context) error { return a.change(ctx, a.inRoot(a.cmd("update"))) }

func (a *apk) Upgrade(ctx context.Context) error { return a.change(ctx, a.inRoot(a.cmd("upgrade"))) }

func (a *apk) Install(ctx context.Context, pkgs []Request, files []string) error {
	args := []string{"add"}
	if len(files) > 0 {
		// A package file is trusted by the sha256 the operator gave, not by
		// a repository key.
		args = append(args, "--allow-untrusted")
	}
	args = append(args, "--")
	for _, p := range pkgs {
		args = append(args, p.String())
	}
	args = append(args, files...)
	return a.change(ctx, a.inRoot(a.cmd(args...)))
}
