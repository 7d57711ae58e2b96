// Package chef is the chef: capability: install the Chef client, write
// /etc/chef, register the node with the Chef server, run chef-client once
// and then periodically.
//
// Registration is why this is more than a template: the validator key is
// read into memory only (never the disk, where knife and cloud-init leave
// it), the node's own key is generated here, and the client and node are
// created through the server's API with Chef's signed headers, so only
// client.pem (0600) reaches /etc/chef. A name already taken on the server is
// reported with what to delete, not as a bare 403.
package chef

import (
	"bytes"
	"context"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/pkgmgr"
	"github.com/opsboot/bootstrap/internal/plan"
)

// Step names: keys of the per-instance records, never renamed.
const (
	StepInstall  = "chef:install"
	StepFiles    = "chef:files"
	StepRegister = "chef:register"
	StepFirstRun = "chef:first-run"
	StepPeriodic = "chef:periodic"
	StepDeferred = "chef:first-boot" // image builds: what is left to the instance
)

// Fixed paths, as knife and Chef use them.
const (
	Dir             = "/etc/chef"
	TrustedCertsDir = "/etc/chef/trusted_certs"
	OhaiHintEC2     = "/etc/chef/ohai/hints/ec2.json"
)

// maxSecretBytes bounds a data bag secret or a certificate read.
const maxSecretBytes = 64 << 10

// Capability is the chef: section.
type Capability struct {
	// Transport, when set, replaces the HTTP transport to the Chef server
	// (tests count requests).
	Transport http.RoundTripper
	// ChefClient, when set, is a chef-client on this machine run instead
	// of the root's (tests: a stand-in that records its argv).
	ChefClient string
	// PackageManager replaces the root's detected manager (tests: a
	// pkgmgr.Fake).
	PackageManager pkgmgr.Manager
}

func (Capability) Name() string { return "chef" }

// Steps plans the chef: section; nothing when it is absent.
func (c Capability) Steps(ctx context.Context, in *capability.Input) ([]*plan.Step, error) {
	ch := in.Config.Chef
	if ch == nil {
		return nil, nil
	}
	node := ch.NodeName
	if node == "" {
		node = in.Instance()
	}
	if node == "" && !in.Image {
		return nil, badinput.Wrap(in.Config.Errorf("chef.node_name", "no instance-id to name the node after; set chef.node_name"))
	}
	install, err := c.installStep(ctx, in, ch)
	if err != nil {
		return nil, err
	}
	steps := []*plan.Step{install}
	files, certs, err := c.filesStep(ctx, in, ch, node)
	if err != nil {
		return nil, err
	}
	steps = append(steps, files)
	if in.Image {
		steps = append(steps, &plan.Step{Name: StepDeferred, Frequency: plan.PerInstance, Done: in.IsDone(StepDeferred),
			Actions: []plan.Action{&note{kind: "chef", path: "first boot", text: "an image carries no node identity: client.rb, first-boot.json, " +
				"the data bag secret, " + firstBootWork(ch) + ", the first chef-client run and the periodic timer are left to the instance's first boot"}}})
		return steps, nil
	}
	if ch.LocalMode {
		repo, err := repoStep(ctx, in, ch)
		if err != nil {
			return nil, err
		}
		steps = append(steps, repo)
	} else if ch.Registration != config.ChefRegistrationClassic {
		reg, err := c.registerStep(ctx, in, ch, node, certs)
		if err != nil {
			return nil, err
		}
		steps = append(steps, reg)
	}
	if ch.ExecEnabled() {
		steps = append(steps, c.firstRunStep(in, ch))
	}
	if ch.Interval.Duration > 0 {
		s, err := periodicStep(in, ch)
		if err != nil {
			return nil, err
		}
		steps = append(steps, s)
	}
	return steps, nil
}

// filesStep writes /etc/chef. For an image only what is the same on every
// instance: the trusted certificates and the Ohai hint.
func (c Capability) filesStep(ctx context.Context, in *capability.Input, ch *config.Chef, node string) (*plan.Step, [][]byte, error) {
	s := &plan.Step{Name: StepFiles, Frequency: plan.PerInstance, Done: in.IsDone(StepFiles)}
	s.Actions = append(s.Actions, &mkdir{path: Dir, mode: 0o750})
	var certs [][]byte
	for i, tc := range ch.TrustedCerts {
		var data []byte
		if tc.Content != nil {
			data = []byte(*tc.Content)
		} else if !s.Done || (!in.Image && !ch.LocalMode && !in.IsDone(StepRegister)) {
			var err error
			if data, err = in.Fetcher.Bytes(ctx, tc.Source, tc.SHA256, maxSecretBytes); err != nil {
				return nil, nil, fmt.Errorf("chef.trusted_certs[%d].source: %w", i, err)
			}
		}
		if data != nil && !x509.NewCertPool().AppendCertsFromPEM(data) {
			return nil, nil, badinput.Wrap(in.Config.Errorf(fmt.Sprintf("chef.trusted_certs[%d]", i), "no PEM certificate in it"))
		}
		certs = append(certs, data)
		if len(certs) == 1 {
			s.Actions = append(s.Actions, &mkdir{path: TrustedCertsDir, mode: 0o755})
		}
		s.Actions = append(s.Actions, newFile(TrustedCertsDir+"/"+tc.Name, data, 0o644, false, tc.Source))
	}
	if in.Datasource == "ec2" {
		// Ohai's EC2 plugin runs only with this hint on VPC instances.
		s.Actions = append(s.Actions, newFile(OhaiHintEC2, []byte("{}\n"), 0o644, false, ""))
	}
	if in.Image {
		return s, certs, nil
	}
	rb := ClientRB(ch, node)
	// Proxy credentials make client.rb a secret.
	secretRB := hasUserinfo(ch.HTTPProxy) || hasUserinfo(ch.HTTPSProxy)
	mode := fs.FileMode(0o644)
	if secretRB {
		mode = 0o600
		for _, p := range []string{ch.HTTPProxy, ch.HTTPSProxy} {
			if u, err := url.Parse(p); err == nil && u.User != nil {
				pw, _ := u.User.Password()
				in.Redactor.Add(p, pw)
			}
		}
	}
	s.Actions = append(s.Actions, newFile(ch.ConfigPath, rb, mode, secretRB, ""))
	fb, err := FirstBootJSON(ch)
	if err != nil {
		return nil, nil, badinput.Wrap(in.Config.Errorf("chef.initial_attributes", "%v", err))
	}
	s.Actions = append(s.Actions, newFile(ch.JSONAttribs, fb, 0o644, false, ""))
	if ch.Registration == config.ChefRegistrationClassic && !isSystem(ch) {
		// Classic: chef-client registers itself with this file on its
		// first run, after which the first-run step removes it.
		var key []byte
		if !s.Done {
			if key, _, err = validatorKey(ctx, in, ch); err != nil {
				return nil, nil, err
			}
		}
		s.Actions = append(s.Actions, newFile(ch.ValidationKey, key, 0o600, true, ch.ValidationKeySource))
	}
	if ch.EncryptedDataBagSecretSource != "" {
		var data []byte
		if !s.Done {
			if data, err = in.Fetcher.Bytes(ctx, ch.EncryptedDataBagSecretSource, ch.EncryptedDataBagSecretSHA256, maxSecretBytes); err != nil {
				return nil, nil, fmt.Errorf("chef.encrypted_data_bag_secret_source: %w", err)
			}
			in.Redactor.Add(string(data))
		}
		s.Actions = append(s.Actions, newFile(ch.EncryptedDataBagSecret, data, 0o600, true, ch.EncryptedDataBagSecretSource))
	}
	return s, certs, nil
}

func hasUserinfo(p string) bool {
	u, err := url.Parse(p)
	return p != "" && err == nil && u.User != nil
}

// registerStep reads the validator key into memory (registered with the
// redactor at once) and plans the registration.
func (c Capability) registerStep(ctx context.Context, in *capability.Input, ch *config.Chef, node string, certs [][]byte) (*plan.Step, error) {
	s := &plan.Step{Name: StepRegister, Frequency: plan.PerInstance, Done: in.IsDone(StepRegister)}
	r := &register{
		server: ch.ServerURL, validator: ch.ValidationName, clientKey: ch.ClientKey,
		node:     Node{Name: node, Environment: ch.Environment, RunList: ch.RunList, PolicyName: ch.PolicyName, PolicyGroup: ch.PolicyGroup},
		deadline: ch.Deadline.Duration, transport: c.Transport,
	}
	s.Actions = []plan.Action{r}
	if s.Done {
		return s, nil
	}
	var err error
	if r.http, err = httpClient(ch, certs, c.Transport); err != nil {
		return nil, err
	}
	// A client.pem already there (a run that crashed after registering)
	// is used as it is; the validator is not needed then.
	if fi, err := in.Root.Stat(ch.ClientKey); err == nil && fi.Mode().IsRegular() {
		r.resume = true
		return s, nil
	}
	key, at, err := validatorKey(ctx, in, ch)
	if err != nil {
		return nil, err
	}
	if r.validatorKey, err = config.ParseRSAKey(key); err != nil {
		return nil, badinput.Wrap(in.Config.Errorf(at, "the validator key: %v", err))
	}
	return s, nil
}

// validatorKey reads the validator key into memory, registered with the
// redactor at once, and checks it is a PEM RSA key.
func validatorKey(ctx context.Context, in *capability.Input, ch *config.Chef) (key []byte, at string, err error) {
	switch {
	case ch.ValidationCert != nil && *ch.ValidationCert == config.ValidationSystem:
		at = "chef.validation_cert"
		if key, err = in.Root.ReadFile(ch.ValidationKey, config.MaxChefKeyBytes); err != nil {
			return nil, at, badinput.Wrap(in.Config.Errorf(at, "is system, but the validator key at chef.validation_key cannot be read: %v", err))
		}
	case ch.ValidationCert != nil:
		key, at = []byte(*ch.ValidationCert), "chef.validation_cert"
	case ch.ValidationKeySource != "":
		at = "chef.validation_key_source"
		if key, err = in.Fetcher.Bytes(ctx, ch.ValidationKeySource, ch.ValidationKeySHA256, config.MaxChefKeyBytes); err != nil {
			return nil, at, fmt.Errorf("%s: %w", at, err)
		}
	default:
		return nil, "chef", badinput.Wrap(in.Config.Errorf("chef", "no validator key to register the node with: set validation_key_source (s3://…) or "+
			"validation_cert (the PEM, or system for the file at validation_key); or put the node's client.pem at %s", ch.ClientKey))
	}
	in.Redactor.Add(string(key))
	if msg := config.CheckRSAKey(key); msg != "" {
		return nil, at, badinput.Wrap(in.Config.Errorf(at, "the validator key: %s", msg))
	}
	return key, at, nil
}

// httpClient trusts the system's CAs plus the configured certificates,
// or nothing at all for ssl_verify_mode verify_none.
func httpClient(ch *config.Chef, certs [][]byte, rt http.RoundTripper) (*http.Client, error) {
	if rt != nil {
		return &http.Client{Transport: rt}, nil
	}
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	for _, c := range certs {
		pool.AppendCertsFromPEM(c)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, InsecureSkipVerify: ch.SSLVerifyMode == "verify_none"}
	if ch.HTTPProxy != "" || ch.HTTPSProxy != "" {
		tr.Proxy = func(r *http.Request) (*url.URL, error) {
			p := ch.HTTPProxy
			if r.URL.Scheme == "https" && ch.HTTPSProxy != "" {
				p = ch.HTTPSProxy
			}
			if p == "" {
				return nil, nil
			}
			return url.Parse(p)
		}
	}
	return &http.Client{Transport: tr}, nil
}

// file is a small file written atomically through the root.
func newFile(path string, data []byte, mode fs.FileMode, secret bool, source string) *plan.File {
	sum := sha256.Sum256(data)
	digest := hex.EncodeToString(sum[:])
	if data == nil && source != "" {
		digest = "" // a done step's source is not fetched again
	}
	return &plan.File{
		Path: path, Owner: "root", Group: "root", Mode: mode, Secret: secret, Source: source,
		SHA256: digest, Size: int64(len(data)),
		Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
	}
}

// mkdir makes a directory with an exact mode.
type mkdir struct {
	path string
	mode fs.FileMode
}

func (m *mkdir) Describe() plan.Description {
	return plan.Description{Kind: "directory", Path: m.path, Owner: "root", Group: "root", Mode: fmt.Sprintf("%04o", uint32(m.mode)),
		Note: fmt.Sprintf("root:root %04o", uint32(m.mode))}
}

func (m *mkdir) Apply(ctx context.Context, env *plan.Env) error {
	changed, err := env.Root.Mkdir(m.path, m.mode)
	if changed {
		env.Log.Info("directory made", "path", m.path, "mode", fmt.Sprintf("%04o", uint32(m.mode)))
	}
	return err
}

// note is an action that only says something in the plan.
type note struct{ kind, path, text string }

func (n *note) Describe() plan.Description {
	return plan.Description{Kind: n.kind, Path: n.path, Note: n.text}
}

func (n *note) Apply(ctx context.Context, env *plan.Env) error {
	env.Log.Info(n.text)
	return nil
}

// register creates the client (as the validator, key in memory), writes
// client.pem (0600) and creates the node as that client.
type register struct {
	server, validator, clientKey string
	node                         Node
	deadline                     time.Duration
	transport                    http.RoundTripper
	http                         *http.Client
	validatorKey                 *rsa.PrivateKey
	resume                       bool
}

func (r *register) Describe() plan.Description {
	what := fmt.Sprintf("client %s on %s as validator %s, then node %s", r.node.Name, r.server, r.validator, r.node.Name)
	if r.resume {
		what = fmt.Sprintf("node %s on %s with the existing %s", r.node.Name, r.server, r.clientKey)
	}
	if r.node.PolicyName != "" {
		what += fmt.Sprintf(" with policy %s/%s", r.node.PolicyName, r.node.PolicyGroup)
	} else {
		what += " run_list [" + strings.Join(r.node.RunList, ", ") + "]"
	}
	what += ", environment " + r.node.Environment + "; only " + r.clientKey + " (0600) is written, the validator key stays in memory"
	return plan.Description{Kind: "chef", Path: "register", Note: what}
}

func isSystem(ch *config.Chef) bool {
	return ch.ValidationCert != nil && *ch.ValidationCert == config.ValidationSystem
}

// firstBootWork names what identifies the node, for the image plan.
func firstBootWork(ch *config.Chef) string {
	if ch.LocalMode {
		return "the repository from " + ch.RepoSource
	}
	return "registration with " + ch.ServerURL + ", client.pem"
}
