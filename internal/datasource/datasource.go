// Package datasource says where instance facts and user-data come from:
// EC2's instance metadata service (IMDSv2, wrapped in a boot-time wait), a
// local directory (Vagrant, no-cloud) or nothing at all.
package datasource

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opsboot/bootstrap/internal/localfile"
)

// Bounds on what a datasource reads. EC2 accepts at most 16 KiB of
// user-data; 64 times that leaves room for seed directories and emulators,
// while a mistaken or hostile 100 MB answer is refused before it is in
// memory. Everything else a datasource reads is a few hundred bytes.
const (
	MaxUserData  = 1 << 20
	maxMetaData  = 64 << 10 // a seed's meta-data, one IMDS answer
	maxSmallFile = 4 << 10  // machine-id, DMI fields
)

// Metadata is what a datasource knows about the machine.
type Metadata struct {
	// Source is the datasource's name: "ec2", "file" or "none".
	Source string

	InstanceID, Region, AvailabilityZone, InstanceType, AMIID, LocalIPv4, MAC, AccountID, Hostname string

	// Tags are the instance's tags; set only when asked for.
	Tags map[string]string

	// ENIs are the instance's network interfaces; nil unless read
	// (EC2.FetchENIs, when the configuration has a network: section).
	ENIs []ENI

	// UserData is SECRET (it often carries passwords and keys): never log
	// it, nor put it in an error. nil means no user-data was given.
	UserData []byte
}

// Facts returns the facts config files can interpolate as ${name}. Every
// name is present (empty when unknown), so a config refers to a fact
// without first checking the datasource. Each instance tag read is a fact
// named tag:<key> (${tag:Role}); tags not read are not there, so a
// reference to one is an error rather than an empty string.
func (m *Metadata) Facts() map[string]string {
	facts := map[string]string{
		"instance_id":       m.InstanceID,
		"region":            m.Region,
		"availability_zone": m.AvailabilityZone,
		"instance_type":     m.InstanceType,
		"ami_id":            m.AMIID,
		"local_ipv4":        m.LocalIPv4,
		"mac":               m.MAC,
		"account_id":        m.AccountID,
		"hostname":          m.Hostname,
	}
	for k, v := range m.Tags {
		facts["tag:"+k] = v
	}
	// Only when read: a reference to one otherwise is an unknown fact,
	// not an empty list.
	if m.ENIs != nil {
		m.eniFacts(facts)
	}
	return facts
}

// String describes m for logs without the user-data (only its size).
func (m *Metadata) String() string {
	return fmt.Sprintf("%s instance %s (region %q, type %q, %d tags, user-data %d bytes)",
		m.Source, m.InstanceID, m.Region, m.InstanceType, len(m.Tags), len(m.UserData))
}

// Datasource provides the machine's metadata.
type Datasource interface {
	Name() string
	Fetch(ctx context.Context) (*Metadata, error)
}

// None is the datasource for machines with nothing to ask (an image build):
// the only fact is the instance-id, from <root>/etc/machine-id ("" root =
// "/"), else "none". The target's, not the build host's: two images built
// with one state directory must not skip each other's steps.
func None(root string) Datasource { return noneSource{root: root} }

type noneSource struct{ root string }

func (noneSource) Name() string { return "none" }

func (n noneSource) Fetch(ctx context.Context) (*Metadata, error) {
	id := machineID(n.root)
	if id == "" {
		id = "none"
	}
	return &Metadata{Source: "none", InstanceID: id}, nil
}

// machineID reads <root>/etc/machine-id. It returns "" when the file is
// missing, empty or "uninitialized" (systemd's marker in an image before
// first boot): none of those identifies this machine.
func machineID(root string) string {
	if root == "" {
		root = "/"
	}
	b, err := localfile.ReadFile(filepath.Join(root, "etc", "machine-id"), maxSmallFile)
	if err != nil {
		return ""
	}
	id := strings.TrimSpace(string(b))
	if id == "uninitialized" || strings.ContainsAny(id, " \t\n/") || len(id) > 128 {
		return ""
	}
	return id
}

// endpointEnv is the SDK's IMDS endpoint override; setting it also means
// "this is EC2 (or an emulator of it)".
const endpointEnv = "AWS_EC2_METADATA_SERVICE_ENDPOINT"

// endpointModeEnv is the SDK's choice between IMDS's IPv4 and IPv6
// addresses.
const endpointModeEnv = "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"

// Detect decides between "ec2" and "none" without touching the network:
// at boot, probing 169.254.169.254 on a machine that is not EC2 only costs
// time. It looks at what the firmware says (DMI, Xen's hypervisor uuid)
// under root ("" = "/") and at AWS_EC2_METADATA_SERVICE_ENDPOINT. reason is
// a sentence for the log saying why.
func Detect(root string) (kind, reason string) {
	if root == "" {
		root = "/"
	}
	read := func(rel string) string {
		b, err := localfile.ReadFile(filepath.Join(root, rel), maxSmallFile)
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(b))
	}
	const dmi = "sys/class/dmi/id/"
	for _, f := range []string{"sys_vendor", "board_vendor"} {
		if v := read(dmi + f); v == "Amazon EC2" {
			return "ec2", fmt.Sprintf("DMI %s is %q", f, v)
		}
	}
	for _, f := range []string{"bios_vendor", "bios_version"} {
		if v := read(dmi + f); strings.Contains(strings.ToLower(v), "amazon") {
			return "ec2", fmt.Sprintf("DMI %s %q names Amazon", f, v)
		}
	}
	if v := read("sys/hypervisor/uuid"); strings.HasPrefix(strings.ToLower(v), "ec2") {
		return "ec2", "the Xen hypervisor uuid starts with \"ec2\""
	}
	if v := os.Getenv(endpointEnv); v != "" {
		return "ec2", fmt.Sprintf("%s is set (%s)", endpointEnv, v)
	}
	vendor := read(dmi + "sys_vendor")
	if vendor == "" {
		vendor = "unknown"
	}
	return "none", fmt.Sprintf("not EC2: DMI sys_vendor is %q, no Amazon BIOS or ec2 hypervisor uuid, and %s is not set", vendor, endpointEnv)
}
