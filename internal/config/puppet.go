package config

import (
	"fmt"
	"net/url"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"
)

// Puppet is the puppet: section: the agent installed, configured, enrolled
// with its server with a bounded wait, and run once. Its keys are cloud-init
// cc_puppet's, so a cloud-config puppet: maps one to one; ours add the
// challenge password's source, the bounded waits, masterless and facts.
type Puppet struct {
	// Install false means the agent is baked into the image: only checked.
	Install *bool `yaml:"install"`
	// InstallType is packages (the distro's package, the default), repo (a
	// vendor apt repository) or cloud-init's aio (refused: its install.sh
	// has no Debian 12 build).
	InstallType string     `yaml:"install_type"`
	PackageName string     `yaml:"package_name"` // default puppet-agent
	Version     string     `yaml:"version"`      // a package version pin
	Repo        PuppetRepo `yaml:"repo"`
	// cloud-init's keys that only its aio installer reads; accepted and
	// reported as ignored by the cloud-config mapping.
	Conf PuppetConf `yaml:"conf"`
	// CACertSource fetches the CA certificate (conf.ca_cert is inline).
	CACertSource string `yaml:"ca_cert_source"`
	CACertSHA256 string `yaml:"ca_cert_sha256"`
	// Paths on the target; empty: the installed layout's.
	ConfFile          string    `yaml:"conf_file"`
	SSLDir            string    `yaml:"ssl_dir"`
	CSRAttributesPath string    `yaml:"csr_attributes_path"`
	CSRAttributes     PuppetCSR `yaml:"csr_attributes"`
	// ChallengePassword goes into the CSR for the server's autosign policy;
	// or fetched from ChallengePasswordSource (s3://…) and never shown.
	ChallengePassword       string   `yaml:"challenge_password" config:"sensitive"`
	ChallengePasswordSource string   `yaml:"challenge_password_source"`
	Environment             string   `yaml:"environment"`
	RunInterval             Duration `yaml:"runinterval"`
	// WaitForCert is how often the agent asks for its certificate;
	// MaxWaitForCert bounds the whole wait (puppet's default is forever).
	WaitForCert    Duration `yaml:"waitforcert"`
	MaxWaitForCert Duration `yaml:"maxwaitforcert"`
	// Exec runs the agent once (puppet agent --test) after enrolment.
	Exec         *bool    `yaml:"exec"`
	ExecArgs     []string `yaml:"exec_args"`
	StartService *bool    `yaml:"start_service"`
	// Masterless applies a manifest tarball with puppet apply instead.
	Masterless *PuppetMasterless `yaml:"masterless"`
	// Facts are external facts written to facts.d (values may use ${fact}).
	Facts map[string]string `yaml:"facts"`
}

// PuppetConf is puppet.conf's sections as cloud-init's conf: takes them.
type PuppetConf struct {
	Main   map[string]string `yaml:"main"`
	Agent  map[string]string `yaml:"agent"`
	Server map[string]string `yaml:"server"`
	User   map[string]string `yaml:"user"`
	// CACert is the CA certificate's PEM, written to ssl_dir/certs/ca.pem.
	CACert string `yaml:"ca_cert"`
}

// Sections returns the conf sections in puppet.conf's order.
func (c *PuppetConf) Sections() []PuppetSection {
	return []PuppetSection{{"main", c.Main}, {"agent", c.Agent}, {"server", c.Server}, {"user", c.User}}
}

// PuppetSection is one puppet.conf section's settings.
type PuppetSection struct {
	Name     string
	Settings map[string]string
}

// Lookup finds a setting as puppet agent does: [agent] before [main].
func (c *PuppetConf) Lookup(key string) (value, section string) {
	if v, ok := c.Agent[key]; ok {
		return v, "agent"
	}
	if v, ok := c.Main[key]; ok {
		return v, "main"
	}
	return "", ""
}

// PuppetCSR is csr_attributes.yaml's content.
type PuppetCSR struct {
	// CustomAttributes are not copied into the certificate; they carry the
	// challengePassword, so they are never quoted.
	CustomAttributes  map[string]string `yaml:"custom_attributes" config:"sensitive"`
	ExtensionRequests map[string]string `yaml:"extension_requests"`
}

// PuppetRepo is a vendor apt repository (OpenVox's, Puppet's).
type PuppetRepo struct {
	URL        string `yaml:"url"`        // https://apt.voxpupuli.org
	Suite      string `yaml:"suite"`      // e.g. debian12
	Components string `yaml:"components"` // default openvox8
	KeySource  string `yaml:"key_source"` // the signing key (armored or binary)
	KeySHA256  string `yaml:"key_sha256"`
}

// PuppetMasterless is what `puppet apply` runs: a tarball with manifests
// and modules, as Vagrant's puppet provisioner lays them out.
type PuppetMasterless struct {
	Source      string `yaml:"source"`
	SHA256      string `yaml:"sha256"`
	Manifest    string `yaml:"manifest"`     // in the tarball; default manifests/site.pp
	ModulePath  string `yaml:"modulepath"`   // in the tarball; default modules
	HieraConfig string `yaml:"hiera_config"` // in the tarball; optional
}

// Puppet defaults.
const (
	PuppetInstallPackages     = "packages"
	PuppetInstallRepo         = "repo"
	DefaultPuppetPackage      = "puppet-agent"
	DefaultPuppetWaitForCert  = 10 * time.Second
	DefaultPuppetMaxWait      = 5 * time.Minute
	MaxPuppetMaxWait          = time.Hour
	DefaultPuppetManifest     = "manifests/site.pp"
	DefaultPuppetModulePath   = "modules"
	PuppetChallengePasswordID = "1.2.840.113549.1.9.7"
)

// PuppetExtensions are the short names Puppet gives its registered CSR
// extensions (puppetlabs/puppet ssl/oids.rb), under 1.3.6.1.4.1.34380.1.1.
var PuppetExtensions = map[string]int{
	"pp_uuid": 1, "pp_instance_id": 2, "pp_image_name": 3, "pp_preshared_key": 4,
	"pp_cost_center": 5, "pp_product": 6, "pp_project": 7, "pp_application": 8,
	"pp_service": 9, "pp_employee": 10, "pp_created_by": 11, "pp_environment": 12,
	"pp_role": 13, "pp_software_version": 14, "pp_department": 15, "pp_cluster": 16,
	"pp_provisioner": 17, "pp_region": 18, "pp_datacenter": 19, "pp_zone": 20,
	"pp_network": 21, "pp_securitypolicy": 22, "pp_cloudplatform": 23, "pp_apptier": 24,
	"pp_hostname": 25, "pp_owner": 26,
}

var (
	// certnameRE is what we let a certname be: puppet refuses capitals and
	// "/", and other characters break its file names or URLs.
	certnameRE   = regexp.MustCompile(`^[a-z0-9._-]+$`)
	settingRE    = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	oidRE        = regexp.MustCompile(`^[0-9]+(\.[0-9]+)+$`)
	factNameRE   = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	ownedByUs    = []string{"waitforcert", "maxwaitforcert"}
	conflictKeys = []string{"environment", "runinterval"}
)

// InstallEnabled reports whether the agent is installed (else only checked).
func (p *Puppet) InstallEnabled() bool { return p.Install == nil || *p.Install }

// ExecEnabled reports whether the first run happens.
func (p *Puppet) ExecEnabled() bool { return p.Exec == nil || *p.Exec }

// StartServiceEnabled reports whether the agent service is enabled and started.
func (p *Puppet) StartServiceEnabled() bool { return p.StartService == nil || *p.StartService }

// Server is the configured server, "" when none.
func (p *Puppet) Server() string { v, _ := p.Conf.Lookup("server"); return v }

// Certname expands cloud-init's %i (instance-id) and %f (fqdn) and lower-
// cases the result, as cc_puppet does; empty means the instance-id.
func Certname(template, instanceID, fqdn string) string {
	if template == "" {
		template = "%i"
	}
	s := strings.ReplaceAll(template, "%i", instanceID)
	s = strings.ReplaceAll(s, "%f", fqdn)
	return strings.ToLower(s)
}

// CheckCertname says what is wrong with an expanded certname, "" if nothing.
func CheckCertname(name string) string {
	switch {
	case name == "":
		return "the certname is empty"
	case len(name) > 255:
		return "the certname is over 255 characters"
	case !certnameRE.MatchString(name):
		return fmt.Sprintf("%s is not a certname puppet accepts: letters, digits, '.', '-' and '_' only (and %%i, %%f)", quoteShort(name))
	}
	return ""
}

func (p *Puppet) check(c *checker, at string) {
	key := func(k string) string { return joinKey(at, k) }
	switch p.InstallType {
	case "", "package":
		p.InstallType = PuppetInstallPackages
	case PuppetInstallPackages:
	case PuppetInstallRepo:
		if p.Repo.URL == "" {
			c.errorf(key("repo.url"), "required with install_type: repo: the apt repository's URL, e.g. https://apt.voxpupuli.org")
		}
	case "aio":
		c.errorf(key("install_type"), "aio runs puppetlabs' install.sh, which has no Debian 12 build; use install_type: packages (the distro's puppet-agent) or repo (a vendor repository with its signing key)")
	default:
		c.errorf(key("install_type"), "want packages, repo or aio, got %s", quoteShort(p.InstallType))
	}
	if p.PackageName == "" {
		p.PackageName = DefaultPuppetPackage
	} else if len(p.PackageName) > 128 || !pkgTokenRE.MatchString(p.PackageName) {
		c.errorf(key("package_name"), "%s is not a package name", quoteShort(p.PackageName))
	}
	if p.Version != "" && (len(p.Version) > 128 || !pkgTokenRE.MatchString(p.Version)) {
		c.errorf(key("version"), "%s is not a package version", quoteShort(p.Version))
	}
	if p.Repo.URL != "" {
		if u, err := url.Parse(p.Repo.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			c.errorf(key("repo.url"), "want an http(s):// URL of an apt repository")
		}
		if p.Repo.KeySource == "" {
			c.errorf(key("repo.key_source"), "required: the repository's signing key (s3://, https://, file://); packages are code run as root")
		}
		if p.Repo.Suite == "" {
			c.errorf(key("repo.suite"), "required: the repository's suite, e.g. debian12")
		}
	}
	if p.Repo.KeySource != "" {
		if msg := checkSource(p.Repo.KeySource); msg != "" {
			c.errorf(key("repo.key_source"), "%s", msg)
		}
	}
	for _, s := range []struct{ field, v string }{{"ca_cert_source", p.CACertSource}, {"challenge_password_source", p.ChallengePasswordSource}} {
		if s.v != "" {
			if msg := checkSource(s.v); msg != "" {
				c.errorf(key(s.field), "%s", msg)
			}
		}
	}
	if p.CACertSource != "" && p.Conf.CACert != "" {
		c.errorf(key("ca_cert_source"), "set conf.ca_cert (inline) or ca_cert_source, not both")
	}
	if p.Conf.CACert != "" && !strings.Contains(p.Conf.CACert, "-----BEGIN CERTIFICATE-----") {
		c.errorf(key("conf.ca_cert"), "want a PEM certificate (-----BEGIN CERTIFICATE-----)")
	}
	for _, s := range []struct{ field, v string }{{"ca_cert_sha256", p.CACertSHA256}, {"repo.key_sha256", p.Repo.KeySHA256}} {
		if msg := checkSHA256(s.v); msg != "" {
			c.errorf(key(s.field), "%s", msg)
		}
	}
	for _, f := range []struct{ field, v string }{{"conf_file", p.ConfFile}, {"ssl_dir", p.SSLDir}, {"csr_attributes_path", p.CSRAttributesPath}} {
		if f.v != "" && (!path.IsAbs(f.v) || path.Clean(f.v) != f.v) {
			c.errorf(key(f.field), "want an absolute, clean path on the target, got %s", quoteShort(f.v))
		}
	}
	p.checkConf(c, key("conf"))
	pwAttr, hasPwAttr := p.CSRAttributes.CustomAttributes[PuppetChallengePasswordID]
	if v, ok := p.CSRAttributes.CustomAttributes["challengePassword"]; ok {
		pwAttr, hasPwAttr = v, true
	}
	n := 0
	for _, set := range []bool{p.ChallengePassword != "", p.ChallengePasswordSource != "", hasPwAttr && pwAttr != ""} {
		if set {
			n++
		}
	}
	if n > 1 {
		c.errorf(key("challenge_password"), "give the challenge password once: challenge_password, challenge_password_source or csr_attributes.custom_attributes")
	}
	for k := range p.CSRAttributes.CustomAttributes {
		if k != "challengePassword" && !oidRE.MatchString(k) {
			c.errorf(key("csr_attributes.custom_attributes."+k), "want an OID such as %s (challengePassword)", PuppetChallengePasswordID)
		}
	}
	for k, v := range p.CSRAttributes.ExtensionRequests {
		if _, ok := PuppetExtensions[k]; !ok && !oidRE.MatchString(k) {
			c.errorf(key("csr_attributes.extension_requests."+k), "want a pp_ name (pp_role, pp_environment, … see docs/puppet.md) or an OID")
		}
		if strings.ContainsAny(v, "\n\r") {
			c.errorf(key("csr_attributes.extension_requests."+k), "a value must be one line")
		}
	}
	if !c.set[key("waitforcert")] {
		p.WaitForCert.Duration = DefaultPuppetWaitForCert
	} else if p.WaitForCert.Duration < time.Second || p.WaitForCert.Duration > 10*time.Minute {
		c.errorf(key("waitforcert"), "must be between 1s and 10m, got %s", p.WaitForCert)
	}
	if !c.set[key("maxwaitforcert")] {
		p.MaxWaitForCert.Duration = DefaultPuppetMaxWait
	} else if p.MaxWaitForCert.Duration < time.Second || p.MaxWaitForCert.Duration > MaxPuppetMaxWait {
		c.errorf(key("maxwaitforcert"), "must be between 1s and %s, got %s: an unbounded wait hangs the boot", Duration{MaxPuppetMaxWait}, p.MaxWaitForCert)
	}
	if c.set[key("runinterval")] && p.RunInterval.Duration < time.Minute {
		c.errorf(key("runinterval"), "must be at least 1m, got %s", p.RunInterval)
	}
	if p.Environment != "" && !settingRE.MatchString(p.Environment) {
		c.errorf(key("environment"), "%s is not a puppet environment name: lower-case letters, digits and _ only", quoteShort(p.Environment))
	}
	if len(p.ExecArgs) == 0 {
		p.ExecArgs = []string{"--test"}
	}
	for i, a := range p.ExecArgs {
		if strings.HasPrefix(a, "--waitforcert") || strings.HasPrefix(a, "--maxwaitforcert") {
			c.errorf(fmt.Sprintf("%s[%d]", key("exec_args"), i), "set puppet.waitforcert and puppet.maxwaitforcert instead: bootstrap bounds the wait")
		}
	}
	if m := p.Masterless; m != nil {
		if srv := p.Server(); srv != "" {
			_, sec := p.Conf.Lookup("server")
			src, line, col := c.m.locate(key("conf." + sec + ".server"))
			c.errorf(key("masterless"), "masterless applies a manifest without a server, but conf.%s.server is set at %s:%d:%d; remove one", sec, src, line, col)
		}
		if m.Source == "" {
			c.errorf(key("masterless.source"), "required: the manifests and modules tarball (s3://, https://, file://)")
		} else if msg := checkSource(m.Source); msg != "" {
			c.errorf(key("masterless.source"), "%s", msg)
		}
		if msg := checkSHA256(m.SHA256); msg != "" {
			c.errorf(key("masterless.sha256"), "%s", msg)
		}
		m.SHA256 = strings.ToLower(m.SHA256)
		if m.Manifest == "" {
			m.Manifest = DefaultPuppetManifest
		}
		if m.ModulePath == "" {
			m.ModulePath = DefaultPuppetModulePath
		}
		for _, f := range []struct{ field, v string }{{"manifest", m.Manifest}, {"modulepath", m.ModulePath}, {"hiera_config", m.HieraConfig}} {
			if f.v != "" && (path.IsAbs(f.v) || path.Clean(f.v) != f.v || strings.HasPrefix(f.v, "..")) {
				c.errorf(key("masterless."+f.field), "want a clean path inside the tarball, got %s", quoteShort(f.v))
			}
		}
	}
	for k := range p.Facts {
		if !factNameRE.MatchString(k) || len(k) > 64 {
			c.errorf(key("facts."+k), "a fact name is lower-case letters, digits and _, starting with a letter")
		}
	}
}

func (p *Puppet) checkConf(c *checker, at string) {
	for _, sec := range p.Conf.Sections() {
		names := make([]string, 0, len(sec.Settings))
		for k := range sec.Settings {
			names = append(names, k)
		}
		sort.Strings(names)
		for _, k := range names {
			v := sec.Settings[k]
			kp := joinKey(at, sec.Name+"."+k)
			switch {
			case !settingRE.MatchString(k):
				c.errorf(kp, "%s is not a puppet setting name: lower-case letters, digits and _", quoteShort(k))
				continue
			case strings.ContainsAny(v, "\n\r"):
				c.errorf(kp, "a puppet.conf value must be one line")
				continue
			}
			for _, own := range ownedByUs {
				if k == own {
					c.errorf(kp, "set puppet.%s instead: bootstrap bounds the wait for the certificate", own)
				}
			}
			for _, dup := range conflictKeys {
				if k == dup && c.set[joinKey(strings.TrimSuffix(at, ".conf"), dup)] {
					c.errorf(kp, "%s is also set as puppet.%s; set it once", k, dup)
				}
			}
			if k == "certname" {
				// %i and %f are checked with stand-ins; the expanded name
				// is checked again at plan time.
				if msg := CheckCertname(Certname(v, "i-0", "host.example")); msg != "" {
					c.errorf(kp, "%s", msg)
				}
			}
			if k == "server" || k == "ca_server" {
				if h, _, err := splitHostPortOpt(v); err != nil || h == "" {
					c.errorf(kp, "want a host name (puppet.example.com), got %s", quoteShort(v))
				}
			}
		}
	}
}

// splitHostPortOpt splits host[:port].
func splitHostPortOpt(s string) (host, port string, err error) {
	if strings.ContainsAny(s, "/ @") {
		return "", "", fmt.Errorf("not a host")
	}
	host, port, found := strings.Cut(s, ":")
	if found && (port == "" || strings.Trim(port, "0123456789") != "") {
		return "", "", fmt.Errorf("bad port")
	}
	return host, port, nil
}
