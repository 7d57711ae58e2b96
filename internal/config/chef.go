package config

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
)

// Chef is the chef: section: install the Chef client, register the node
// with a Chef server (the validator key kept in memory), write /etc/chef and
// run chef-client once, then periodically. Keys are cloud-init cc_chef's
// where it has one, so cloud-config's chef: maps onto it one to one.
type Chef struct {
	ServerURL      string `yaml:"server_url"`      // required: https://chef.example.com/organizations/acme
	ValidationName string `yaml:"validation_name"` // the validator client; default chef-validator
	// The validator key, as cc_chef names it: validation_cert is the PEM
	// itself, or "system" for the file already at validation_key on the
	// root; ours adds validation_key_source, read into memory only. One of
	// validation_cert and validation_key_source.
	ValidationCert      *string  `yaml:"validation_cert" config:"sensitive"`
	ValidationKey       string   `yaml:"validation_key"`        // the file "system" reads; default /etc/chef/validation.pem
	ValidationKeySource string   `yaml:"validation_key_source"` // s3://, https://, file://
	ValidationKeySHA256 string   `yaml:"validation_key_sha256"`
	NodeName            string   `yaml:"node_name"`   // default: the instance-id
	Environment         string   `yaml:"environment"` // default _default
	RunList             []string `yaml:"run_list"`    // recipe[x] / role[y]
	PolicyName          string   `yaml:"policy_name"`
	PolicyGroup         string   `yaml:"policy_group"`
	// InitialAttributes is a JSON object merged at the top of
	// first-boot.json (cloud-config gives it as a mapping).
	InitialAttributes string `yaml:"initial_attributes"`
	ChefLicense       string `yaml:"chef_license"`    // accept, accept-silent, accept-no-persist
	SSLVerifyMode     string `yaml:"ssl_verify_mode"` // verify_peer (default) or verify_none
	// Exec runs chef-client once after registration; default true
	// (cloud-config's default, false, is kept when it comes from there).
	Exec *bool `yaml:"exec"`

	// Install: omnitruck, package or none (default package).
	InstallType  string `yaml:"install_type"`
	OmnibusURL   string `yaml:"omnibus_url"`         // omnitruck base URL; default https://omnitruck.chef.io
	OmnibusTries int    `yaml:"omnibus_url_retries"` // default 5
	Version      string `yaml:"omnibus_version"`     // partial pins: 18, 18.4
	Channel      string `yaml:"channel"`             // stable (default), current
	ForceInstall bool   `yaml:"force_install"`

	TrustedCerts []TrustedCert `yaml:"trusted_certs"`
	// EncryptedDataBagSecret is the secret's path on the node; its content
	// comes from EncryptedDataBagSecretSource (written 0600).
	EncryptedDataBagSecret       string `yaml:"encrypted_data_bag_secret"`
	EncryptedDataBagSecretSource string `yaml:"encrypted_data_bag_secret_source"`
	EncryptedDataBagSecretSHA256 string `yaml:"encrypted_data_bag_secret_sha256"`

	// Paths, as cc_chef names them.
	ConfigPath     string `yaml:"config_path"`  // /etc/chef/client.rb
	ClientKey      string `yaml:"client_key"`   // /etc/chef/client.pem
	JSONAttribs    string `yaml:"json_attribs"` // /etc/chef/first-boot.json
	LogLevel       string `yaml:"log_level"`    // :info
	LogLocation    string `yaml:"log_location"` // /var/log/chef/client.log
	FileCachePath  string `yaml:"file_cache_path"`
	FileBackupPath string `yaml:"file_backup_path"`
	PidFile        string `yaml:"pid_file"`

	HTTPProxy  string `yaml:"http_proxy" config:"sensitive"` // may hold user:password
	HTTPSProxy string `yaml:"https_proxy" config:"sensitive"`
	NoProxy    string `yaml:"no_proxy"`

	// Periodic runs (a systemd timer); interval 0 disables them.
	Interval Duration `yaml:"interval"` // default 30m
	Splay    Duration `yaml:"splay"`    // default 5m
	// Registration is in-memory (default: we create the client; the
	// validator key never touches the disk) or classic (validation.pem
	// written 0600 for chef-client to register with, removed after its
	// first successful run).
	Registration string `yaml:"registration"`
	// LocalMode converges from a repository tarball with chef-client
	// --local-mode (Vagrant's chef_zero), without a server or registration.
	LocalMode  bool   `yaml:"local_mode"`
	RepoSource string `yaml:"repo_source"` // .tar.gz with cookbooks/ (roles/, data_bags/, environments/)
	RepoSHA256 string `yaml:"repo_sha256"`
	RepoPath   string `yaml:"repo_path"` // default /var/chef/repo
	// Deadline bounds registration's retries of transient server errors.
	Deadline Duration `yaml:"deadline"` // default 120s
}

// TrustedCert is a CA certificate for the Chef server, written to
// /etc/chef/trusted_certs/NAME.
type TrustedCert struct {
	Name    string  `yaml:"name" config:"key"` // file name, ends in .crt or .pem
	Content *string `yaml:"content"`
	Source  string  `yaml:"source"`
	SHA256  string  `yaml:"sha256"`
}

// Chef install types.
const (
	ChefInstallOmnitruck = "omnitruck"
	ChefInstallPackage   = "package"
	ChefInstallNone      = "none"
)

// Chef defaults, in one place so docs and code agree.
const (
	DefaultChefValidationName = "chef-validator"
	DefaultChefValidationKey  = "/etc/chef/validation.pem"
	DefaultChefRepoPath       = "/var/chef/repo"
	DefaultChefEnvironment    = "_default"
	DefaultChefOmnitruck      = "https://omnitruck.chef.io"
	DefaultChefConfigPath     = "/etc/chef/client.rb"
	DefaultChefClientKey      = "/etc/chef/client.pem"
	DefaultChefJSONAttribs    = "/etc/chef/first-boot.json"
	DefaultChefLogLocation    = "/var/log/chef/client.log"
	DefaultChefFileCache      = "/var/cache/chef"
	DefaultChefFileBackup     = "/var/backups/chef"
	DefaultChefPidFile        = "/var/run/chef/client.pid"
	DefaultChefDataBagSecret  = "/etc/chef/encrypted_data_bag_secret"
	DefaultChefInterval       = 30 * time.Minute
	DefaultChefSplay          = 5 * time.Minute
	MaxChefKeyBytes           = 16 << 10
)

var (
	runListItemRE = regexp.MustCompile(`^(recipe|role)\[[A-Za-z0-9_.:@-]+(@[0-9][0-9.]*)?\]$`)
	chefNameRE    = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
	certNameRE    = regexp.MustCompile(`^[A-Za-z0-9_.-]+\.(crt|pem)$`)
)

// Chef registration modes.
const (
	ChefRegistrationInMemory = "in-memory"
	ChefRegistrationClassic  = "classic"
)

// ValidationSystem as validation_cert means: use the file at validation_key.
const ValidationSystem = "system"

// ExecEnabled reports whether chef-client runs once after registration.
func (ch *Chef) ExecEnabled() bool { return ch.Exec == nil || *ch.Exec }

func (ch *Chef) check(c *checker, p string) {
	at := func(key string) string { return joinKey(p, key) }
	switch u, err := url.Parse(ch.ServerURL); {
	case ch.ServerURL == "" && ch.LocalMode:
	case ch.ServerURL == "":
		c.errorf(at("server_url"), "required: the Chef server's URL, e.g. https://chef.example.com/organizations/acme (or local_mode: true with repo_source)")
	case err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http"):
		c.errorf(at("server_url"), "want https://host[/organizations/ORG], got %s", quoteShort(ch.ServerURL))
	case u.User != nil || u.RawQuery != "" || u.Fragment != "":
		c.errorf(at("server_url"), "want https://host[/organizations/ORG] without credentials, query or fragment")
	}
	if ch.ValidationName == "" {
		ch.ValidationName = DefaultChefValidationName
	} else if !chefNameRE.MatchString(ch.ValidationName) {
		c.errorf(at("validation_name"), "%s is not a Chef client name: letters, digits and _ . : - only", quoteShort(ch.ValidationName))
	}
	n := 0
	if ch.ValidationCert != nil {
		n++
		if *ch.ValidationCert != ValidationSystem {
			if msg := CheckRSAKey([]byte(*ch.ValidationCert)); msg != "" {
				c.errorf(at("validation_cert"), "%s", msg)
			}
		}
	}
	if ch.ValidationKeySource != "" {
		n++
		if msg := checkSource(ch.ValidationKeySource); msg != "" {
			c.errorf(at("validation_key_source"), "%s", msg)
		}
	}
	if msg := checkSHA256(ch.ValidationKeySHA256); msg != "" {
		c.errorf(at("validation_key_sha256"), "%s", msg)
	}
	ch.ValidationKeySHA256 = strings.ToLower(ch.ValidationKeySHA256)
	switch ch.Registration {
	case "":
		ch.Registration = ChefRegistrationInMemory
	case ChefRegistrationInMemory:
	case ChefRegistrationClassic:
		if ch.Exec != nil && !*ch.Exec {
			c.errorf(at("registration"), "classic registration leaves validation.pem for chef-client's first run, which exec: false skips: the key would stay on disk; use in-memory")
		}
		if ch.LocalMode {
			c.errorf(at("registration"), "local_mode has no server to register with")
		}
	default:
		c.errorf(at("registration"), "want in-memory or classic, got %s", quoteShort(ch.Registration))
	}
	if ch.ValidationKey == "" {
		ch.ValidationKey = DefaultChefValidationKey
	} else {
		c.absPath(at("validation_key"), ch.ValidationKey)
	}
	if n > 1 {
		c.errorf(at("validation_cert"), "set validation_cert or validation_key_source, not both")
	}
	if ch.NodeName != "" && !chefNameRE.MatchString(ch.NodeName) {
		c.errorf(at("node_name"), "%s is not a Chef node name: letters, digits and _ . : - only", quoteShort(ch.NodeName))
	}
	if ch.Environment == "" {
		ch.Environment = DefaultChefEnvironment
	} else if !chefNameRE.MatchString(ch.Environment) {
		c.errorf(at("environment"), "%s is not a Chef environment name", quoteShort(ch.Environment))
	}
	for i, item := range ch.RunList {
		if !runListItemRE.MatchString(item) {
			c.errorf(fmt.Sprintf("%s[%d]", at("run_list"), i), "%s is not a run-list item; want recipe[NAME] or role[NAME] (recipe[cb::rec] and recipe[cb@1.2] too)", quoteShort(item))
		}
	}
	switch {
	case (ch.PolicyName == "") != (ch.PolicyGroup == ""):
		c.errorf(at("policy_name"), "set policy_name and policy_group together")
	case ch.PolicyName != "" && len(ch.RunList) > 0:
		c.errorf(at("run_list"), "a node with a policy (policy_name) has no run_list; set one or the other")
	}
	for _, k := range []struct{ key, v string }{{"policy_name", ch.PolicyName}, {"policy_group", ch.PolicyGroup}} {
		if k.v != "" && !chefNameRE.MatchString(k.v) {
			c.errorf(at(k.key), "%s is not a Chef policy name", quoteShort(k.v))
		}
	}
	if ch.InitialAttributes != "" {
		var m map[string]any
		if err := json.Unmarshal([]byte(ch.InitialAttributes), &m); err != nil || m == nil {
			c.errorf(at("initial_attributes"), "want a JSON object (or, in cloud-config, a mapping)")
		} else if _, bad := m["run_list"]; bad {
			c.errorf(at("initial_attributes"), "run_list goes in chef.run_list, not in the attributes")
		}
	}
	switch ch.ChefLicense {
	case "", "accept", "accept-silent", "accept-no-persist":
	default:
		c.errorf(at("chef_license"), "want accept, accept-silent or accept-no-persist, got %s", quoteShort(ch.ChefLicense))
	}
	switch ch.SSLVerifyMode = strings.TrimPrefix(ch.SSLVerifyMode, ":"); ch.SSLVerifyMode {
	case "":
		ch.SSLVerifyMode = "verify_peer"
	case "verify_peer", "verify_none":
	default:
		c.errorf(at("ssl_verify_mode"), "want verify_peer or verify_none, got %s", quoteShort(ch.SSLVerifyMode))
	}
	switch ch.InstallType = strings.ToLower(ch.InstallType); ch.InstallType {
	case "":
		ch.InstallType = ChefInstallPackage
	case "packages":
		ch.InstallType = ChefInstallPackage
	case "omnibus":
		ch.InstallType = ChefInstallOmnitruck
	case ChefInstallOmnitruck, ChefInstallPackage, ChefInstallNone:
	case "gems":
		c.errorf(at("install_type"), "gems is not supported: Chef as a gem on the system Ruby is unsupported by Chef itself; use omnitruck or package")
	default:
		c.errorf(at("install_type"), "want omnitruck, package or none, got %s", quoteShort(ch.InstallType))
	}
	if ch.OmnibusURL == "" {
		ch.OmnibusURL = DefaultChefOmnitruck
	} else if u, err := url.Parse(ch.OmnibusURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		c.errorf(at("omnibus_url"), "want the omnitruck base URL, https://omnitruck.chef.io or a mirror")
	}
	if !c.set[at("omnibus_url_retries")] {
		ch.OmnibusTries = 5
	} else if ch.OmnibusTries < 0 || ch.OmnibusTries > 20 {
		c.errorf(at("omnibus_url_retries"), "want 0 to 20, got %d", ch.OmnibusTries)
	}
	if ch.Version != "" && !regexp.MustCompile(`^(latest|[0-9]+(\.[0-9]+){0,3})$`).MatchString(ch.Version) {
		c.errorf(at("omnibus_version"), "want a version like 18, 18.4 or 18.4.12, got %s", quoteShort(ch.Version))
	}
	switch ch.Channel {
	case "":
		ch.Channel = "stable"
	case "stable", "current":
	default:
		c.errorf(at("channel"), "want stable or current, got %s", quoteShort(ch.Channel))
	}
	if ch.EncryptedDataBagSecretSource != "" {
		if msg := checkSource(ch.EncryptedDataBagSecretSource); msg != "" {
			c.errorf(at("encrypted_data_bag_secret_source"), "%s", msg)
		}
		if ch.EncryptedDataBagSecret == "" {
			ch.EncryptedDataBagSecret = DefaultChefDataBagSecret
		}
	}
	if msg := checkSHA256(ch.EncryptedDataBagSecretSHA256); msg != "" {
		c.errorf(at("encrypted_data_bag_secret_sha256"), "%s", msg)
	}
	ch.EncryptedDataBagSecretSHA256 = strings.ToLower(ch.EncryptedDataBagSecretSHA256)
	for _, pth := range []struct {
		key string
		v   *string
		def string
	}{
		{"config_path", &ch.ConfigPath, DefaultChefConfigPath},
		{"client_key", &ch.ClientKey, DefaultChefClientKey},
		{"json_attribs", &ch.JSONAttribs, DefaultChefJSONAttribs},
		{"log_location", &ch.LogLocation, DefaultChefLogLocation},
		{"file_cache_path", &ch.FileCachePath, DefaultChefFileCache},
		{"file_backup_path", &ch.FileBackupPath, DefaultChefFileBackup},
		{"pid_file", &ch.PidFile, DefaultChefPidFile},
		{"encrypted_data_bag_secret", &ch.EncryptedDataBagSecret, ""},
	} {
		if *pth.v == "" {
			*pth.v = pth.def
			continue
		}
		if pth.key == "log_location" && (*pth.v == "STDOUT" || *pth.v == "STDERR") {
			continue
		}
		c.absPath(at(pth.key), *pth.v)
	}
	switch ch.LogLevel = strings.TrimPrefix(ch.LogLevel, ":"); ch.LogLevel {
	case "":
		ch.LogLevel = "info"
	case "trace", "debug", "info", "warn", "error", "fatal", "auto":
	default:
		c.errorf(at("log_level"), "want trace, debug, info, warn, error or fatal, got %s", quoteShort(ch.LogLevel))
	}
	for _, k := range []struct{ key, v string }{{"http_proxy", ch.HTTPProxy}, {"https_proxy", ch.HTTPSProxy}} {
		if k.v == "" {
			continue
		}
		if u, err := url.Parse(k.v); err != nil || u.Host == "" {
			c.errorf(at(k.key), "want a proxy URL like http://proxy:3128")
		}
	}
	if strings.ContainsAny(ch.NoProxy, "\"\\\n") {
		c.errorf(at("no_proxy"), "want host names separated by commas")
	}
	if !c.set[at("interval")] {
		ch.Interval.Duration = DefaultChefInterval
	} else if ch.Interval.Duration < 0 || (ch.Interval.Duration > 0 && ch.Interval.Duration < time.Minute) {
		c.errorf(at("interval"), "want 0 (no periodic runs) or at least 1m, got %s", ch.Interval)
	}
	if !c.set[at("splay")] {
		ch.Splay.Duration = DefaultChefSplay
	} else if ch.Splay.Duration < 0 {
		c.errorf(at("splay"), "must not be negative")
	}
	switch {
	case ch.LocalMode && ch.RepoSource == "":
		c.errorf(at("repo_source"), "required with local_mode: a .tar.gz of the Chef repository (cookbooks/, roles/, …), e.g. s3://bucket/repo.tgz")
	case !ch.LocalMode && ch.RepoSource != "":
		c.errorf(at("repo_source"), "is for local_mode: true; a node registered with a server gets its cookbooks from the server")
	case ch.RepoSource != "":
		if msg := checkSource(ch.RepoSource); msg != "" {
			c.errorf(at("repo_source"), "%s", msg)
		}
	}
	if msg := checkSHA256(ch.RepoSHA256); msg != "" {
		c.errorf(at("repo_sha256"), "%s", msg)
	}
	ch.RepoSHA256 = strings.ToLower(ch.RepoSHA256)
	if ch.RepoPath == "" {
		ch.RepoPath = DefaultChefRepoPath
	} else {
		c.absPath(at("repo_path"), ch.RepoPath)
	}
	c.deadline(at("deadline"), &ch.Deadline, DefaultDeadline)
}

// absPath reports a path that is not absolute and clean, or that a Ruby
// string literal could not hold as it is.
func (c *checker) absPath(p, v string) {
	switch {
	case !strings.HasPrefix(v, "/") || path.Clean(v) != v:
		c.errorf(p, "want an absolute, clean path, got %s", quoteShort(v))
	case strings.ContainsAny(v, "\"\\#\n\x00"):
		c.errorf(p, "%s holds a quote, backslash, # or newline", quoteShort(v))
	}
}

func (t *TrustedCert) check(c *checker, p string) {
	at := func(key string) string { return joinKey(p, key) }
	if !certNameRE.MatchString(t.Name) {
		c.errorf(at("name"), "want a file name ending in .crt or .pem, got %s", quoteShort(t.Name))
	}
	switch {
	case (t.Content == nil) == (t.Source == ""):
		c.errorf(p, "set content or source, not both")
	case t.Source != "":
		if msg := checkSource(t.Source); msg != "" {
			c.errorf(at("source"), "%s", msg)
		}
	default:
		if b, _ := pem.Decode([]byte(*t.Content)); b == nil || b.Type != "CERTIFICATE" {
			c.errorf(at("content"), "want a PEM certificate (-----BEGIN CERTIFICATE-----)")
		}
	}
	if msg := checkSHA256(t.SHA256); msg != "" {
		c.errorf(at("sha256"), "%s", msg)
	}
}

// CheckRSAKey says what is wrong with a PEM RSA private key, or "". It never
// quotes the key.
func CheckRSAKey(data []byte) string {
	if len(data) > MaxChefKeyBytes {
		return fmt.Sprintf("a key is at most %d bytes, got %d", MaxChefKeyBytes, len(data))
	}
	b, _ := pem.Decode(data)
	if b == nil {
		return "not a PEM private key (want -----BEGIN RSA PRIVATE KEY----- as Chef writes it)"
	}
	if _, err := ParseRSAKey(data); err != nil {
		return err.Error()
	}
	return ""
}

// ParseRSAKey reads a PEM RSA private key, PKCS#1 or PKCS#8.
func ParseRSAKey(data []byte) (*rsa.PrivateKey, error) {
	b, _ := pem.Decode(data)
	if b == nil {
		return nil, fmt.Errorf("not a PEM private key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("PEM block %s is not an RSA private key", quoteShort(b.Type))
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("the key is not RSA; Chef signs with RSA keys only")
	}
	return rk, nil
}
