//go:build e2e

package netsetup

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/plan"
)

// eniEnv makes the test binary configure the ENIs given as JSON in it.
const eniEnv = "BOOTSTRAP_NETSETUP_ENI"

func eniChild(spec string) int {
	var enis []ENI
	if err := json.Unmarshal([]byte(spec), &enis); err != nil {
		fmt.Println("ERROR", err)
		return 2
	}
	links, err := netlinkLive{}.List()
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	actions, err := ENIActions(enis, links)
	if err != nil {
		fmt.Println("ERROR", err)
		return 2
	}
	env := &plan.Env{Log: slog.New(slog.NewTextHandler(os.Stdout, nil))}
	for _, a := range actions {
		fmt.Println(a.Describe().String())
		if err := a.Apply(context.Background(), env); err != nil {
			fmt.Println("ERROR", err)
			return 1
		}
	}
	return 0
}

func (g *guest) txPackets(dev string) int {
	var links []struct {
		Stats struct {
			TX struct {
				Packets int `json:"packets"`
			} `json:"tx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(g.ip("-n", g.ns, "-s", "-j", "link", "show", "dev", dev)), &links); err != nil || len(links) != 1 {
		g.t.Fatalf("ip -s link show %s: %v", dev, err)
	}
	return links[0].Stats.TX.Packets
}

// replyDevice pings addr in the guest from a client address beyond the
// ENI's router and says which guest device sent the replies.
func (g *guest) replyDevice(addr string) string {
	g.t.Helper()
	eth0, eth1 := g.txPackets("eth0"), g.txPackets("eth1")
	if out, err := run(g.t, nil, "ip", "netns", "exec", g.peer, "ping", "-n", "-c", "5", "-i", "0.05", "-W", "2", "-I", "192.0.2.9", addr); err != nil {
		g.t.Fatalf("ping %s: %v\n%s", addr, err, out)
	}
	d0, d1 := g.txPackets("eth0")-eth0, g.txPackets("eth1")-eth1
	switch {
	case d1 >= 5 && d0 < 5:
		return "eth1"
	case d0 >= 5 && d1 < 5:
		return "eth0"
	}
	return fmt.Sprintf("unclear (eth0 sent %d, eth1 %d)", d0, d1)
}

// TestSecondaryENIRouting: a secondary ENI on eth1 gets its addresses, a
// table and a rule per address, so a reply to a ping sent to its second
// address leaves by eth1, not by the primary's default route; a rerun
// changes nothing.
func TestSecondaryENIRouting(t *testing.T) {
	g := newGuest(t)
	// A client beyond the ENI's router: the reply's way back is the question.
	g.ip("-n", g.peer, "addr", "add", "192.0.2.9/32", "dev", "lo")
	g.ip("-n", g.peer, "link", "set", "lo", "up")
	g.ip("-n", g.ns, "link", "set", "eth1", "up")
	g.ip("-n", g.ns, "addr", "add", "10.1.0.10/24", "dev", "eth1") // the primary private address, as DHCP gives it
	if dev := g.replyDevice("10.1.0.10"); dev != "eth0" {
		t.Fatalf("before: replies leave by %s; the control must show the primary's route", dev)
	}
	enis, _ := json.Marshal([]ENI{
		{MAC: "02:00:00:00:00:10", DeviceNumber: 0},
		{MAC: "02:00:00:00:00:11", DeviceNumber: 1, LocalIPv4s: mustAddrs("10.1.0.10", "10.1.0.11"), Subnet: mustPrefix("10.1.0.0/24")},
	})
	eth0 := g.state("eth0")
	runENI := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", g.ns, os.Args[0])
		cmd.Env = append(os.Environ(), eniEnv+"="+string(enis))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("configure ENIs: %v\n%s", err, out)
		}
		return string(out)
	}
	start := time.Now()
	out := runENI()
	took := time.Since(start)
	if !strings.Contains(out, "configure eth1 (ENI 02:00:00:00:00:11 device-number 1: 10.1.0.10, 10.1.0.11 in 10.1.0.0/24; table 10001 (default via 10.1.0.1)") {
		t.Errorf("plan line:\n%s", out)
	}
	rules := g.ip("-n", g.ns, "-4", "rule", "show")
	for _, want := range []string{"10001:\tfrom 10.1.0.10 lookup 10001", "10001:\tfrom 10.1.0.11 lookup 10001"} {
		if !strings.Contains(rules, want) {
			t.Errorf("rules lack %q:\n%s", want, rules)
		}
	}
	if table := g.ip("-n", g.ns, "-4", "route", "show", "table", "10001"); !strings.Contains(table, "default via 10.1.0.1 dev eth1") {
		t.Errorf("table 10001:\n%s", table)
	}
	if dev := g.replyDevice("10.1.0.11"); dev != "eth1" {
		t.Errorf("replies to the second address leave by %s, want eth1", dev)
	}
	if after := g.state("eth0"); after != eth0 {
		t.Errorf("eth0 changed:\n%s\n%s", eth0, after)
	}
	if out := runENI(); strings.Contains(out, "network changed") {
		t.Errorf("rerun changed something:\n%s", out)
	}
	t.Logf("ENI configured in %s", took.Round(time.Millisecond))
}

func mustAddrs(s ...string) []netip.Addr {
	out := make([]netip.Addr, len(s))
	for i, a := range s {
		out[i] = netip.MustParseAddr(a)
	}
	return out
}

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }
