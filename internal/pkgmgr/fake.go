package pkgmgr

import (
	"context"
	"strings"
	"sync"
)

// Fake is a Manager in memory for other packages' tests (a capability that
// needs a package installed): it records each call and installs by
// updating its own table.
type Fake struct {
	mu sync.Mutex
	// ManagerName is what Name returns ("" → "fake").
	ManagerName string
	// Packages maps installed names to versions.
	Packages map[string]string
	// Offers is what the repositories offer.
	Offers map[string][]Offer
	// FileInfos maps a package file's base name to its package.
	FileInfos map[string]Request
	// Fail, when set, is returned by Update, Upgrade and Install.
	Fail error
	// Calls are the calls made, one a string: "installed hello",
	// "available hello", "update", "upgrade", "install hello=1 /x.deb".
	Calls []string
}

var _ Manager = (*Fake)(nil)

func (f *Fake) record(call string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.Calls = append(f.Calls, call)
}

// Name implements Manager.
func (f *Fake) Name() string {
	if f.ManagerName == "" {
		return "fake"
	}
	return f.ManagerName
}

// Installed implements Manager.
func (f *Fake) Installed(_ context.Context, names []string) (map[string]string, error) {
	f.record("installed " + strings.Join(names, " "))
	f.mu.Lock()
	defer f.mu.Unlock()
	got := map[string]string{}
	for _, n := range names {
		if v, ok := f.Packages[n]; ok {
			got[n] = v
		}
	}
	return got, nil
}

// Available implements Manager.
func (f *Fake) Available(_ context.Context, names []string) (map[string][]Offer, error) {
	f.record("available " + strings.Join(names, " "))
	got := map[string][]Offer{}
	for _, n := range names {
		if o, ok := f.Offers[n]; ok {
			got[n] = o
		}
	}
	return got, nil
}

// Matches implements Manager: exact versions.
func (f *Fake) Matches(installed, pin string) bool { return installed == pin }

// FileInfo implements Manager.
func (f *Fake) FileInfo(_ context.Context, path string) (string, string, bool) {
	for base, r := range f.FileInfos {
		if strings.HasSuffix(path, base) {
			return r.Name, r.Version, true
		}
	}
	return "", "", false
}

// Update implements Manager.
func (f *Fake) Update(context.Context) error { f.record("update"); return f.Fail }

// Upgrade implements Manager.
func (f *Fake) Upgrade(context.Context) error { f.record("upgrade"); return f.Fail }

// Install implements Manager: each request becomes installed at its pin or
// the first offer, each known file at its version.
func (f *Fake) Install(_ context.Context, pkgs []Request, files []string) error {
	args := make([]string, 0, len(pkgs)+len(files))
	for _, p := range pkgs {
		args = append(args, p.String())
	}
	f.record("install " + strings.Join(append(args, files...), " "))
	if f.Fail != nil {
		return f.Fail
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.Packages == nil {
		f.Packages = map[string]string{}
	}
	for _, p := range pkgs {
		v := p.Version
		if o := f.Offers[p.Name]; v == "" && len(o) > 0 {
			v = o[0].Version
		}
		f.Packages[p.Name] = v
	}
	for _, path := range files {
		for base, r := range f.FileInfos {
			if strings.HasSuffix(path, base) {
				f.Packages[r.Name] = r.Version
			}
		}
	}
	return nil
}
