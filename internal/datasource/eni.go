package datasource

import (
	"context"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"
)

// macsPath lists the instance's network interfaces, one MAC a line.
const macsPath = "/latest/meta-data/network/interfaces/macs/"

// maxENIs bounds the per-ENI requests: no instance type has more.
const maxENIs = 128

// ENI is one network interface of the instance as IMDS describes it under
// network/interfaces/macs/<mac>/. Only secondary ones (DeviceNumber ≥ 1)
// have addresses and a subnet: the primary is the spine's mac and
// local_ipv4, and is never configured.
type ENI struct {
	MAC          string // lower case, with colons
	DeviceNumber int
	LocalIPv4s   []string
	Subnet       string // subnet-ipv4-cidr-block
}

// FetchENIs reads the instance's network interfaces into md.ENIs (non-nil
// afterwards, so Facts publishes them). It costs 1 request for the MAC
// list, 1 for each interface's device-number and 2 more for each
// secondary one (local-ipv4s, subnet-ipv4-cidr-block): 6 for an instance
// with one secondary ENI. An answer without its shape drops that
// interface with a warning, as Fetch drops other facts; an interface
// detached between the list and its read (404) is left out.
func (e *EC2) FetchENIs(ctx context.Context, md *Metadata) error {
	start := time.Now()
	deadline := start.Add(e.opts.Deadline)
	list, found, err := e.get(ctx, deadline, macsPath)
	if err != nil {
		return err
	}
	md.ENIs = []ENI{}
	if !found {
		e.log.Warn("IMDS has no "+macsPath+"; no ENI facts", "endpoint", e.endpoint)
		return nil
	}
	warn := func(mac, field, value, want string) {
		e.log.Warn("IMDS answered a value that is not "+want+"; the ENI is dropped, not configured",
			"eni", mac, "field", field, "value", quoteShort(value), "endpoint", e.endpoint)
	}
	seen := map[string]bool{}
	for _, line := range strings.Split(string(list), "\n") {
		raw := strings.TrimSuffix(strings.TrimSpace(line), "/")
		if raw == "" {
			continue
		}
		if !macRE.MatchString(raw) {
			warn(raw, "mac", raw, "a MAC address such as 0e:49:61:0f:c3:11")
			continue
		}
		mac := strings.ToLower(raw)
		if seen[mac] {
			continue
		}
		if len(seen) == maxENIs {
			e.log.Warn("IMDS lists more network interfaces than bootstrap reads; the rest are ignored", "max", maxENIs)
			break
		}
		seen[mac] = true
		dir := macsPath + raw + "/"
		b, found, err := e.get(ctx, deadline, dir+"device-number")
		if err != nil {
			return err
		}
		if !found {
			e.log.Info("network interface gone between the list and its read; left out", "eni", mac)
			continue
		}
		v := strings.TrimSpace(string(b))
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 127 {
			warn(mac, "device-number", v, "a device number 0 to 127")
			continue
		}
		eni := ENI{MAC: mac, DeviceNumber: n}
		if n == 0 {
			md.ENIs = append(md.ENIs, eni)
			continue
		}
		ips, found, err := e.get(ctx, deadline, dir+"local-ipv4s")
		if err != nil {
			return err
		}
		subnet, found2, err := e.get(ctx, deadline, dir+"subnet-ipv4-cidr-block")
		if err != nil {
			return err
		}
		if !found || !found2 {
			e.log.Info("network interface gone between the list and its read; left out", "eni", mac)
			continue
		}
		eni.Subnet = strings.TrimSpace(string(subnet))
		if p, err := netip.ParsePrefix(eni.Subnet); err != nil || !p.Addr().Is4() {
			warn(mac, "subnet-ipv4-cidr-block", eni.Subnet, "an IPv4 CIDR block such as 10.0.1.0/24")
			continue
		}
		eni.LocalIPv4s = strings.Fields(string(ips))
		ok := len(eni.LocalIPv4s) > 0
		for _, ip := range eni.LocalIPv4s {
			ok = ok && isIPv4(ip)
		}
		if !ok {
			warn(mac, "local-ipv4s", string(ips), "IPv4 addresses, one a line")
			continue
		}
		md.ENIs = append(md.ENIs, eni)
	}
	// In device order, as the instance has them, not as IMDS lists them.
	sort.SliceStable(md.ENIs, func(i, j int) bool { return md.ENIs[i].DeviceNumber < md.ENIs[j].DeviceNumber })
	e.log.Info("read network interfaces from IMDS", "endpoint", e.endpoint, "enis", len(md.ENIs),
		"requests", e.Requests(), "elapsed", time.Since(start).Round(time.Millisecond))
	return nil
}

// eniFacts adds m.ENIs as facts keyed by the MAC without colons (fact
// names are [a-z0-9_]); eni_macs lists them, space-separated.
func (m *Metadata) eniFacts(facts map[string]string) {
	var macs []string
	for _, e := range m.ENIs {
		key := "eni_" + strings.ReplaceAll(e.MAC, ":", "") + "_"
		macs = append(macs, key[4:len(key)-1])
		facts[key+"device_number"] = strconv.Itoa(e.DeviceNumber)
		if e.DeviceNumber > 0 {
			facts[key+"local_ipv4s"] = strings.Join(e.LocalIPv4s, " ")
			facts[key+"subnet_ipv4_cidr_block"] = e.Subnet
		}
	}
	facts["eni_macs"] = strings.Join(macs, " ")
}
