package puppet

import (
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/rootfs"
)

// Layout is where an installed puppet keeps its program and files: Debian's
// packages and the vendors' all-in-one (AIO) packages differ in all of it.
type Layout struct {
	Name          string // debian or aio
	Bin           string
	ConfFile      string
	SSLDir        string
	CSRAttributes string
	FactsDir      string // facter's external facts
	Service       string
}

var (
	// Debian is Debian's and Ubuntu's puppet-agent package.
	Debian = Layout{Name: "debian", Bin: "/usr/bin/puppet", ConfFile: "/etc/puppet/puppet.conf",
		SSLDir: "/var/lib/puppet/ssl", CSRAttributes: "/etc/puppet/csr_attributes.yaml",
		FactsDir: "/etc/facter/facts.d", Service: "puppet.service"}
	// AIO is Puppet's and OpenVox's all-in-one packages.
	AIO = Layout{Name: "aio", Bin: "/opt/puppetlabs/bin/puppet", ConfFile: "/etc/puppetlabs/puppet/puppet.conf",
		SSLDir: "/etc/puppetlabs/puppet/ssl", CSRAttributes: "/etc/puppetlabs/puppet/csr_attributes.yaml",
		FactsDir: "/etc/puppetlabs/facter/facts.d", Service: "puppet.service"}
)

// DetectLayout reads the layout from what is installed in root; when
// nothing is yet, from what will be: a vendor repository's packages are
// AIO, the distro's are Debian's. The operator's paths override it.
func DetectLayout(root *rootfs.Root, p *config.Puppet) Layout {
	var l Layout
	switch {
	case exists(root, AIO.Bin):
		l = AIO
	case exists(root, Debian.Bin):
		l = Debian
	case p.InstallType == config.PuppetInstallRepo:
		l = AIO
	default:
		l = Debian
	}
	if p.ConfFile != "" {
		l.ConfFile = p.ConfFile
	}
	if p.SSLDir != "" {
		l.SSLDir = p.SSLDir
	}
	if p.CSRAttributesPath != "" {
		l.CSRAttributes = p.CSRAttributesPath
	}
	return l
}

func exists(root *rootfs.Root, p string) bool {
	_, err := root.Stat(p)
	return err == nil
}
