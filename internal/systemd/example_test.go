package systemd_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/systemd"
)

// A capability (Chef's, Puppet's) builds its periodic-run service and timer
// from Go values and appends the actions to its step.
func ExampleActions() {
	dir, _ := os.MkdirTemp("", "root")
	defer os.RemoveAll(dir)
	root, _ := rootfs.Open(dir)
	defer root.Close()

	svc, _ := systemd.NewFile("", systemd.Sections(
		systemd.Section{Name: "Unit", Options: [][2]string{{"Description", "Puppet agent run"}}},
		systemd.Section{Name: "Service", Options: [][2]string{{"Type", "oneshot"}, {"ExecStart", "/opt/puppetlabs/bin/puppet agent --onetime --no-daemonize"}}},
	))
	timer, _ := systemd.NewFile("", systemd.Sections(
		systemd.Section{Name: "Timer", Options: [][2]string{{"OnCalendar", "*:0/30"}, {"RandomizedDelaySec", "5min"}}},
		systemd.Section{Name: "Install", Options: [][2]string{{"WantedBy", "timers.target"}}},
	))
	enable := true
	actions, err := systemd.Actions(root,
		systemd.Unit{Name: "puppet-run.service", Body: svc},
		systemd.Unit{Name: "puppet-run.timer", Body: timer, Enable: &enable, Start: true},
	)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, a := range actions {
		d := a.Describe()
		fmt.Println(strings.TrimSpace(strings.Join([]string{d.Kind, d.Path, d.Mode, d.Note}, " ")))
	}
	// Output:
	// service /etc/systemd/system/puppet-run.service 0644
	// service /etc/systemd/system/puppet-run.timer 0644 enable: timers.target.wants/puppet-run.timer -> /etc/systemd/system/puppet-run.timer; starts at boot: systemd is not running this root
}
