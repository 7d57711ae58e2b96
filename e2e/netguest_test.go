//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// netGuest is a guest network namespace with eth0..eth2 (MACs
// 02:00:00:00:00:10..12), whose veth peers p0..p2 sit in a second
// namespace holding the routers 10.0.0.1, 10.1.0.1, 10.2.0.1 and a client
// address 192.0.2.9. eth0 is the primary: 10.0.0.2/24, default via
// 10.0.0.1. Both namespaces are removed when the test ends.
type netGuest struct {
	t        *testing.T
	ns, peer string
}

func newNetGuest(t *testing.T) *netGuest {
	t.Helper()
	needRoot(t)
	g := &netGuest{t: t, ns: fmt.Sprintf("bsg%d", os.Getpid()), peer: fmt.Sprintf("bsgp%d", os.Getpid())}
	for _, ns := range []string{g.ns, g.peer} {
		g.ip("netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	}
	for i := 0; i < 3; i++ {
		g.ip("link", "add", fmt.Sprintf("eth%d", i), "netns", g.ns, "address", fmt.Sprintf("02:00:00:00:00:1%d", i),
			"type", "veth", "peer", "name", fmt.Sprintf("p%d", i), "netns", g.peer)
		g.ip("-n", g.peer, "link", "set", fmt.Sprintf("p%d", i), "up")
		g.ip("-n", g.peer, "addr", "add", fmt.Sprintf("10.%d.0.1/24", i), "dev", fmt.Sprintf("p%d", i))
	}
	g.ip("-n", g.peer, "addr", "add", "192.0.2.9/32", "dev", "lo")
	g.ip("-n", g.peer, "link", "set", "lo", "up")
	g.ip("-n", g.ns, "link", "set", "lo", "up")
	g.ip("-n", g.ns, "link", "set", "eth0", "up")
	g.ip("-n", g.ns, "addr", "add", "10.0.0.2/24", "dev", "eth0")
	g.ip("-n", g.ns, "route", "add", "default", "via", "10.0.0.1", "dev", "eth0")
	return g
}

func (g *netGuest) ip(args ...string) string {
	g.t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		g.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// primary is what must not change on eth0: link, addresses, routes.
func (g *netGuest) primary() string {
	return g.addrs("eth0") + g.ip("-n", g.ns, "route", "show", "dev", "eth0")
}

// addrs is `ip addr` for the guest (devs, or all), without the kernel's
// duplicate address detection state: a link-local address stops being
// "tentative" on its own a moment after the link comes up.
func (g *netGuest) addrs(devs ...string) string {
	args := []string{"-n", g.ns, "addr", "show"}
	if len(devs) == 1 {
		args = append(args, "dev", devs[0])
	}
	return strings.ReplaceAll(g.ip(args...), " tentative", "")
}

// listen opens a TCP listener on 127.0.0.1 inside the guest namespace (a
// socket stays in the namespace it was made in), for the IMDS emulator.
func (g *netGuest) listen() net.Listener {
	g.t.Helper()
	type res struct {
		ln  net.Listener
		err error
	}
	ch := make(chan res, 1)
	go func() {
		// The thread is switched to the guest namespace and back; if the
		// way back fails it stays locked and dies with this goroutine.
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer orig.Close()
		target, err := os.Open("/run/netns/" + g.ns)
		if err != nil {
			ch <- res{err: err}
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			ch <- res{err: err}
			return
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			if ln != nil {
				ln.Close()
			}
			ch <- res{err: fmt.Errorf("back to the test's namespace: %w", err)}
			return
		}
		runtime.UnlockOSThread()
		ch <- res{ln, err}
	}()
	r := <-ch
	if r.err != nil {
		g.t.Fatalf("listen in %s: %v", g.ns, r.err)
	}
	return r.ln
}

func (g *netGuest) txPackets(dev string) int {
	g.t.Helper()
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

// replyDevice pings addr in the guest from 192.0.2.9, beyond every
// router, and says which guest device sent the replies.
func (g *netGuest) replyDevice(addr string) string {
	g.t.Helper()
	devs := []string{"eth0", "eth1", "eth2"}
	before := map[string]int{}
	for _, d := range devs {
		before[d] = g.txPackets(d)
	}
	if out, err := exec.Command("ip", "netns", "exec", g.peer, "ping", "-n", "-c", "5", "-i", "0.05", "-W", "2", "-I", "192.0.2.9", addr).CombinedOutput(); err != nil {
		g.t.Fatalf("ping %s: %v\n%s", addr, err, out)
	}
	var sent []string
	var counts []string
	for _, d := range devs {
		n := g.txPackets(d) - before[d]
		counts = append(counts, fmt.Sprintf("%s %d", d, n))
		if n >= 5 {
			sent = append(sent, d)
		}
	}
	if len(sent) == 1 {
		return sent[0]
	}
	return "unclear (" + strings.Join(counts, ", ") + ")"
}
