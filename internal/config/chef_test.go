package config

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

func testRSAKeyPEM(t *testing.T) string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}))
}

func indent(s, pad string) string {
	return pad + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+pad) + "\n"
}

func TestChefDefaults(t *testing.T) {
	cfg, err := decodeOne(t, "chef:\n  server_url: https://chef.example.com/organizations/acme\n  validation_key_source: s3://b/validator.pem\n  run_list: ['recipe[base]', 'role[web]', 'recipe[cb::rec@1.2.0]']\n")
	if err != nil {
		t.Fatal(err)
	}
	ch := cfg.Chef
	for _, c := range []struct{ got, want string }{
		{ch.ValidationName, "chef-validator"}, {ch.Environment, "_default"}, {ch.SSLVerifyMode, "verify_peer"},
		{ch.InstallType, "package"}, {ch.ConfigPath, "/etc/chef/client.rb"}, {ch.ClientKey, "/etc/chef/client.pem"},
		{ch.JSONAttribs, "/etc/chef/first-boot.json"}, {ch.LogLevel, "info"}, {ch.Channel, "stable"},
		{ch.OmnibusURL, "https://omnitruck.chef.io"}, {ch.EncryptedDataBagSecret, ""},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
	if ch.Interval.Duration != 30*time.Minute || ch.Splay.Duration != 5*time.Minute || ch.Deadline.Duration != DefaultDeadline || ch.OmnibusTries != 5 || !ch.ExecEnabled() {
		t.Errorf("durations/exec defaults: %+v", ch)
	}
	if cfg2, _ := decodeOne(t, "version: 1\n"); cfg2.Chef != nil {
		t.Errorf("no chef: section gave %+v", cfg2.Chef)
	}
}

func TestChefValidation(t *testing.T) {
	key := testRSAKeyPEM(t)
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"no server_url", "chef:\n  run_list: ['recipe[a]']\n",
			[]string{`c.yaml:2:3: chef.server_url: required: the Chef server's URL, e.g. https://chef.example.com/organizations/acme (or local_mode: true with repo_source)`}},
		{"bad run_list item", "chef:\n  server_url: https://c\n  run_list: ['recipe[a]', 'apache2', 'role[]']\n",
			[]string{
				`c.yaml:3:27: chef.run_list[1]: "apache2" is not a run-list item; want recipe[NAME] or role[NAME] (recipe[cb::rec] and recipe[cb@1.2] too)`,
				`c.yaml:3:38: chef.run_list[2]: "role[]" is not a run-list item; want recipe[NAME] or role[NAME] (recipe[cb::rec] and recipe[cb@1.2] too)`,
			}},
		{"validation key not PEM", "chef:\n  server_url: https://c\n  validation_cert: not a key\n",
			[]string{`c.yaml:3:20: chef.validation_cert: not a PEM private key (want -----BEGIN RSA PRIVATE KEY----- as Chef writes it)`}},
		{"validation key a certificate", "chef:\n  server_url: https://c\n  validation_cert: |\n    -----BEGIN CERTIFICATE-----\n    AAAA\n    -----END CERTIFICATE-----\n",
			[]string{`c.yaml:3:20: chef.validation_cert: PEM block "CERTIFICATE" is not an RSA private key`}},
		{"two key sources, a relative key path", "chef:\n  server_url: https://c\n  validation_key: validation.pem\n  validation_cert: |\n" + indent(key, "    ") + "  validation_key_source: s3://b/k\n",
			[]string{
				`c.yaml:3:19: chef.validation_key: want an absolute, clean path, got "validation.pem"`,
				`c.yaml:4:20: chef.validation_cert: set validation_cert or validation_key_source, not both`,
			}},
		{"policy with run_list, license, ssl, install", "chef:\n  server_url: ftp://c\n  policy_name: p\n  policy_group: g\n  run_list: ['recipe[a]']\n  chef_license: yes-please\n  ssl_verify_mode: verify_maybe\n  install_type: gems\n",
			[]string{
				`c.yaml:2:15: chef.server_url: want https://host[/organizations/ORG], got "ftp://c"`,
				`c.yaml:5:13: chef.run_list: a node with a policy (policy_name) has no run_list; set one or the other`,
				`c.yaml:6:17: chef.chef_license: want accept, accept-silent or accept-no-persist, got "yes-please"`,
				`c.yaml:7:20: chef.ssl_verify_mode: want verify_peer or verify_none, got "verify_maybe"`,
				`c.yaml:8:17: chef.install_type: gems is not supported: Chef as a gem on the system Ruby is unsupported by Chef itself; use omnitruck or package`,
			}},
		{"classic without a first run", "chef:\n  server_url: https://c\n  registration: classic\n  exec: false\n",
			[]string{`c.yaml:3:17: chef.registration: classic registration leaves validation.pem for chef-client's first run, which exec: false skips: the key would stay on disk; use in-memory`}},
		{"attributes, paths, interval", "chef:\n  server_url: https://c\n  initial_attributes: '[1]'\n  client_key: etc/chef/client.pem\n  interval: 10s\n  omnibus_version: 18.x\n",
			[]string{
				`c.yaml:3:23: chef.initial_attributes: want a JSON object (or, in cloud-config, a mapping)`,
				`c.yaml:4:15: chef.client_key: want an absolute, clean path, got "etc/chef/client.pem"`,
				`c.yaml:5:13: chef.interval: want 0 (no periodic runs) or at least 1m, got 10s`,
				`c.yaml:6:20: chef.omnibus_version: want a version like 18, 18.4 or 18.4.12, got "18.x"`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeOne(t, tt.src)
			if err == nil {
				t.Fatal("no error")
			}
			list, ok := err.(ErrorList)
			if !ok {
				t.Fatalf("error %T: %v", err, err)
			}
			var got []string
			for _, e := range list {
				got = append(got, e.Error())
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if strings.Contains(err.Error(), "PRIVATE KEY-----\nMI") {
				t.Error("error quotes the key")
			}
		})
	}
}
