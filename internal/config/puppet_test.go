package config

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestPuppetDecode(t *testing.T) {
	f := false
	tests := []struct {
		name string
		src  string
		want *Puppet
	}{
		{"no section", "version: 1\n", nil},
		{
			name: "empty section gets the bounded defaults",
			src:  "puppet: {}\n",
			want: &Puppet{InstallType: "packages", PackageName: "puppet-agent", ExecArgs: []string{"--test"},
				WaitForCert: Duration{10 * time.Second}, MaxWaitForCert: Duration{5 * time.Minute}},
		},
		{
			name: "cloud-init's keys and ours",
			src: `puppet:
  install: false
  conf:
    agent:
      server: puppet.example.com
      certname: "%i.%f"
      pluginsync: true
    ca_cert: |
      -----BEGIN CERTIFICATE-----
      x
  csr_attributes:
    custom_attributes:
      1.2.840.113549.1.9.7: s3cret
    extension_requests:
      pp_role: web
      1.3.6.1.4.1.34380.1.2.1: x
  environment: staging
  maxwaitforcert: 90
  facts: {team: ops}
`,
			want: &Puppet{Install: &f, InstallType: "packages", PackageName: "puppet-agent", ExecArgs: []string{"--test"},
				Conf: PuppetConf{Agent: map[string]string{"server": "puppet.example.com", "certname": "%i.%f", "pluginsync": "true"},
					CACert: "-----BEGIN CERTIFICATE-----\nx\n"},
				CSRAttributes: PuppetCSR{CustomAttributes: map[string]string{PuppetChallengePasswordID: "s3cret"},
					ExtensionRequests: map[string]string{"pp_role": "web", "1.3.6.1.4.1.34380.1.2.1": "x"}},
				Environment: "staging", WaitForCert: Duration{10 * time.Second}, MaxWaitForCert: Duration{90 * time.Second},
				Facts: map[string]string{"team": "ops"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := decodeOne(t, tt.src)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cfg.Puppet, tt.want) {
				t.Errorf("puppet = %+v\nwant     %+v", cfg.Puppet, tt.want)
			}
		})
	}
}

func TestPuppetValidation(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "a certname puppet refuses",
			src:  "puppet:\n  conf:\n    agent:\n      certname: web/01\n",
			want: []string{`c.yaml:4:17: puppet.conf.agent.certname: "web/01" is not a certname puppet accepts: letters, digits, '.', '-' and '_' only (and %i, %f)`},
		},
		{
			name: "an unknown conf section",
			src:  "puppet:\n  conf:\n    master:\n      server: x\n",
			want: []string{`c.yaml:3:5: puppet.conf: unknown key "master"; known keys: agent, ca_cert, main, server, user`},
		},
		{
			name: "masterless and a server",
			src:  "puppet:\n  conf:\n    main: {server: puppet.example.com}\n  masterless:\n    source: s3://b/site.tgz\n",
			want: []string{`c.yaml:5:5: puppet.masterless: masterless applies a manifest without a server, but conf.main.server is set at c.yaml:3:20; remove one`},
		},
		{
			name: "an unbounded wait and the wait in conf",
			src:  "puppet:\n  maxwaitforcert: 48h\n  conf:\n    agent: {waitforcert: 0}\n",
			want: []string{
				`c.yaml:2:19: puppet.maxwaitforcert: must be between 1s and 1h, got 48h: an unbounded wait hangs the boot`,
				`c.yaml:4:26: puppet.conf.agent.waitforcert: set puppet.waitforcert instead: bootstrap bounds the wait for the certificate`,
			},
		},
		{
			name: "the password twice is never quoted",
			src:  "puppet:\n  challenge_password: hunter2\n  csr_attributes:\n    custom_attributes: {challengePassword: hunter3}\n",
			want: []string{`c.yaml:2:23: puppet.challenge_password: give the challenge password once: challenge_password, challenge_password_source or csr_attributes.custom_attributes`},
		},
		{
			name: "aio, a bad extension name, a bad environment",
			src:  "puppet:\n  install_type: aio\n  environment: Prod\n  csr_attributes:\n    extension_requests: {role: web}\n",
			want: []string{
				`c.yaml:2:17: puppet.install_type: aio runs puppetlabs' install.sh`,
				`c.yaml:3:16: puppet.environment: "Prod" is not a puppet environment name`,
				`c.yaml:5:32: puppet.csr_attributes.extension_requests.role: want a pp_ name`,
			},
		},
		{
			name: "a setting with a newline, environment twice",
			src:  "puppet:\n  environment: prod\n  conf:\n    agent:\n      environment: prod\n      report: \"true\\n[main]\"\n",
			want: []string{
				`c.yaml:5:20: puppet.conf.agent.environment: environment is also set as puppet.environment; set it once`,
				`c.yaml:6:15: puppet.conf.agent.report: a puppet.conf value must be one line`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseConfig("c.yaml", []byte(tt.src), testFacts)
			if err == nil {
				t.Fatal("no error")
			}
			got := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("error lacks %q:\n%s", w, got)
				}
			}
			if strings.Contains(got, "hunter") {
				t.Errorf("error quotes the password:\n%s", got)
			}
			if n := strings.Count(got, "\n") + 1; n != len(tt.want) {
				t.Errorf("%d errors, want %d:\n%s", n, len(tt.want), got)
			}
		})
	}
}

func TestCertname(t *testing.T) {
	for _, tt := range []struct{ tmpl, want string }{
		{"", "i-0abc"}, {"%i", "i-0abc"}, {"Web-%i.%f", "web-i-0abc.ip-10-0-0-1.ec2.internal"},
	} {
		if got := Certname(tt.tmpl, "i-0ABC", "ip-10-0-0-1.ec2.internal"); got != tt.want {
			t.Errorf("Certname(%q) = %q, want %q", tt.tmpl, got, tt.want)
		}
	}
}
