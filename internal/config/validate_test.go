package config

import (
	"strings"
	"testing"
	"time"
)

func decodeOne(t *testing.T, src string) (*Config, error) {
	t.Helper()
	l, err := ParseLayer("c.yaml", []byte(src))
	if err != nil {
		t.Fatalf("ParseLayer: %v", err)
	}
	m, err := Merge([]*Layer{l})
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	return m.Decode(testFacts)
}

func TestValidation(t *testing.T) {
	const sum = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{name: "version 1", src: "version: 1\n"},
		{name: "version 2", src: "version: 2\n", want: []string{"c.yaml:1:10: version: only version 1 is supported, got 2"}},
		{name: "version 0 given", src: "version: 0\n", want: []string{"c.yaml:1:10: version: only version 1 is supported, got 0"}},
		{
			name: "relative path",
			src:  "files:\n  - path: etc/x\n    content: x\n",
			want: []string{`c.yaml:2:11: files[0].path: must be absolute (start with /), got "etc/x"`},
		},
		{
			name: "dot dot",
			src:  "files:\n  - path: /etc/../x\n    content: x\n",
			want: []string{`c.yaml:2:11: files[0].path: must not contain .., got "/etc/../x"`},
		},
		{
			name: "unclean",
			src:  "files:\n  - path: /etc//x/\n    content: x\n",
			want: []string{`c.yaml:2:11: files[0].path: must be clean: write "/etc/x", not "/etc//x/"`},
		},
		{
			name: "root",
			src:  "files:\n  - path: /\n    content: x\n",
			want: []string{`c.yaml:2:11: files[0].path: must name a file, not /`},
		},
		{
			name: "missing path and content",
			src:  "files:\n  - mode: 0600\n",
			want: []string{
				`c.yaml:2:5: files[0].path: required: the absolute path of the file on the target, e.g. /etc/app.conf`,
				`c.yaml:2:5: files[0]: set content (the text to write) or source (an s3://, https:// or file:// URL to copy)`,
			},
		},
		{
			name: "content and source",
			src:  "files:\n  - path: /x\n    content: x\n    source: s3://b/k\n",
			want: []string{`c.yaml:2:5: files[0]: set content or source, not both`},
		},
		{
			name: "duplicate paths name both positions",
			src:  "files:\n  - path: /etc/x\n    content: a\n  - path: /etc/x\n    content: b\n",
			want: []string{`c.yaml:4:11: files[1].path: duplicate path "/etc/x": files[0] at c.yaml:2:11 writes it too`},
		},
		{
			name: "encoding",
			src:  "files:\n  - path: /a\n    content: x\n    encoding: gzip\n  - path: /b\n    source: s3://b/k\n    encoding: base64\n",
			want: []string{
				`c.yaml:4:15: files[0].encoding: want base64 or no encoding, got "gzip"`,
				`c.yaml:7:15: files[1].encoding: encoding applies to content only; a source is copied as it is`,
			},
		},
		{
			name: "bad base64 content",
			src:  "files:\n  - path: /a\n    content: 'not base64!'\n    encoding: base64\n",
			want: []string{`c.yaml:3:14: files[0].content: not valid base64, as encoding: base64 says`},
		},
		{
			name: "sha256",
			src:  "files:\n  - path: /a\n    source: https://example.com/a\n    sha256: 1234\n  - path: /b\n    source: https://example.com/b\n    sha256: " + strings.ToUpper(sum) + "\n",
			want: []string{`c.yaml:4:13: files[0].sha256: want 64 hex digits (as sha256sum prints), got 4 characters`},
		},
		{
			name: "sources",
			src: "files:\n" +
				"  - {path: /a, source: 's3://bucket'}\n" +
				"  - {path: /b, source: 's3:///key'}\n" +
				"  - {path: /c, source: 'http://example.com/x'}\n" +
				"  - {path: /d, source: 'ftp://example.com/x'}\n" +
				"  - {path: /e, source: 'example.com/x'}\n" +
				"  - {path: /f, source: 'file://relative'}\n" +
				"  - {path: /g, source: 'https:///x'}\n" +
				"  - {path: /h, source: 'file:///etc/x'}\n" +
				"  - {path: /i, source: 's3://user:pw@bucket/key'}\n",
			want: []string{
				`c.yaml:2:24: files[0].source: no key after the bucket; want s3://bucket/key`,
				`c.yaml:3:24: files[1].source: no bucket; want s3://bucket/key`,
				`c.yaml:4:24: files[2].source: plain http is not allowed; use https`,
				`c.yaml:5:24: files[3].source: unsupported scheme "ftp"; want s3://bucket/key, https://host/path or file:///absolute/path`,
				`c.yaml:6:24: files[4].source: no scheme; want s3://bucket/key, https://host/path or file:///absolute/path`,
				`c.yaml:7:24: files[5].source: file URLs need an absolute path after file:// (three slashes: file:///etc/x)`,
				`c.yaml:8:24: files[6].source: no host; want https://host/path`,
				`c.yaml:10:24: files[8].source: credentials do not go in an s3:// URL; the instance role is used`,
			},
		},
		{
			name: "owner and group",
			src:  "files:\n  - path: /a\n    content: x\n    owner: 'app:app'\n    group: 'a b'\n  - path: /b\n    content: x\n    owner: 1000\n    group: 1000\n",
			want: []string{
				`c.yaml:4:12: files[0].owner: want one user name or id, got "app:app"; put the group in group:`,
				`c.yaml:5:12: files[0].group: want a name or a numeric id, got "a b"`,
			},
		},
		{
			name: "durations",
			src:  "imds:\n  deadline: 0s\naws:\n  deadline: 2h\n  iam_propagation: 0\n",
			want: []string{
				`c.yaml:2:13: imds.deadline: must be more than 0s, got 0s`,
				`c.yaml:4:13: aws.deadline: must be at most 1h, got 2h`,
				`c.yaml:5:20: aws.iam_propagation: must be more than 0s, got 0s`,
			},
		},
		{
			name: "imds endpoint mode",
			src:  "imds:\n  endpoint_mode: dualstack\n",
			want: []string{
				`c.yaml:2:18: imds.endpoint_mode: want ipv4 or ipv6, got "dualstack"`,
			},
		},
		{
			name: "region and endpoint",
			src:  "aws:\n  region: Ireland\n  s3:\n    endpoint: minio:9000\n",
			want: []string{
				`c.yaml:2:11: aws.region: "Ireland" is not an AWS region name like us-east-1`,
				`c.yaml:4:15: aws.s3.endpoint: want an http:// or https:// URL, got scheme "minio"`,
			},
		},
		{
			name: "interpolated values are checked after expansion",
			src:  "aws:\n  region: ${region}\nfiles:\n  - path: /etc/${role}/${nope}\n    content: x\n",
			want: []string{`c.yaml:4:11: files[0].path: unknown fact ${nope} at byte 13; known facts: account_id, ami_id, availability_zone, hostname, instance_id, instance_type, local_ipv4, mac, region, role`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeOne(t, tt.src)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := decodeOne(t, "files:\n  - path: /a\n    content: x\n  - path: /b\n    content: x\n    secret: true\n  - path: /c\n    content: x\n    secret: true\n    mode: 0640\n  - path: /d\n    content: x\n    mode: 0000\n")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []FileMode{0o644, 0o600, 0o640, 0} {
		f := cfg.Files[i]
		if f.Mode != want || f.Owner != "root" || f.Group != "root" {
			t.Errorf("files[%d] = mode %s owner %s group %s, want mode %s root root", i, f.Mode, f.Owner, f.Group, want)
		}
	}
	if cfg.IMDS.Deadline.Duration != 120*time.Second || cfg.AWS.Deadline.Duration != 120*time.Second {
		t.Errorf("deadlines = %v, %v", cfg.IMDS.Deadline, cfg.AWS.Deadline)
	}
}

func TestInterpolation(t *testing.T) {
	_, err := decodeOne(t, "aws:\n  region: ${region}\n  deadline: ${seconds}\nfiles:\n  - path: /etc/motd\n    content: \"${hostname} in ${availability_zone}; literal $${region}; cost $5\\n\"\n    mode: ${mode}\n")
	if err == nil {
		t.Fatal("want unknown facts seconds and mode")
	}
	if !strings.Contains(err.Error(), "aws.deadline: unknown fact ${seconds}") || !strings.Contains(err.Error(), "files[0].mode: unknown fact ${mode}") {
		t.Errorf("errors: %v", err)
	}

	l := mustLayer(t, "c.yaml", "aws:\n  region: ${region}\n  deadline: ${seconds}\nfiles:\n  - path: /etc/motd\n    content: \"${hostname} in ${availability_zone}; literal $${region}; cost $5\\n\"\n    mode: ${mode}\n")
	m, err := Merge([]*Layer{l})
	if err != nil {
		t.Fatal(err)
	}
	facts := map[string]string{"region": "eu-west-1", "hostname": "web-1", "availability_zone": "eu-west-1b", "seconds": "90", "mode": "0640"}
	cfg, err := m.Decode(facts)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AWS.Region != "eu-west-1" || cfg.AWS.Deadline.Duration != 90*time.Second || cfg.Files[0].Mode != 0o640 {
		t.Errorf("got %+v", cfg)
	}
	if got, want := *cfg.Files[0].Content, "web-1 in eu-west-1b; literal ${region}; cost $5\n"; got != want {
		t.Errorf("content = %q, want %q", got, want)
	}
}

// TestSecretsStayOut checks that no error repeats file content, whatever
// is wrong with it.
func TestSecretsStayOut(t *testing.T) {
	const secret = "hunter2-AKIA-s3cr3t"
	for _, src := range []string{
		"files:\n  - path: /a\n    secret: true\n    content: '" + secret + " ${" + secret + "}'\n",
		"files:\n  - path: /a\n    content: '" + secret + " ${bad_fact}'\n",
		"files:\n  - path: /a\n    content: '" + secret + " ${'\n",
		"files:\n  - path: /a\n    content: '" + secret + "!'\n    encoding: base64\n",
		"files:\n  - path: /a\n    content: '" + secret + "'\n    source: s3://b/k\n",
		"files:\n  - path: /a\n    content: ['" + secret + "']\n",
		"files:\n  - path: /a\n    content: !!binary '" + secret + "'\n",
		"files:\n  - path: /a\n    source: 'https://h/x?token=" + secret + "&a=${b'\n",
		"files:\n  - path: /a\n    source: 'ftp://h/x?token=" + secret + "'\n",
	} {
		var err error
		if l, perr := ParseLayer("c.yaml", []byte(src)); perr != nil {
			err = perr
		} else if m, merr := Merge([]*Layer{l}); merr != nil {
			err = merr
		} else {
			_, err = m.Decode(map[string]string{"region": "x"})
		}
		if err == nil {
			t.Errorf("no error for %q", src)
			continue
		}
		if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error repeats the secret: %v", err)
		}
	}
}
