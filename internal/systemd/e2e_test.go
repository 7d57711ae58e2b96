//go:build e2e

package systemd

import (
	"context"
	"github.com/opsboot/bootstrap/internal/testbed"
	"io/fs"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// packagedRoot is a root with units where packages put them, and a Debian
// style /lib -> usr/lib.
func packagedRoot(t *testing.T) string {
	dir := t.TempDir()
	symlinkHost(t, dir, "usr/lib", "lib")
	writeHost(t, dir, "usr/lib/systemd/system/lib.service", svcText+"[Install]\nWantedBy=multi-user.target\nAlias=lib-alias.service\n")
	writeHost(t, dir, "usr/lib/systemd/system/drop.service", svcText+"[Install]\nWantedBy=old.target\n")
	writeHost(t, dir, "etc/systemd/system/drop.service.d/10-install.conf", "[Install]\nWantedBy=\nRequiredBy=x.target\n")
	writeHost(t, dir, "usr/lib/systemd/system/tpl@.service", svcText+"[Install]\nWantedBy=multi-user.target getty@%i.service\nDefaultInstance=one\n")
	writeHost(t, dir, "usr/lib/systemd/system/apt-daily.timer", "[Timer]\nOnCalendar=daily\n[Install]\nWantedBy=timers.target\n")
	return dir
}

// ourUnits are written by us on one root and copied by hand onto the
// other before systemctl enables them there.
func ourUnits(t *testing.T) []Unit {
	units := periodic(t)
	units[0].Body = mustParse(t, "", string(units[0].Body.Data)+"\n[Install]\nWantedBy=multi-user.target\nRequiredBy=foo.target\nAlias=chef.service\nAlso=chef-client.timer\n")
	units[0].Enable = yes()
	return units
}

// TestE2EEnableMatchesSystemctl enables the same units on two roots, ours
// offline and with `systemctl --root`, and compares the link trees; then
// disables and masks on both and compares again.
func TestE2EEnableMatchesSystemctl(t *testing.T) {
	systemctl := testbed.Need(t, "systemctl")
	ours, theirs := packagedRoot(t), packagedRoot(t)
	root := openRoot(t, ours)
	env, _ := newEnv(t, root)
	units := ourUnits(t)
	for _, u := range units {
		writeHost(t, theirs, filepath.Join("etc/systemd/system", u.Name), string(u.Body.Data))
	}
	enable := append(units, Unit{Name: "lib.service", Enable: yes()}, Unit{Name: "drop.service", Enable: yes()},
		Unit{Name: "tpl@.service", Enable: yes()}, Unit{Name: "tpl@two.service", Enable: yes()})
	actions, err := Actions(root, enable...)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, env, actions)
	run(t, systemctl, "--root="+theirs, "enable", "chef-client.service", "chef-client.timer", "lib.service", "drop.service", "tpl@.service", "tpl@two.service")
	compare := func(stage string) {
		t.Helper()
		got, want := append(linkTree(t, ours), dirTree(t, ours)...), append(linkTree(t, theirs), dirTree(t, theirs)...)
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("%s: our links:\n%s\nsystemctl's:\n%s", stage, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		t.Logf("%s: %d links and directories agree", stage, len(got))
	}
	compare("enable")

	actions, err = Actions(root, Unit{Name: "lib.service", Enable: no()}, Unit{Name: "chef-client.service", Enable: no()},
		Unit{Name: "apt-daily.timer", Mask: yes()})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, env, actions)
	run(t, systemctl, "--root="+theirs, "disable", "lib.service", "chef-client.service")
	run(t, systemctl, "--root="+theirs, "mask", "apt-daily.timer")
	compare("disable and mask")

	actions, err = Actions(root, Unit{Name: "apt-daily.timer", Mask: no()})
	if err != nil {
		t.Fatal(err)
	}
	apply(t, env, actions)
	run(t, systemctl, "--root="+theirs, "unmask", "apt-daily.timer")
	compare("unmask")
}

// TestE2EAnalyzeVerify has systemd-analyze check the units we write, from
// Go values and from config text.
func TestE2EAnalyzeVerify(t *testing.T) {
	analyze := testbed.Need(t, "systemd-analyze")
	dir := t.TempDir()
	root := openRoot(t, dir)
	env, _ := newEnv(t, root)
	units := ourUnits(t)
	units = append(units, Unit{Name: "web.service", Body: mustParse(t, "", "# from config\n[Unit]\nDescription=Web\n\n[Service]\nExecStart=/bin/true \\\n  --flag\nRestart=on-failure\n[Install]\nWantedBy=multi-user.target\n"),
		Dropins: []*File{mustParse(t, "10-env.conf", "[Service]\nEnvironment=A=1\n")}})
	actions, err := Actions(root, units...)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, env, actions)
	var files []string
	for _, u := range units {
		files = append(files, filepath.Join(dir, "etc/systemd/system", u.Name))
	}
	out := run(t, analyze, append([]string{"verify", "--man=no"}, files...)...)
	if strings.TrimSpace(out) != "" {
		t.Errorf("systemd-analyze verify warns:\n%s", out)
	}
}

// dirTree lists the directories under etc/systemd/system: disabling
// removes a .wants directory it empties, as systemctl does.
func dirTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	base := filepath.Join(dir, "etc/systemd/system")
	err := filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && !strings.HasSuffix(p, ".d") {
			out = append(out, "dir "+strings.TrimPrefix(p, dir))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
