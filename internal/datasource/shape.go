package datasource

import (
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"strings"
)

// Facts end up in paths, URLs and files. What IMDS returns is trusted to be
// IMDS's answer, but an IMDS lookalike (a mock, a proxy, a misrouted
// endpoint) answers 200 with whatever it has: AWS's own mock serves the
// listing "network/" for a path it lacks. So each fact must have the shape
// AWS documents for it, or it is dropped with a warning, never used.
var factShapes = []struct {
	name  string
	field func(*Metadata) *string
	ok    func(string) bool
	want  string
}{
	{"region", func(m *Metadata) *string { return &m.Region }, regionRE.MatchString, "a region such as eu-west-1"},
	{"availability_zone", func(m *Metadata) *string { return &m.AvailabilityZone }, zoneRE.MatchString, "a zone such as eu-west-1a"},
	{"instance_type", func(m *Metadata) *string { return &m.InstanceType }, instanceTypeRE.MatchString, "a type such as t3.micro"},
	{"ami_id", func(m *Metadata) *string { return &m.AMIID }, amiRE.MatchString, "ami-…"},
	{"local_ipv4", func(m *Metadata) *string { return &m.LocalIPv4 }, isIPv4, "an IPv4 address"},
	{"mac", func(m *Metadata) *string { return &m.MAC }, macRE.MatchString, "a MAC address such as 0e:49:61:0f:c3:11"},
	{"account_id", func(m *Metadata) *string { return &m.AccountID }, accountRE.MatchString, "12 digits"},
	{"hostname", func(m *Metadata) *string { return &m.Hostname }, isHostname, "a host name"},
}

var (
	// Commercial, GovCloud, China and ISO partitions: us-east-1,
	// us-gov-west-1, cn-north-1, us-isob-east-1.
	regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)
	// A region and a zone letter, or a Local or Wavelength Zone:
	// us-west-2-lax-1a, us-east-1-wl1-bos-wlz-1.
	zoneRE         = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+([a-z]|-[a-z0-9-]*[a-z0-9])$`)
	instanceTypeRE = regexp.MustCompile(`^[a-z0-9-]+\.[a-z0-9-]+$`)
	amiRE          = regexp.MustCompile(`^ami-[0-9a-z]{1,40}$`)
	macRE          = regexp.MustCompile(`^(?i)[0-9a-f]{2}(:[0-9a-f]{2}){5}$`)
	accountRE      = regexp.MustCompile(`^[0-9]{12}$`)
	// EC2 ids are i- and 8 or 17 hex digits; emulators use other letters.
	instanceIDRE = regexp.MustCompile(`^i-[0-9a-z]{1,40}$`)
	labelRE      = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)
)

func isIPv4(s string) bool {
	a, err := netip.ParseAddr(s)
	return err == nil && a.Is4()
}

func isHostname(s string) bool {
	if len(s) > 253 {
		return false
	}
	for _, l := range strings.Split(strings.TrimSuffix(s, "."), ".") {
		if !labelRE.MatchString(l) {
			return false
		}
	}
	return true
}

func allHostnames(names []string) bool {
	for _, n := range names {
		if !isHostname(n) {
			return false
		}
	}
	return true
}

// checkInstanceID refuses an instance id that is not EC2's: it keys the
// per-instance records, so a guess could rerun or skip every step.
func checkInstanceID(id, endpoint string) error {
	if instanceIDRE.MatchString(id) {
		return nil
	}
	return fmt.Errorf("IMDS at %s: the identity document's instanceId %s is not an EC2 instance id (i-…); is this endpoint really IMDS?", endpoint, quoteShort(id))
}

// dropMisshapen empties each fact of md that does not have its shape, with
// a warning naming the fact and what it should look like. An empty fact
// was not given and is left alone.
func dropMisshapen(md *Metadata, log *slog.Logger, endpoint string) {
	// With a DHCP option set of several domain names, local-hostname is
	// several names separated by spaces; the first is the instance's own
	// (cloud-init takes it too).
	if names := strings.Fields(md.Hostname); len(names) > 1 && allHostnames(names) {
		md.Hostname = names[0]
	}
	for _, f := range factShapes {
		p := f.field(md)
		if *p == "" || f.ok(*p) {
			continue
		}
		log.Warn("IMDS answered a value that is not "+f.want+"; the fact is dropped (empty), not used",
			"fact", f.name, "value", quoteShort(*p), "endpoint", endpoint)
		*p = ""
	}
}

// quoteShort quotes s for a message, cut to a length that fits one: a
// lookalike may answer a whole web page.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("%q… (%d bytes)", s[:max], len(s))
	}
	return fmt.Sprintf("%q", s)
}
