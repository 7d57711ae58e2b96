package pkgmgr

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
)

// variant is what the detector knows of one manager.
type variant struct {
	name    string
	program string   // must exist under the root
	dbs     []string // one of these must exist under the root
	family  []string // os-release ID / ID_LIKE values that use it
	new     func(Options) Manager
}

var rpmDBs = []string{"var/lib/rpm", "usr/lib/sysimage/rpm"}

// variants in order of preference within a family: dnf before yum (on
// RHEL 8 and later yum is dnf).
var variants = []variant{
	{"apt", "apt-get", []string{"var/lib/dpkg/status"}, []string{"debian", "ubuntu"}, NewApt},
	{"dnf", "dnf", rpmDBs, []string{"fedora", "rhel", "centos", "rocky", "almalinux", "amzn", "ol"}, NewDnf},
	{"yum", "yum", rpmDBs, []string{"fedora", "rhel", "centos", "rocky", "almalinux", "amzn", "ol"}, NewYum},
	{"zypper", "zypper", rpmDBs, []string{"suse", "opensuse", "sles", "sle-micro"}, NewZypper},
	{"apk", "apk", []string{"lib/apk/db/installed"}, []string{"alpine"}, NewApk},
}

// programDirs are where the detector and chroot runs look for a program,
// relative to the root.
var programDirs = []string{"usr/bin", "usr/sbin", "bin", "sbin"}

// findProgram returns the program's path inside root ("/usr/bin/apt-get"),
// or "" when the root has none. Lookups stay inside the root.
func findProgram(root, program string) string {
	for _, d := range programDirs {
		if exists(root, path.Join(d, program)) {
			return "/" + path.Join(d, program)
		}
	}
	return ""
}

// exists reports whether rel names something under root, following
// symlinks only within it (an absolute link target would be the host's).
func exists(root, rel string) bool {
	r, err := os.OpenRoot(root)
	if err != nil {
		return false
	}
	defer r.Close()
	_, err = r.Lstat(rel)
	return err == nil
}

// OSRelease returns ID and ID_LIKE from the root's os-release file.
func OSRelease(root string) (id string, like []string) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return "", nil
	}
	defer r.Close()
	var data []byte
	for _, p := range []string{"etc/os-release", "usr/lib/os-release"} {
		if data, err = r.ReadFile(p); err == nil {
			break
		}
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "=")
		if !ok {
			continue
		}
		v = strings.ToLower(strings.Trim(v, `"'`))
		switch k {
		case "ID":
			id = v
		case "ID_LIKE":
			like = strings.Fields(v)
		}
	}
	return id, like
}

// Detect picks the package manager of the target root: forced (a name from
// packages.manager) or, for "auto", the one whose program and database the
// root has, preferring the one its os-release names when several do. It
// never looks at the host's / unless that is the root.
func Detect(o Options, forced string) (Manager, error) {
	root := o.withDefaults().Root
	id, like := OSRelease(root)
	if forced != "" && forced != "auto" {
		i := slices.IndexFunc(variants, func(v variant) bool { return v.name == forced })
		if i < 0 {
			return nil, fmt.Errorf("unknown package manager %q", forced)
		}
		v := variants[i]
		if findProgram(root, v.program) == "" {
			return nil, fmt.Errorf("%s has no %s program (looked in %s)", root, v.program, strings.Join(programDirs, ", "))
		}
		return v.new(o), nil
	}
	var found []variant
	for _, v := range variants {
		if findProgram(root, v.program) == "" {
			continue
		}
		if slices.ContainsFunc(v.dbs, func(db string) bool { return exists(root, db) }) {
			found = append(found, v)
		}
	}
	for _, v := range found {
		if slices.Contains(v.family, id) {
			return v.new(o), nil
		}
	}
	for _, v := range found {
		if slices.ContainsFunc(like, func(l string) bool { return slices.Contains(v.family, l) }) {
			return v.new(o), nil
		}
	}
	if len(found) > 0 {
		return found[0].new(o), nil
	}
	var looked []string
	for _, v := range variants {
		looked = append(looked, fmt.Sprintf("%s (%s and %s)", v.name, v.program, strings.Join(v.dbs, " or ")))
	}
	osName := "no os-release"
	if id != "" {
		osName = "os-release ID=" + id
	}
	return nil, fmt.Errorf("cannot tell the package manager of %s (%s): none of %s is there; set packages.manager",
		root, osName, strings.Join(looked, ", "))
}
