package config

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Packages is the packages: section: what the target root's package manager
// installs, and how.
type Packages struct {
	// Manager forces a package manager; "auto" (the default) detects it from
	// the target root.
	Manager string        `yaml:"manager"`
	Update  bool          `yaml:"update"`  // refresh the index before installing
	Upgrade bool          `yaml:"upgrade"` // upgrade what is installed before installing
	Install []Package     `yaml:"install"`
	Files   []PackageFile `yaml:"files"`
}

// Managers are the package managers packages.manager accepts, besides auto.
var Managers = []string{"apt", "dnf", "yum", "zypper", "apk"}

// ManagerAuto detects the manager from the target root.
const ManagerAuto = "auto"

// Package is one package from the manager's repositories. Its name is its
// identity across layers. It may be written as one scalar, "hello" or
// "hello=2.10-3", since package lists are mostly bare names; "=" never
// appears in a package name, whatever the manager.
type Package struct {
	Name    string `yaml:"name" config:"key"`
	Version string `yaml:"version"` // optional pin, in the manager's own syntax
}

func (p *Package) fromScalar(text string) {
	p.Name, p.Version, _ = strings.Cut(text, "=")
}

func (*Package) describe() string {
	return "a package name (hello or hello=2.10-3) or a mapping with name and version"
}

// PackageFile is a package file (.deb, .rpm, .apk) fetched and verified
// before it is installed.
type PackageFile struct {
	Source string `yaml:"source" config:"key"` // s3://, https://, file://
	SHA256 string `yaml:"sha256"`              // required: it is code run as root
}

// pkgTokenRE is what a package name or version may be in every supported
// manager (Debian's and RPM's name and version characters, an :arch or
// epoch). It starts with a letter or digit so it is never read as an option.
var pkgTokenRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._+:~-]*$`)

func (p *Packages) check(c *checker, path string) {
	at := func(key string) string { return joinKey(path, key) }
	c.autoOr(at("manager"), &p.Manager, Managers, "package manager")
	first := map[string]int{}
	for i, pkg := range p.Install {
		if pkg.Name == "" {
			continue
		}
		if j, dup := first[pkg.Name]; dup {
			src, line, col := c.m.locate(fmt.Sprintf("%s[%d].name", at("install"), j))
			c.errorf(fmt.Sprintf("%s[%d].name", at("install"), i), "duplicate package %s: %s[%d] at %s:%d:%d installs it too",
				quoteShort(pkg.Name), at("install"), j, src, line, col)
			continue
		}
		first[pkg.Name] = i
	}
}

func (p *Package) check(c *checker, path string) {
	switch {
	case p.Name == "":
		c.errorf(joinKey(path, "name"), "required: the package's name, e.g. hello")
	case len(p.Name) > 128 || !pkgTokenRE.MatchString(p.Name):
		c.errorf(joinKey(path, "name"), "%s is not a package name: letters, digits and . _ + : ~ - only, starting with a letter or digit%s",
			quoteShort(p.Name), fileHint(p.Name))
	}
	if p.Version != "" && (len(p.Version) > 128 || !pkgTokenRE.MatchString(p.Version)) {
		c.errorf(joinKey(path, "version"), "%s is not a package version: letters, digits and . _ + : ~ - only, starting with a letter or digit",
			quoteShort(p.Version))
	}
}

// fileHint points someone who wrote a path or URL as a name to files:.
func fileHint(name string) string {
	if strings.ContainsAny(name, "/") {
		return "; to install a package file, list it under packages.files with its sha256"
	}
	return ""
}

// packageFileExts are the package file types the managers install.
var packageFileExts = []string{".deb", ".rpm", ".apk"}

func (f *PackageFile) check(c *checker, path string) {
	at := func(key string) string { return joinKey(path, key) }
	if msg := checkSource(f.Source); msg != "" {
		c.errorf(at("source"), "%s", msg)
	} else if PackageFileType(f.Source) == "" {
		c.errorf(at("source"), "want a package file ending in %s", strings.Join(packageFileExts, ", "))
	}
	switch {
	case f.SHA256 == "":
		c.errorf(at("sha256"), "required: a package file is code run as root; give its sha256 (sha256sum x.deb)")
	default:
		if msg := checkSHA256(f.SHA256); msg != "" {
			c.errorf(at("sha256"), "%s", msg)
		}
	}
	f.SHA256 = strings.ToLower(f.SHA256)
}

// PackageFileType is the file's extension (".deb", ".rpm", ".apk") read
// from the source's path (a URL's query is not part of it), or "" when it
// is none of those.
func PackageFileType(source string) string {
	p := source
	if u, err := url.Parse(source); err == nil && u.Scheme != "s3" {
		p = u.Path
	}
	for _, ext := range packageFileExts {
		if strings.HasSuffix(p, ext) && len(p) > len(ext) {
			return ext
		}
	}
	return ""
}
