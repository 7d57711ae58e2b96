// Package puppet is the puppet: capability: the agent installed through the
// root's package manager, puppet.conf edited in place, csr_attributes.yaml
// with the instance's AWS facts and the challenge password written durably
// before any agent command (so the CSR can never go out without them), a
// first run whose wait for the certificate is bounded and whose failure
// says which CSR is pending where, then the agent's service. It also holds
// the autosign policy that puppetserver runs (bootstrap autosign).
//
// An image build installs and writes the static configuration only: a
// node's certname, CSR attributes, certificate and key belong to the
// instance, never to an image its clones share.
package puppet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/fetch"
	"github.com/opsboot/bootstrap/internal/pkgmgr"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
	"github.com/opsboot/bootstrap/internal/systemd"
)

// Step names: keys of the per-instance records, never renamed.
const (
	StepInstall = "puppet:install"
	StepConfig  = "puppet:config"
	StepEnrol   = "puppet:enrol"
	StepService = "puppet:service"
)

// Limits on what is fetched into memory.
const (
	maxPassword = 4 << 10
	maxCACert   = 1 << 20
	maxRepoKey  = 256 << 10
)

// runSlack is how long the first run may take besides the wait for its
// certificate: fetching and applying the catalog.
const runSlack = 30 * time.Minute

// Capability is the puppet: section. The zero value is the real one.
type Capability struct {
	// Runner runs puppet and the package manager (nil: command.Exec).
	Runner command.Runner
	// Manager replaces package manager detection (tests: a pkgmgr.Fake).
	Manager pkgmgr.Manager
}

var _ capability.Capability = Capability{}

// Name implements capability.Capability.
func (Capability) Name() string { return "puppet" }

// Steps implements capability.Capability.
func (c Capability) Steps(ctx context.Context, in *capability.Input) ([]*plan.Step, error) {
	p := in.Config.Puppet
	if p == nil {
		return nil, nil
	}
	l := DetectLayout(in.Root, p)
	var steps []*plan.Step
	inst, err := c.install(ctx, in, p, l)
	if err != nil {
		return nil, err
	}
	if inst != nil {
		steps = append(steps, inst)
	}
	certname, err := nodeCertname(in, p)
	if err != nil {
		return nil, err
	}
	cfg, err := configure(ctx, in, p, l, certname)
	if err != nil {
		return nil, err
	}
	steps = append(steps, cfg)
	if in.Image {
		return steps, nil
	}
	if p.Masterless != nil {
		a, err := applyStep(ctx, in, p, l, c.Runner)
		if err != nil {
			return nil, err
		}
		return append(steps, a), nil
	}
	if p.ExecEnabled() {
		steps = append(steps, &plan.Step{Name: StepEnrol, Frequency: plan.PerInstance, Done: in.IsDone(StepEnrol),
			Actions: []plan.Action{newEnrol(in, p, l, certname, c.Runner)}})
	}
	if p.StartServiceEnabled() {
		steps = append(steps, &plan.Step{Name: StepService, Frequency: plan.PerInstance, Done: in.IsDone(StepService),
			Actions: []plan.Action{&service{unit: l.Service}}})
	}
	return steps, nil
}

// nodeCertname expands the configured certname (default the instance-id),
// lower-cased as cloud-init does, and checks it: at plan time, because the
// instance-id and host name are facts.
func nodeCertname(in *capability.Input, p *config.Puppet) (string, error) {
	tmpl, sec := p.Conf.Lookup("certname")
	at := "puppet"
	if sec != "" {
		at = "puppet.conf." + sec + ".certname"
	}
	if in.Image {
		return "", nil
	}
	if in.Instance() == "" && (tmpl == "" || strings.Contains(tmpl, "%i")) {
		return "", badinput.Wrap(in.Config.Errorf(at, "the certname is the instance-id, and this run has none (datasource %s); set puppet.conf.main.certname", in.Datasource))
	}
	name := config.Certname(tmpl, in.Instance(), in.Facts["hostname"])
	if msg := config.CheckCertname(name); msg != "" {
		return "", badinput.Wrap(in.Config.Errorf(at, "%s", msg))
	}
	return name, nil
}

// install plans the agent's installation, through the packages capability
// so the package manager is driven one way everywhere.
func (c Capability) install(ctx context.Context, in *capability.Input, p *config.Puppet, l Layout) (*plan.Step, error) {
	if !p.InstallEnabled() {
		a := command.NewAction("puppet --version", command.Spec{Argv: []string{l.Bin, "--version"}, Chroot: in.Root.Dir(),
			Timeout: time.Minute, Explain: map[int]string{127: "puppet is not installed in this image; set puppet.install: true"}}, in.Redactor)
		a.Runner = c.Runner
		return &plan.Step{Name: StepInstall, Frequency: plan.PerInstance, Done: in.IsDone(StepInstall), Actions: []plan.Action{a}}, nil
	}
	sub := *in.Config
	// The index is refreshed only when the package is missing (a fresh
	// image's lists may be empty or stale); an installed agent costs one
	// query.
	sub.Packages = config.Packages{Manager: config.ManagerAuto, Update: true, Install: []config.Package{{Name: p.PackageName, Version: p.Version}}}
	var pre []plan.Action
	if p.InstallType == config.PuppetInstallRepo {
		if !in.IsDone(StepInstall) {
			var err error
			if pre, err = repoFiles(ctx, in, p); err != nil {
				return nil, err
			}
		}
	}
	subIn := *in
	subIn.Config = &sub
	subIn.Done = func(string) bool { return in.IsDone(StepInstall) }
	steps, err := pkgmgr.Capability{Runner: c.Runner, Manager: c.Manager}.Steps(ctx, &subIn)
	if err != nil {
		return nil, fmt.Errorf("puppet: installing %s: %w", p.PackageName, err)
	}
	s := &plan.Step{Name: StepInstall, Frequency: plan.PerInstance, Done: in.IsDone(StepInstall), Actions: pre}
	for _, st := range steps {
		s.Actions = append(s.Actions, st.Actions...)
	}
	return s, nil
}

// repoFiles are the vendor repository's signing key and apt source.
func repoFiles(ctx context.Context, in *capability.Input, p *config.Puppet) ([]plan.Action, error) {
	key, err := in.Fetcher.Bytes(ctx, p.Repo.KeySource, p.Repo.KeySHA256, maxRepoKey)
	if err != nil {
		return nil, fmt.Errorf("puppet.repo.key_source: %w", err)
	}
	keyPath := "/etc/apt/keyrings/bootstrap-puppet.gpg"
	if bytes.HasPrefix(bytes.TrimSpace(key), []byte("-----BEGIN PGP")) {
		keyPath = "/etc/apt/keyrings/bootstrap-puppet.asc"
	}
	components := p.Repo.Components
	if components == "" {
		components = "openvox8"
	}
	list := fmt.Sprintf("# written by bootstrap (puppet.repo)\ndeb [signed-by=%s] %s %s %s\n", keyPath, p.Repo.URL, p.Repo.Suite, components)
	return []plan.Action{
		memFile(keyPath, key, 0o644, false, fetch.DisplaySource(p.Repo.KeySource)),
		memFile("/etc/apt/sources.list.d/bootstrap-puppet.list", []byte(list), 0o644, false, ""),
	}, nil
}

// memFile is a file whose content is in memory.
func memFile(p string, data []byte, mode fs.FileMode, secret bool, source string) *plan.File {
	sum := sha256.Sum256(data)
	return &plan.File{Path: p, Owner: "root", Group: "root", Mode: mode, Secret: secret, Source: source,
		SHA256: hex.EncodeToString(sum[:]), Size: int64(len(data)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil }}
}

// configure plans puppet.conf, the CA certificate, csr_attributes.yaml and
// external facts: all in one step that completes before any agent command.
func configure(ctx context.Context, in *capability.Input, p *config.Puppet, l Layout, certname string) (*plan.Step, error) {
	s := &plan.Step{Name: StepConfig, Frequency: plan.PerInstance, Done: in.IsDone(StepConfig)}
	s.Actions = append(s.Actions, &confEdit{path: l.ConfFile, sets: settings(p, l, certname)})
	if s.Done {
		return s, nil
	}
	ca := []byte(p.Conf.CACert)
	src := ""
	if p.CACertSource != "" {
		var err error
		if ca, err = in.Fetcher.Bytes(ctx, p.CACertSource, p.CACertSHA256, maxCACert); err != nil {
			return nil, fmt.Errorf("puppet.ca_cert_source: %w", err)
		}
		src = fetch.DisplaySource(p.CACertSource)
	}
	if len(ca) > 0 {
		s.Actions = append(s.Actions, memFile(path.Join(l.SSLDir, "certs", "ca.pem"), ca, 0o644, false, src))
	}
	if in.Image {
		s.Actions = append(s.Actions, &imageCheck{sslDir: l.SSLDir})
		return s, nil
	}
	if p.Masterless == nil {
		custom, err := customAttributes(ctx, in, p)
		if err != nil {
			return nil, err
		}
		csr := CSRAttributes(custom, extensions(in, p))
		s.Actions = append(s.Actions, memFile(l.CSRAttributes, csr, 0o640, len(custom) > 0, ""))
	}
	if len(p.Facts) > 0 {
		s.Actions = append(s.Actions, memFile(path.Join(l.FactsDir, "bootstrap.yaml"), factsYAML(p.Facts), 0o644, false, ""))
	}
	return s, nil
}

// settings are our keys for puppet.conf, in the order they are written:
// the operator's conf sections, then what bootstrap owns.
func settings(p *config.Puppet, l Layout, certname string) []Setting {
	var sets []Setting
	for _, sec := range p.Conf.Sections() {
		keys := make([]string, 0, len(sec.Settings))
		for k := range sec.Settings {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := sec.Settings[k]
			if k == "certname" {
				if certname == "" {
					continue // image build: the certname is the instance's
				}
				v = certname
			}
			sets = append(sets, Setting{sec.Name, k, v})
		}
	}
	if _, sec := p.Conf.Lookup("certname"); sec == "" && certname != "" {
		sets = append(sets, Setting{"main", "certname", certname})
	}
	if p.SSLDir != "" {
		sets = append(sets, Setting{"main", "ssldir", l.SSLDir})
	}
	if p.CSRAttributesPath != "" {
		sets = append(sets, Setting{"main", "csr_attributes", l.CSRAttributes})
	}
	if p.Environment != "" {
		sets = append(sets, Setting{"agent", "environment", p.Environment})
	}
	if p.RunInterval.Duration > 0 {
		sets = append(sets, Setting{"agent", "runinterval", seconds(p.RunInterval.Duration)})
	}
	return append(sets,
		Setting{"agent", "waitforcert", seconds(p.WaitForCert.Duration)},
		Setting{"agent", "maxwaitforcert", seconds(p.MaxWaitForCert.Duration)})
}

func seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) }

// customAttributes are the CSR's custom_attributes with the challenge
// password, each value registered with the redactor the moment it is read.
func customAttributes(ctx context.Context, in *capability.Input, p *config.Puppet) (map[string]string, error) {
	custom := map[string]string{}
	for k, v := range p.CSRAttributes.CustomAttributes {
		in.Redactor.Add(v)
		if k == "challengePassword" {
			k = config.PuppetChallengePasswordID
		}
		custom[k] = v
	}
	pw := p.ChallengePassword
	if p.ChallengePasswordSource != "" {
		b, err := in.Fetcher.Bytes(fetch.WithSecret(ctx), p.ChallengePasswordSource, "", maxPassword)
		if err != nil {
			return nil, fmt.Errorf("puppet.challenge_password_source: %w", err)
		}
		pw = strings.TrimRight(string(b), "\r\n")
		in.Redactor.Add(pw)
		if pw == "" || strings.ContainsAny(pw, "\r\n") {
			return nil, badinput.Wrap(in.Config.Errorf("puppet.challenge_password_source", "the password file must hold one non-empty line"))
		}
	}
	if pw != "" {
		in.Redactor.Add(pw)
		custom[config.PuppetChallengePasswordID] = pw
	}
	return custom, nil
}

// extensions are the CSR's extension_requests: the instance's AWS identity
// from IMDS, then the operator's, which win.
func extensions(in *capability.Input, p *config.Puppet) map[string]string {
	ext := map[string]string{}
	for name, fact := range map[string]string{"pp_instance_id": "instance_id", "pp_image_name": "ami_id", "pp_region": "region", "pp_zone": "availability_zone"} {
		if v := in.Facts[fact]; v != "" {
			ext[name] = v
		}
	}
	if in.Datasource == "ec2" {
		ext["pp_cloudplatform"] = "aws"
	}
	if v := in.Facts["account_id"]; v != "" {
		ext[OIDAccount] = v // for autosign's account allow-list
	}
	for k, v := range p.CSRAttributes.ExtensionRequests {
		ext[k] = v
	}
	return ext
}

func factsYAML(facts map[string]string) []byte {
	keys := make([]string, 0, len(facts))
	for k := range facts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	doc := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range keys {
		doc.Content = append(doc.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k},
			&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: facts[k]})
	}
	out, _ := yaml.Marshal(doc)
	return append([]byte("# written by bootstrap (puppet.facts)\n"), out...)
}

// confEdit sets our keys in puppet.conf where it stands, read when the
// step applies, after the package has written its own.
type confEdit struct {
	path string
	sets []Setting
}

func (e *confEdit) Describe() plan.Description {
	parts := make([]string, len(e.sets))
	for i, s := range e.sets {
		parts[i] = "[" + s.Section + "] " + s.Key + " = " + s.Value
	}
	return plan.Description{Kind: "file", Path: e.path, Owner: "root", Group: "root", Mode: "0644",
		Note: "edited in place, everything else kept: " + strings.Join(parts, "; ")}
}

func (e *confEdit) Apply(_ context.Context, env *plan.Env) error {
	old, err := env.Root.ReadFile(e.path, maxConf)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("puppet: reading %s: %w", e.path, err)
	}
	next := EditConf(old, e.sets)
	sum := sha256.Sum256(next)
	spec := rootfs.FileSpec{Mode: 0o644, Owner: "root", Group: "root"}
	if same, err := env.Root.Current(e.path, hex.EncodeToString(sum[:]), spec); err == nil && same {
		env.Log.Info("file unchanged", "path", e.path)
		return nil
	}
	if _, _, err := env.Root.WriteFile(e.path, bytes.NewReader(next), spec); err != nil {
		return err
	}
	env.Log.Info("puppet.conf edited", "path", e.path, "settings", len(e.sets))
	return nil
}

// imageCheck refuses to bake a node's key into an image: clones would
// share its identity.
type imageCheck struct{ sslDir string }

func (c *imageCheck) Describe() plan.Description {
	return plan.Description{Kind: "check", Note: "image build: certname, csr_attributes.yaml, enrolment, the first run and the agent service are left to first boot; " + c.sslDir + " must hold no private key"}
}

func (c *imageCheck) Apply(_ context.Context, env *plan.Env) error {
	dir := path.Join(c.sslDir, "private_keys")
	names, err := env.Root.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(names) > 0 {
		return fmt.Errorf("puppet: image build: %s holds %s; an image must not carry a node's key: remove %s (puppet ssl clean) before baking", dir, strings.Join(names, ", "), c.sslDir)
	}
	return nil
}

// service enables and starts the package's agent unit after enrolment.
// It is planned when the step applies: before the install there is no unit.
type service struct{ unit string }

func (s *service) Describe() plan.Description {
	return plan.Description{Kind: "service", Name: s.unit, Note: "enable and start the package's unit, after enrolment"}
}

func (s *service) Apply(ctx context.Context, env *plan.Env) error {
	enable := true
	acts, err := systemd.Actions(env.Root, systemd.Unit{Name: s.unit, Enable: &enable, Start: true})
	if err != nil {
		return fmt.Errorf("puppet: %s: %w", s.unit, err)
	}
	for _, a := range acts {
		if err := a.Apply(ctx, env); err != nil {
			return err
		}
	}
	return nil
}

// enrol is the first run: puppet agent --test with a bounded wait for the
// certificate. Exit 1 without a certificate means the CSR is pending.
type enrol struct {
	spec     command.Spec
	runner   command.Runner
	red      *secret.Redactor
	certname string
	server   string
	certPath string
	maxWait  time.Duration
}

func newEnrol(in *capability.Input, p *config.Puppet, l Layout, certname string, runner command.Runner) *enrol {
	argv := []string{l.Bin, "agent"}
	if l.ConfFile != Debian.ConfFile && l.ConfFile != AIO.ConfFile {
		argv = append(argv, "--config", l.ConfFile)
	}
	argv = append(argv, p.ExecArgs...)
	argv = append(argv, "--waitforcert", seconds(p.WaitForCert.Duration), "--maxwaitforcert", seconds(p.MaxWaitForCert.Duration))
	if !slices.ContainsFunc(p.ExecArgs, func(a string) bool { return strings.HasPrefix(a, "--color") }) {
		argv = append(argv, "--color=false") // the log is not a terminal
	}
	server, _ := p.Conf.Lookup("server")
	if server == "" {
		server = "puppet"
	}
	if !strings.Contains(server, ":") {
		port, _ := p.Conf.Lookup("serverport")
		if port == "" {
			port = "8140"
		}
		server += ":" + port
	}
	return &enrol{
		spec: command.Spec{Argv: argv, Chroot: in.Root.Dir(), Name: "puppet agent",
			Timeout: p.MaxWaitForCert.Duration + runSlack,
			Explain: map[int]string{
				4: "the catalog was applied with failures (see the resources that failed above)",
				6: "the catalog was applied with changes and failures (see the resources that failed above)",
			}},
		runner: runner, red: in.Redactor, certname: certname, server: server,
		certPath: path.Join(l.SSLDir, "certs", certname+".pem"), maxWait: p.MaxWaitForCert.Duration,
	}
}

func (e *enrol) Describe() plan.Description {
	return plan.Description{Kind: "command", Command: e.spec.Argv,
		Note: fmt.Sprintf("enrol %s with %s, waiting at most %s for the certificate; exit 0 or 2 is success", e.certname, e.server, config.Duration{Duration: e.maxWait})}
}

func (e *enrol) Apply(ctx context.Context, env *plan.Env) error {
	runner := e.runner
	if runner == nil {
		runner = command.Exec{Redactor: env.Redactor, Log: env.Log}
	}
	log := env.Log.With("command", "puppet agent")
	start := time.Now()
	res, err := runner.Run(ctx, e.spec, func(line string) { log.Info(line) })
	if err != nil {
		return env.Redactor.Error(fmt.Errorf("puppet agent: %w", err))
	}
	switch res.ExitCode {
	case 0, 2:
		log.Info("puppet agent run finished", "exit", res.ExitCode, "duration", time.Since(start).Round(time.Millisecond).String())
		return nil
	case 1:
		if _, serr := env.Root.Stat(e.certPath); errors.Is(serr, fs.ErrNotExist) {
			return fmt.Errorf("puppet agent exited 1 after %s: the CSR for %s is pending on %s; sign it there (puppetserver ca sign --certname %s), or check the autosign policy",
				time.Since(start).Round(time.Second), e.certname, e.server, e.certname)
		}
	}
	return env.Redactor.Error(res.Err(e.spec))
}
