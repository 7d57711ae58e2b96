package systemd

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/rootfs"
)

// Link is one symlink that enabling makes: Path inside the root, Target as
// the booted machine reads it (an absolute path, as systemctl writes it).
type Link struct {
	Path   string `json:"path"`
	Target string `json:"target"`
}

// Limits on what is read from the root: units are small, and Also= chains
// are short.
const (
	maxUnitRead      = config.MaxUnitBytes
	maxDropinsPerDir = config.MaxDropins
	maxAlso          = 64
)

// errNotFound says a unit is on no directory of the search path.
var errNotFound = errors.New("not found")

// installError is a problem with the units themselves (masked, an alias, a
// bad [Install]), the operator's to fix, unlike a failure to read the root.
type installError struct{ err error }

func (e *installError) Error() string { return e.err.Error() }
func (e *installError) Unwrap() error { return e.err }

func installErr(format string, args ...any) error {
	return &installError{fmt.Errorf(format, args...)}
}

// resolver looks units up on the root's unit path the way systemctl
// --root does, with the units this run is about to write laid over
// /etc/systemd/system, so `plan` can show the links before anything is
// written.
type resolver struct {
	root    *rootfs.Root
	pending map[string]*Unit
}

// find returns where the unit file for name is: name itself, or for an
// instance (app@x.service) its template (app@.service).
func (r *resolver) find(name string) (string, error) {
	names := []string{name}
	if t := templateOf(name); t != "" && t != name {
		names = append(names, t)
	}
	for _, n := range names {
		if u := r.pending[n]; u != nil {
			if u.Mask != nil && *u.Mask {
				return "", installErr("%s is masked", n)
			}
			if u.Body != nil {
				return path.Join(ConfigDir, n), nil
			}
		}
		for _, dir := range SearchPath {
			p := path.Join(dir, n)
			fi, err := r.root.Lstat(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return "", err
			}
			if fi.Mode()&fs.ModeSymlink != 0 {
				t, err := r.root.Readlink(p)
				if err != nil {
					return "", err
				}
				if t == "/dev/null" {
					return "", installErr("%s is masked (%s -> /dev/null); set masked: false to unmask it", n, p)
				}
				// systemctl refuses these too: enable the unit the link names.
				return "", installErr("%s is a link to %s (an alias); enable %s instead", p, t, path.Base(t))
			}
			if fi.Mode().IsRegular() {
				return p, nil
			}
		}
	}
	return "", installErr("unit %s: %w on the unit path %s", name, errNotFound, strings.Join(SearchPath, ", "))
}

// sections returns the unit's sections followed by its drop-ins', as
// systemd reads [Install] from both.
func (r *resolver) sections(name, file string) ([]*unit.UnitSection, error) {
	var secs []*unit.UnitSection
	pendingUnit := r.pending[path.Base(file)]
	if pendingUnit != nil && pendingUnit.Body != nil && path.Dir(file) == ConfigDir {
		secs = append(secs, pendingUnit.Body.sections...)
	} else {
		s, err := r.parse(file)
		if err != nil {
			return nil, err
		}
		secs = append(secs, s...)
	}
	// Drop-ins: <dir>/<name>.d/*.conf (and the template's for an
	// instance), a name in an earlier directory hiding the same name in a
	// later one, applied in name order.
	dropins := map[string]string{}
	var pendingData = map[string]*File{}
	names := []string{name}
	if t := templateOf(name); t != "" && t != name {
		names = append(names, t)
	}
	for _, n := range names {
		if u := r.pending[n]; u != nil {
			for _, d := range u.Dropins {
				key := d.Name
				if _, ok := dropins[key]; !ok {
					dropins[key] = path.Join(ConfigDir, n+".d", d.Name)
					pendingData[dropins[key]] = d
				}
			}
		}
		for _, dir := range SearchPath {
			dd := path.Join(dir, n+".d")
			entries, err := r.root.ReadDir(dd)
			if err != nil {
				return nil, err
			}
			if len(entries) > maxDropinsPerDir*4 {
				return nil, installErr("%s: more than %d entries", dd, maxDropinsPerDir*4)
			}
			for _, e := range entries {
				if !strings.HasSuffix(e, ".conf") {
					continue
				}
				if _, ok := dropins[e]; !ok {
					dropins[e] = path.Join(dd, e)
				}
			}
		}
	}
	keys := make([]string, 0, len(dropins))
	for k := range dropins {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		p := dropins[k]
		if f := pendingData[p]; f != nil {
			secs = append(secs, f.sections...)
			continue
		}
		s, err := r.parse(p)
		if err != nil {
			return nil, err
		}
		secs = append(secs, s...)
	}
	return secs, nil
}

func (r *resolver) parse(p string) ([]*unit.UnitSection, error) {
	data, err := r.root.ReadFile(p, maxUnitRead)
	if err != nil {
		return nil, err
	}
	secs, err := unit.DeserializeSections(bytes.NewReader(data))
	if err != nil {
		return nil, installErr("%s: %w", p, err)
	}
	return secs, nil
}

// install is what a unit's [Install] sections say.
type install struct {
	wantedBy, requiredBy, upheldBy, alias, also []string
	defaultInstance                             string
}

func installOf(secs []*unit.UnitSection) install {
	var in install
	for _, s := range secs {
		if s.Section != "Install" {
			continue
		}
		for _, e := range s.Entries {
			words := strings.Fields(e.Value)
			switch e.Name {
			case "WantedBy":
				in.wantedBy = appendOrReset(in.wantedBy, words)
			case "RequiredBy":
				in.requiredBy = appendOrReset(in.requiredBy, words)
			case "UpheldBy":
				in.upheldBy = appendOrReset(in.upheldBy, words)
			case "Alias":
				in.alias = appendOrReset(in.alias, words)
			case "Also":
				in.also = appendOrReset(in.also, words)
			case "DefaultInstance":
				in.defaultInstance = strings.TrimSpace(e.Value)
			}
		}
	}
	return in
}

// appendOrReset follows systemd's list options: an empty assignment
// clears what came before.
func appendOrReset(list, words []string) []string {
	if len(words) == 0 {
		return nil
	}
	return append(list, words...)
}

// templateOf returns the template of an instance name (app@x.service →
// app@.service), the name itself for a template, "" for a plain unit.
func templateOf(name string) string {
	at := strings.IndexByte(name, '@')
	if at < 0 {
		return ""
	}
	dot := strings.LastIndexByte(name, '.')
	if dot < at {
		return ""
	}
	return name[:at+1] + name[dot:]
}

// specifiers expands the %-specifiers systemctl expands in [Install] for
// the unit instance name.
func specifiers(s, name string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	dot := strings.LastIndexByte(name, '.')
	prefix, inst := name[:dot], ""
	if at := strings.IndexByte(name, '@'); at >= 0 {
		prefix, inst = name[:at], name[at+1:dot]
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i++; i == len(s) {
			return "", installErr("%q ends in a lone %%", s)
		}
		switch s[i] {
		case '%':
			b.WriteByte('%')
		case 'n':
			b.WriteString(name)
		case 'N':
			b.WriteString(name[:dot])
		case 'p':
			b.WriteString(prefix)
		case 'i':
			b.WriteString(inst)
		default:
			return "", installErr("%q: specifier %%%c is not supported in [Install] offline (use %%n, %%N, %%p or %%i)", s, s[i])
		}
	}
	return b.String(), nil
}

// enableLinks computes the links `systemctl --root enable name` makes:
// <target>.wants/, .requires/ and .upholds/ entries, aliases, and the same
// for units named by Also=.
func (r *resolver) enableLinks(name string) ([]Link, error) {
	var links []Link
	seen := map[string]bool{}
	queue := []string{name}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if seen[n] {
			continue
		}
		if seen[n] = true; len(seen) > maxAlso {
			return nil, installErr("%s: more than %d units through Also=", name, maxAlso)
		}
		file, err := r.find(n)
		if err != nil {
			return nil, err
		}
		secs, err := r.sections(n, file)
		if err != nil {
			return nil, err
		}
		in := installOf(secs)
		inst := n
		if templateOf(n) == n {
			if in.defaultInstance == "" {
				if len(in.wantedBy)+len(in.requiredBy)+len(in.upheldBy)+len(in.alias) > 0 {
					return nil, installErr("%s is a template without DefaultInstance=; enable an instance of it (%s)", n, strings.Replace(n, "@.", "@NAME.", 1))
				}
			} else {
				inst = strings.Replace(n, "@.", "@"+in.defaultInstance+".", 1)
			}
		}
		add := func(targets []string, dirSuffix string) error {
			for _, t := range targets {
				t, err := specifiers(t, inst)
				if err != nil {
					return fmt.Errorf("%s: %w", n, err)
				}
				if msg := config.CheckUnitName(t); msg != "" {
					return installErr("%s: [Install] names %s", n, msg)
				}
				links = append(links, Link{Path: path.Join(ConfigDir, t+dirSuffix, inst), Target: file})
			}
			return nil
		}
		if err := add(in.wantedBy, ".wants"); err != nil {
			return nil, err
		}
		if err := add(in.requiredBy, ".requires"); err != nil {
			return nil, err
		}
		if err := add(in.upheldBy, ".upholds"); err != nil {
			return nil, err
		}
		for _, a := range in.alias {
			a, err := specifiers(a, inst)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			if path.Ext(a) != path.Ext(n) || config.CheckUnitName(a) != "" {
				return nil, installErr("%s: Alias=%s must be a unit name of the same type", n, a)
			}
			if a != inst && a != n {
				links = append(links, Link{Path: path.Join(ConfigDir, a), Target: file})
			}
		}
		for _, a := range in.also {
			a, err := specifiers(a, inst)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", n, err)
			}
			queue = append(queue, a)
		}
	}
	return dedupe(links), nil
}

func dedupe(links []Link) []Link {
	seen := map[string]bool{}
	out := links[:0]
	for _, l := range links {
		if !seen[l.Path] {
			seen[l.Path] = true
			out = append(out, l)
		}
	}
	return out
}

// disableLinks lists the symlinks `systemctl --root disable name` removes
// that exist on the root: the links [Install] makes (when the unit is
// still there) and any entry for the unit in a .wants, .requires or
// .upholds directory of /etc/systemd/system.
func (r *resolver) disableLinks(name string) ([]string, error) {
	var paths []string
	links, err := r.enableLinks(name)
	if err != nil && !errors.Is(err, errNotFound) {
		return nil, err
	}
	for _, l := range links {
		paths = append(paths, l.Path)
	}
	dirs, err := r.root.ReadDir(ConfigDir)
	if err != nil {
		return nil, err
	}
	for _, d := range dirs {
		if strings.HasSuffix(d, ".wants") || strings.HasSuffix(d, ".requires") || strings.HasSuffix(d, ".upholds") {
			paths = append(paths, path.Join(ConfigDir, d, name))
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, p := range paths {
		if seen[p] {
			continue
		}
		seen[p] = true
		if fi, err := r.root.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}
