package netsetup

import (
	"context"
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/plan"
)

// recorder is a command.Runner that records argv and fails the commands
// named in exit.
type recorder struct {
	ran  []string
	exit map[string]int
}

func (r *recorder) Run(ctx context.Context, s command.Spec, out func(string)) (command.Result, error) {
	line := strings.Join(s.Argv, " ")
	r.ran = append(r.ran, line)
	return command.Result{ExitCode: r.exit[s.Argv[0]], Tail: []string{"boom"}}, nil
}

// TestReloadOnlyWhenTheFileChanged: the stack's per-device reload runs
// after the device's own file (or a shared file) changed, never
// otherwise, and never a stack-wide command.
func TestReloadOnlyWhenTheFileChanged(t *testing.T) {
	f := Iface{Entry: 0, Name: "eth1", Addr: netip.MustParsePrefix("10.0.0.2/24")}
	tests := []struct {
		name     string
		renderer string
		changed  string // device id whose file changed; "-" for none
		exit     map[string]int
		want     string
		err      string
	}{
		{"networkd, file changed", "networkd", "eth1", nil, "networkctl reload; networkctl reconfigure eth1", ""},
		{"networkd, another device's file changed", "networkd", "eth2", nil, "", ""},
		{"nothing changed", "networkmanager", "-", nil, "", ""},
		{"NetworkManager", "networkmanager", "eth1", nil,
			"nmcli connection load /etc/NetworkManager/system-connections/bootstrap-eth1.nmconnection; nmcli connection up uuid " + uuid5("bootstrap-eth1"), ""},
		{"netplan's shared file", "netplan", "", nil, "netplan generate; networkctl reload; networkctl reconfigure eth1", ""},
		{"ifupdown: a device not up is fine", "ifupdown", "", map[string]int{"ifdown": 1}, "ifdown --force eth1; ifup eth1", ""},
		{"ifupdown: ifup failing fails", "ifupdown", "", map[string]int{"ifup": 1}, "ifdown --force eth1; ifup eth1", "reload eth1: ifup eth1 exited with status 1: boom"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := stackFor(tt.renderer)
			files, _ := renderers[tt.renderer].Render([]Iface{f}, st, func(string) ([]byte, error) { return nil, nil })
			rec := &recorder{exit: tt.exit}
			c := newConfigure(f, st, files, &fakeLive{}, rec, "", &changes{})
			if tt.changed != "-" {
				c.ch.mark(tt.changed)
			}
			err := c.Apply(context.Background(), &plan.Env{Log: slog.New(slog.DiscardHandler)})
			if got := strings.Join(rec.ran, "; "); got != tt.want {
				t.Errorf("ran %q, want %q", got, tt.want)
			}
			if (err == nil) != (tt.err == "") || err != nil && err.Error() != tt.err {
				t.Errorf("err = %v, want %q", err, tt.err)
			}
			for _, line := range rec.ran {
				if strings.Contains(line, "netplan apply") || strings.Contains(line, "restart") {
					t.Errorf("ran a stack-wide command: %s", line)
				}
			}
		})
	}
}
