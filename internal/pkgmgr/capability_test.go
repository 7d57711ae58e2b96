package pkgmgr

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/plan"
)

func applyAll(t *testing.T, steps []*plan.Step, env *plan.Env) error {
	t.Helper()
	for _, s := range steps {
		for _, a := range s.Actions {
			if err := a.Apply(context.Background(), env); err != nil {
				return err
			}
		}
	}
	return nil
}

func TestFakeThroughTheCapability(t *testing.T) {
	fake := &Fake{ManagerName: "apt", Packages: map[string]string{"curl": "7.88"},
		Offers: map[string][]Offer{"hello": {{Version: "2.10-3", From: "main"}}, "curl": {{Version: "7.88"}}}}
	var logs bytes.Buffer
	in, env := testInput(t, t.TempDir(), "packages:\n  update: true\n  install: [hello, curl]\n", &logs)
	c := Capability{Manager: fake, Geteuid: func() int { return 0 }}
	steps, err := c.Steps(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyAll(t, steps, env); err != nil {
		t.Fatal(err)
	}
	want := []string{"installed hello curl", "update", "available hello", "install hello"}
	if !slices.Equal(fake.Calls, want) {
		t.Fatalf("calls %q, want %q", fake.Calls, want)
	}
	// A second plan (another instance from this image) finds everything
	// installed and plans no manager call at all.
	fake.Calls = nil
	steps, err = c.Steps(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if err := applyAll(t, steps, env); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(fake.Calls, []string{"installed hello curl"}) {
		t.Fatalf("second run calls %q, want only the installed query", fake.Calls)
	}
	for _, a := range steps[0].Actions {
		if !strings.Contains(a.Describe().String(), "already installed") {
			t.Errorf("%s: want already installed", a.Describe())
		}
	}
}

func TestDoneStepAsksNothing(t *testing.T) {
	fake := &Fake{}
	var logs bytes.Buffer
	in, _ := testInput(t, t.TempDir(), "packages:\n  install: [hello=1]\n  files:\n    - {source: 's3://b/x.deb', sha256: "+strings.Repeat("0", 64)+"}\n", &logs)
	in.Done = func(step string) bool { return step == StepPackages }
	steps, err := Capability{Manager: fake}.Steps(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	if len(fake.Calls) != 0 || len(steps) != 1 || !steps[0].Done || len(steps[0].Actions) != 2 {
		t.Fatalf("calls %q, steps %+v", fake.Calls, steps)
	}
	if got := steps[0].Actions[1].Describe().String(); got != "package from s3://b/x.deb sha256:"+strings.Repeat("0", 64) {
		t.Errorf("done file described as %q", got)
	}
}

func TestNothingConfiguredPlansNothing(t *testing.T) {
	var logs bytes.Buffer
	in, _ := testInput(t, t.TempDir(), "packages:\n  update: true\n", &logs)
	steps, err := Capability{Manager: &Fake{}}.Steps(context.Background(), in)
	if err != nil || steps != nil {
		t.Fatalf("steps %v, err %v", steps, err)
	}
}

func TestStagedFileTamperedAfterPlan(t *testing.T) {
	srv := t.TempDir()
	os.WriteFile(filepath.Join(srv, "x_1.0_all.deb"), []byte(aDeb), 0o644)
	sum := sha256.Sum256([]byte(aDeb))
	fake := &Fake{ManagerName: "apt"}
	var logs bytes.Buffer
	root := t.TempDir()
	in, env := testInput(t, root, "packages:\n  files:\n    - source: file://"+srv+"/x_1.0_all.deb\n      sha256: "+hex.EncodeToString(sum[:])+"\n", &logs)
	steps, err := Capability{Manager: fake, Geteuid: func() int { return 0 }}.Steps(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(in.Scratch)
	if len(ents) != 1 {
		t.Fatalf("scratch holds %v", ents)
	}
	os.WriteFile(filepath.Join(in.Scratch, ents[0].Name()), []byte("evil"), 0o644)
	err = applyAll(t, steps, env)
	if err == nil || !strings.Contains(err.Error(), "changed since it was verified") || !strings.Contains(err.Error(), "nothing installed") {
		t.Fatalf("err = %v", err)
	}
	if slices.ContainsFunc(fake.Calls, func(c string) bool { return strings.HasPrefix(c, "install") }) {
		t.Errorf("installed after all: %q", fake.Calls)
	}
	if _, err := os.Stat(filepath.Join(root, filesDir)); !os.IsNotExist(err) {
		t.Errorf("%s left in the root: %v", filesDir, err)
	}
}

func TestChrootPreparation(t *testing.T) {
	host, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Skip("this host has no /etc/resolv.conf to copy")
	}
	for _, tt := range []struct {
		name       string
		root       []string
		wantResolv string // during fn
		wantAfter  bool   // resolv.conf still there after
	}{
		{"none: the host's, removed after", []string{"etc/", "usr/sbin/"}, string(host), false},
		{"its own: kept", []string{"etc/resolv.conf=nameserver 192.0.2.1\n", "usr/sbin/"}, "nameserver 192.0.2.1\n", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			root := makeRoot(t, tt.root...)
			var logs bytes.Buffer
			in, _ := testInput(t, root, "version: 1\n", &logs)
			tx := &transaction{mgr: &Fake{ManagerName: "apt"}, root: root}
			err := tx.inRoot(in.Log, func() error {
				got, _ := os.ReadFile(filepath.Join(root, "etc/resolv.conf"))
				if string(got) != tt.wantResolv {
					t.Errorf("resolv.conf during the run = %q, want %q", got, tt.wantResolv)
				}
				policy, _ := os.ReadFile(filepath.Join(root, "usr/sbin/policy-rc.d"))
				if !strings.Contains(string(policy), "exit 101") {
					t.Errorf("policy-rc.d = %q", policy)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = os.Stat(filepath.Join(root, "etc/resolv.conf"))
			if (err == nil) != tt.wantAfter {
				t.Errorf("resolv.conf after: %v, want there=%v", err, tt.wantAfter)
			}
			if _, err := os.Stat(filepath.Join(root, "usr/sbin/policy-rc.d")); err == nil {
				t.Error("policy-rc.d left behind")
			}
			if copied := strings.Contains(logs.String(), "copied the host's /etc/resolv.conf"); copied == tt.wantAfter {
				t.Errorf("log says copied=%v: %s", copied, logs.String())
			}
		})
	}
}

func TestRpmMatches(t *testing.T) {
	m := &rpmDB{}
	for _, tt := range []struct {
		installed, pin string
		want           bool
	}{
		{"2.12.1-5.fc40", "2.12.1-5.fc40", true},
		{"2.12.1-5.fc40", "2.12.1", true},
		{"2.12.1-5.fc40", "2.12", false},
		{"1:1.0.2k-24", "1.0.2k-24", true},
		{"1:1.0.2k-24", "1:1.0.2k-24", true},
		{"1:1.0.2k-24", "2:1.0.2k-24", false},
	} {
		if got := m.Matches(tt.installed, tt.pin); got != tt.want {
			t.Errorf("Matches(%q, %q) = %v", tt.installed, tt.pin, got)
		}
	}
}
