package puppet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/fetch"
	"github.com/opsboot/bootstrap/internal/pkgmgr"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
)

const password = "Tr0ub4dor&3-challenge"

var facts = map[string]string{
	"instance_id": "i-0123456789abcdef0", "region": "eu-west-1", "availability_zone": "eu-west-1a",
	"ami_id": "ami-0abc1234", "account_id": "123456789012", "hostname": "ip-10-0-0-12.eu-west-1.compute.internal",
}

// memFetch serves sources from memory.
type memFetch map[string]string

func (m memFetch) Bytes(_ context.Context, src, _ string, limit int64) ([]byte, error) {
	v, ok := m[src]
	if !ok {
		return nil, fmt.Errorf("%s: not found", src)
	}
	if int64(len(v)) > limit {
		return nil, fmt.Errorf("%s: over %d bytes", src, limit)
	}
	return []byte(v), nil
}

func (m memFetch) File(_ context.Context, src, want, dir string) (*fetch.Blob, error) {
	v, ok := m[src]
	if !ok {
		return nil, fmt.Errorf("%s: not found", src)
	}
	sum := sha256.Sum256([]byte(v))
	got := hex.EncodeToString(sum[:])
	if want != "" && want != got {
		return nil, fmt.Errorf("%s: sha256 mismatch", src)
	}
	f, err := os.CreateTemp(dir, "blob-")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	f.WriteString(v)
	return &fetch.Blob{Path: f.Name(), Size: int64(len(v)), SHA256: got}, nil
}

// fakePuppet plays puppet agent: it checks csr_attributes.yaml is there
// (the CSR must never go out without it), then signs (writes the
// certificate) or leaves the CSR pending.
type fakePuppet struct {
	root   string
	exit   int
	sign   bool
	calls  [][]string
	csrSaw string
}

func (f *fakePuppet) Run(_ context.Context, s command.Spec, out func(string)) (command.Result, error) {
	f.calls = append(f.calls, s.Argv)
	if len(s.Argv) > 1 && s.Argv[1] == "agent" {
		b, err := os.ReadFile(filepath.Join(f.root, "etc/puppet/csr_attributes.yaml"))
		if err != nil {
			return command.Result{ExitCode: 1}, nil
		}
		f.csrSaw = string(b)
		if f.sign {
			p := filepath.Join(f.root, "var/lib/puppet/ssl/certs/i-0123456789abcdef0.pem")
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.WriteFile(p, []byte("cert"), 0o644)
		} else {
			out("Couldn't fetch certificate from CA server; you might still need to sign this agent's certificate (i-0123456789abcdef0).")
		}
	}
	return command.Result{ExitCode: f.exit, Attempts: 1}, nil
}

type bed struct {
	in   *capability.Input
	env  *plan.Env
	logs *bytes.Buffer
	dir  string
	pkgs *pkgmgr.Fake
	run  *fakePuppet
}

func newBed(t *testing.T, doc string) *bed {
	t.Helper()
	dir := t.TempDir()
	for p, content := range map[string]string{
		"etc/puppet/puppet.conf":            "# packaged\n[main]\nvardir = /var/cache/puppet\n",
		"lib/systemd/system/puppet.service": "[Service]\nExecStart=/usr/bin/puppet agent --no-daemonize\n[Install]\nWantedBy=multi-user.target\n",
		"etc/passwd":                        "root:x:0:0::/root:/bin/sh\n",
		"etc/group":                         "root:x:0:\n",
	} {
		os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	root, err := rootfs.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	cfg, err := config.ParseConfig("c.yaml", []byte(doc), facts)
	if err != nil {
		t.Fatal(err)
	}
	red := &secret.Redactor{}
	logs := &bytes.Buffer{}
	log := slog.New(red.Handler(slog.NewTextHandler(logs, nil)))
	b := &bed{logs: logs, dir: dir, run: &fakePuppet{root: dir, exit: 2, sign: true},
		pkgs: &pkgmgr.Fake{ManagerName: "apt", Packages: map[string]string{}, Offers: map[string][]pkgmgr.Offer{"puppet-agent": {{Version: "7.23.0-1", From: "bookworm/main"}}}}}
	b.in = &capability.Input{Config: cfg, Facts: facts, Datasource: "ec2", Redactor: red, Log: log, Root: root,
		Scratch: t.TempDir(), Fetcher: memFetch{"s3://secrets/puppet-pw": password + "\n", "s3://pki/ca.pem": "-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n"}}
	b.env = &plan.Env{Root: root, Log: log, Redactor: red, Scratch: b.in.Scratch}
	return b
}

func (b *bed) cap() Capability { return Capability{Runner: b.run, Manager: b.pkgs} }

func (b *bed) plan(t *testing.T) ([]*plan.Step, string) {
	t.Helper()
	steps, err := b.cap().Steps(context.Background(), b.in)
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, s := range steps {
		fmt.Fprintf(&text, "%s (%s)\n", s.Name, s.Frequency)
		for _, a := range s.Actions {
			fmt.Fprintf(&text, "  %s\n", a.Describe())
		}
	}
	return steps, text.String()
}

func applySteps(steps []*plan.Step, env *plan.Env) error {
	for _, s := range steps {
		if s.Done {
			continue
		}
		for _, a := range s.Actions {
			if err := a.Apply(context.Background(), env); err != nil {
				return fmt.Errorf("%s: %w", s.Name, err)
			}
		}
	}
	return nil
}

const enrolDoc = `puppet:
  conf:
    main: {server: puppet.example.com}
  ca_cert_source: s3://pki/ca.pem
  challenge_password_source: s3://secrets/puppet-pw
  environment: production
  csr_attributes:
    extension_requests: {pp_role: web}
`

func TestEnrol(t *testing.T) {
	b := newBed(t, enrolDoc)
	steps, text := b.plan(t)
	var names []string
	for _, s := range steps {
		names = append(names, s.Name)
	}
	if want := []string{StepInstall, StepConfig, StepEnrol, StepService}; !slices.Equal(names, want) {
		t.Fatalf("steps %q, want %q", names, want)
	}
	for _, want := range []string{
		"[main] server = puppet.example.com; [main] certname = i-0123456789abcdef0; [agent] environment = production; [agent] waitforcert = 10; [agent] maxwaitforcert = 300",
		"/etc/puppet/csr_attributes.yaml", "0640", "/var/lib/puppet/ssl/certs/ca.pem",
		"enrol i-0123456789abcdef0 with puppet.example.com:8140, waiting at most 5m",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
	if err := applySteps(steps, b.env); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(b.pkgs.Calls, "install puppet-agent") {
		t.Errorf("package calls %q: puppet-agent not installed", b.pkgs.Calls)
	}
	// The agent ran once, with the bounded wait, and saw the CSR attributes.
	if len(b.run.calls) != 1 || !strings.HasSuffix(strings.Join(b.run.calls[0], " "), "agent --test --waitforcert 10 --maxwaitforcert 300 --color=false") {
		t.Fatalf("puppet calls %q", b.run.calls)
	}
	for _, want := range []string{`1.2.840.113549.1.9.7: "` + password + `"`, `pp_instance_id: "i-0123456789abcdef0"`, `pp_image_name: "ami-0abc1234"`,
		`pp_region: "eu-west-1"`, `pp_zone: "eu-west-1a"`, `pp_cloudplatform: "aws"`, `pp_role: "web"`} {
		if !strings.Contains(b.run.csrSaw, want) {
			t.Errorf("csr_attributes.yaml the agent saw lacks %q:\n%s", want, b.run.csrSaw)
		}
	}
	fi, err := os.Stat(filepath.Join(b.dir, "etc/puppet/csr_attributes.yaml"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("csr_attributes.yaml: %v, mode %v; want 0640", err, fi.Mode())
	}
	conf, _ := os.ReadFile(filepath.Join(b.dir, "etc/puppet/puppet.conf"))
	if want := "# packaged\n[main]\nvardir = /var/cache/puppet\nserver = puppet.example.com\ncertname = i-0123456789abcdef0\n\n[agent]\nenvironment = production\nwaitforcert = 10\nmaxwaitforcert = 300\n"; string(conf) != want {
		t.Errorf("puppet.conf:\n%s\nwant\n%s", conf, want)
	}
	if l, err := os.Readlink(filepath.Join(b.dir, "etc/systemd/system/multi-user.target.wants/puppet.service")); err != nil {
		t.Errorf("puppet.service not enabled: %v", err)
	} else {
		t.Logf("enabled: %s", l)
	}
	for what, s := range map[string]string{"plan": text, "logs": b.logs.String()} {
		if strings.Contains(s, password) {
			t.Errorf("the %s show the challenge password:\n%s", what, s)
		}
	}
}

func TestEnrolFailures(t *testing.T) {
	tests := []struct {
		name string
		exit int
		sign bool
		want string
	}{
		{"unsigned", 1, false, "puppet agent exited 1 after 0s: the CSR for i-0123456789abcdef0 is pending on puppet.example.com:8140; sign it there (puppetserver ca sign --certname i-0123456789abcdef0), or check the autosign policy"},
		{"signed but the run failed", 1, true, "puppet agent exited 1"},
		{"failures", 4, true, "puppet agent exited 4: the catalog was applied with failures"},
		{"changes and failures", 6, true, "puppet agent exited 6: the catalog was applied with changes and failures"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t, enrolDoc)
			b.run.exit, b.run.sign = tt.exit, tt.sign
			steps, _ := b.plan(t)
			err := applySteps(steps, b.env)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want %q", err, tt.want)
			}
			if tt.sign && strings.Contains(err.Error(), "pending") {
				t.Errorf("a signed agent is not pending: %v", err)
			}
			if _, serr := os.Lstat(filepath.Join(b.dir, "etc/systemd/system/multi-user.target.wants/puppet.service")); serr == nil {
				t.Error("the service was enabled after a failed enrolment")
			}
		})
	}
}

func TestSecondRunDoesNotEnrol(t *testing.T) {
	b := newBed(t, enrolDoc)
	b.in.Done = func(step string) bool { return true }
	steps, text := b.plan(t)
	if err := applySteps(steps, b.env); err != nil {
		t.Fatal(err)
	}
	if len(b.run.calls) != 0 || len(b.pkgs.Calls) != 0 {
		t.Errorf("a done instance ran puppet %q, the manager %q", b.run.calls, b.pkgs.Calls)
	}
	if strings.Contains(text, password) {
		t.Error("plan shows the password")
	}
}

func TestImageBuild(t *testing.T) {
	b := newBed(t, enrolDoc)
	b.in.Image = true
	steps, text := b.plan(t)
	if len(steps) != 2 || steps[0].Name != StepInstall || steps[1].Name != StepConfig {
		t.Fatalf("image build plans %s", text)
	}
	for _, bad := range []string{"certname", "csr_attributes", "agent --test"} {
		if strings.Contains(strings.ReplaceAll(text, "certname, csr_attributes.yaml, enrolment", ""), bad) {
			t.Errorf("image plan has %s:\n%s", bad, text)
		}
	}
	if !strings.Contains(text, "left to first boot") {
		t.Errorf("image plan does not say what is left to first boot:\n%s", text)
	}
	if err := applySteps(steps, b.env); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(b.dir, "etc/puppet/csr_attributes.yaml")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("image has csr_attributes.yaml: %v", err)
	}
	// A node key in the image fails the build.
	os.MkdirAll(filepath.Join(b.dir, "var/lib/puppet/ssl/private_keys"), 0o700)
	os.WriteFile(filepath.Join(b.dir, "var/lib/puppet/ssl/private_keys/old.pem"), []byte("k"), 0o600)
	steps, _ = b.plan(t)
	if err := applySteps(steps, b.env); err == nil || !strings.Contains(err.Error(), "must not carry a node's key") {
		t.Errorf("error %v, want the key refused", err)
	}
}

func TestCertnameAtPlanTime(t *testing.T) {
	tests := []struct {
		name, doc string
		facts     map[string]string
		want      string
	}{
		{"no instance-id", "puppet: {}\n", map[string]string{}, "c.yaml:1:9: puppet: the certname is the instance-id, and this run has none"},
		{"fqdn with a bad character", "puppet:\n  conf:\n    agent: {certname: '%f'}\n", map[string]string{"instance_id": "i-1", "hostname": "a b"}, `c.yaml:3:23: puppet.conf.agent.certname: "a b" is not a certname`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBed(t, tt.doc)
			b.in.Facts = tt.facts
			_, err := b.cap().Steps(context.Background(), b.in)
			if err == nil || !badinput.Is(err) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want bad input %q", err, tt.want)
			}
		})
	}
}

func TestNoSectionNoSteps(t *testing.T) {
	b := newBed(t, "version: 1\n")
	if steps, _ := b.plan(t); len(steps) != 0 {
		t.Errorf("planned %d steps without puppet:", len(steps))
	}
}

func TestRepoInstall(t *testing.T) {
	b := newBed(t, `puppet:
  install_type: repo
  package_name: openvox-agent
  repo: {url: "https://apt.voxpupuli.org", suite: debian12, key_source: "s3://pki/openvox.asc"}
  challenge_password: x-pw
  conf: {main: {server: puppet.example.com}}
`)
	b.in.Fetcher = memFetch{"s3://pki/openvox.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----\nk\n-----END PGP PUBLIC KEY BLOCK-----\n"}
	b.pkgs.Offers = map[string][]pkgmgr.Offer{"openvox-agent": {{Version: "8.1", From: "voxpupuli"}}}
	steps, text := b.plan(t)
	for _, want := range []string{
		"/etc/apt/keyrings/bootstrap-puppet.asc",
		"/etc/apt/sources.list.d/bootstrap-puppet.list",
		"/etc/puppetlabs/puppet/puppet.conf", // not installed yet: a vendor repository's layout is AIO
		"/opt/puppetlabs/bin/puppet agent --test",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan lacks %q:\n%s", want, text)
		}
	}
	if err := applySteps(steps[:1], b.env); err != nil {
		t.Fatal(err)
	}
	list, _ := os.ReadFile(filepath.Join(b.dir, "etc/apt/sources.list.d/bootstrap-puppet.list"))
	if !strings.Contains(string(list), "deb [signed-by=/etc/apt/keyrings/bootstrap-puppet.asc] https://apt.voxpupuli.org debian12 openvox8\n") {
		t.Errorf("sources list: %q", list)
	}
	if want := []string{"installed openvox-agent", "update", "available openvox-agent", "install openvox-agent"}; !slices.Equal(b.pkgs.Calls, want) {
		t.Errorf("manager calls %q, want %q", b.pkgs.Calls, want)
	}
}
