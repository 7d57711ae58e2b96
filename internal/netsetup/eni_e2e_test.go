//go:build e2e

package netsetup

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

// eniEnv makes the test binary plan and apply the capability with the
// facts given as JSON in it, as the ec2 datasource publishes them.
const eniEnv = "BOOTSTRAP_NETSETUP_ENI"

func eniChild(spec string) int {
	fail := func(err error) int {
		fmt.Println("ERROR", err)
		return 1
	}
	var facts map[string]string
	if err := json.Unmarshal([]byte(spec), &facts); err != nil {
		return fail(err)
	}
	l, err := config.ParseLayer("none", []byte("{}\n"))
	if err != nil {
		return fail(err)
	}
	m, err := config.Merge([]*config.Layer{l})
	if err != nil {
		return fail(err)
	}
	cfg, err := m.Decode(facts)
	if err != nil {
		return fail(err)
	}
	dir, err := os.MkdirTemp("", "eni-root")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)
	root, err := rootfs.Open(dir)
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(os.Stdout, nil))
	in := &capability.Input{Config: cfg, Facts: facts, Datasource: "ec2", Redactor: &secret.Redactor{}, Log: log, Root: root, Scratch: dir}
	steps, err := Network{}.Steps(context.Background(), in)
	if err != nil {
		return fail(err)
	}
	(&plan.Plan{Instance: "i-e2e", Datasource: "ec2", Steps: steps}).Write(os.Stdout)
	env := &plan.Env{Root: root, Log: log, Redactor: in.Redactor, Scratch: dir}
	for _, s := range steps {
		for _, a := range s.Actions {
			if err := a.Apply(context.Background(), env); err != nil {
				return fail(err)
			}
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
	enis, _ := json.Marshal(map[string]string{
		"eni_macs":                                "020000000010 020000000011",
		"eni_020000000010_device_number":          "0",
		"eni_020000000011_device_number":          "1",
		"eni_020000000011_local_ipv4s":            "10.1.0.10\n10.1.0.11",
		"eni_020000000011_subnet_ipv4_cidr_block": "10.1.0.0/24",
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
	if !strings.Contains(out, "step network:eni (always)\n  configure eth1 (ENI 02:00:00:00:00:11 device-number 1: 10.1.0.10, 10.1.0.11 in 10.1.0.0/24; table 10001 (default via 10.1.0.1)") {
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
