package userdata

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/config"
)

func TestCloudConfigWarnsOnce(t *testing.T) {
	raw := "#cloud-config\nruncmd: [ls]\npackages: [nginx]\nusers: []\n" +
		"write_files:\n  - {path: /a, content: a, defer: true}\n  - {path: /b, content: b, defer: true}\nbootcmd: [ls]\n"
	d, err := Decode("user-data", []byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"user-data: cloud-config: ignoring unsupported keys: users"}
	if strings.Join(d.Warnings, "\n") != strings.Join(want, "\n") {
		t.Errorf("warnings %q\nwant %q", d.Warnings, want)
	}
}

func TestCloudConfigIgnoredKeysBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("#cloud-config\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "k%04d: x\n", i)
	}
	d, err := Decode("user-data", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Warnings) != 1 || !strings.HasSuffix(d.Warnings[0], ", k0049 and 950 more") || strings.Count(d.Warnings[0], ", ") != 49 {
		t.Errorf("warnings %q", d.Warnings)
	}
}

func TestCloudConfigOnlyUnsupported(t *testing.T) {
	d, err := Decode("user-data", []byte("#cloud-config\nusers: [default]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Layers) != 0 || len(d.Warnings) != 1 {
		t.Errorf("got %d layers, warnings %q", len(d.Layers), d.Warnings)
	}
}

func TestWriteFiles(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	gzB64 := func(s string) string { return base64.StdEncoding.EncodeToString(gz(t, []byte(s))) }
	binary := string([]byte{0xff, 0xfe, 0x00, 0x01})
	tests := []struct {
		name     string
		entry    string // one write_files entry, indented by 4
		content  string // decoded bytes
		encoding string
		mode     config.FileMode
		owner    string
		group    string
		warning  string
		append   bool
		deferred bool
	}{
		{name: "plain", entry: "path: /a\n    content: hello", content: "hello", mode: 0o644, owner: "root", group: "root"},
		{name: "literal ${", entry: "path: /a\n    content: 'echo ${HOME} $${x}'", content: "echo ${HOME} $${x}", mode: 0o644, owner: "root", group: "root"},
		{name: "text/plain", entry: "path: /a\n    encoding: text/plain\n    content: hi", content: "hi", mode: 0o644, owner: "root", group: "root"},
		{name: "b64", entry: "path: /a\n    encoding: b64\n    content: " + b64("secret\n"), content: "secret\n", encoding: "base64", mode: 0o644, owner: "root", group: "root"},
		{name: "base64 wrapped", entry: "path: /a\n    encoding: base64\n    content: |\n      " + b64("0123456789abcdef0123456789")[:20] + "\n      " + b64("0123456789abcdef0123456789")[20:], content: "0123456789abcdef0123456789", encoding: "base64", mode: 0o644, owner: "root", group: "root"},
		{name: "gz+b64", entry: "path: /a\n    encoding: gz+b64\n    content: " + gzB64("zipped ${x}\n"), content: "zipped ${x}\n", mode: 0o644, owner: "root", group: "root"},
		{name: "gzip+base64", entry: "path: /a\n    encoding: gzip+base64\n    content: " + gzB64("zipped"), content: "zipped", mode: 0o644, owner: "root", group: "root"},
		{name: "gzip binary tag", entry: "path: /a\n    encoding: gzip\n    content: !!binary " + gzB64("zipped"), content: "zipped", mode: 0o644, owner: "root", group: "root"},
		{name: "gz binary result stays base64", entry: "path: /a\n    encoding: gz+b64\n    content: " + gzB64(binary), content: binary, encoding: "base64", mode: 0o644, owner: "root", group: "root"},
		{name: "binary tag without encoding", entry: "path: /a\n    content: !!binary " + b64(binary), content: binary, encoding: "base64", mode: 0o644, owner: "root", group: "root"},
		{name: "owner user:group", entry: "path: /a\n    content: x\n    owner: www-data:adm", content: "x", mode: 0o644, owner: "www-data", group: "adm"},
		{name: "owner user", entry: "path: /a\n    content: x\n    owner: app", content: "x", mode: 0o644, owner: "app", group: "root"},
		{name: "permissions quoted", entry: "path: /a\n    content: x\n    permissions: '0640'", content: "x", mode: 0o640, owner: "root", group: "root"},
		{name: "permissions octal int", entry: "path: /a\n    content: x\n    permissions: 0755", content: "x", mode: 0o755, owner: "root", group: "root"},
		{name: "permissions 0o", entry: "path: /a\n    content: x\n    permissions: 0o600", content: "x", mode: 0o600, owner: "root", group: "root"},
		{name: "permissions decimal", entry: "path: /a\n    content: x\n    permissions: 420", content: "x", mode: 0o644, owner: "root", group: "root"},
		{name: "permissions decimal 493", entry: "path: /a\n    content: x\n    permissions: 493", content: "x", mode: 0o755, owner: "root", group: "root"},
		{
			name: "permissions decimal that reads like octal", entry: "path: /a\n    content: x\n    permissions: 644", content: "x", mode: 0o1204, owner: "root", group: "root",
			warning: `user-data:6:18: write_files[0].permissions: 644 is a decimal number to cloud-config, mode 01204; quote it as "0644" if you meant octal`,
		},
		{name: "no content writes an empty file", entry: "path: /a", content: "", mode: 0o644, owner: "root", group: "root"},
		{name: "append false", entry: "path: /a\n    content: x\n    append: false", content: "x", mode: 0o644, owner: "root", group: "root"},
		// An append keeps the file's owner and mode unless given.
		{name: "append true", entry: "path: /a\n    content: x\n    append: true", content: "x", append: true},
		{name: "append yes, with permissions", entry: "path: /a\n    content: x\n    append: yes\n    permissions: '0600'", content: "x", mode: 0o600, append: true},
		{name: "defer true", entry: "path: /a\n    content: x\n    defer: true\n    owner: nginx:nginx", content: "x", mode: 0o644, owner: "nginx", group: "nginx", deferred: true},
		{name: "defer on", entry: "path: /a\n    content: x\n    defer: on", content: "x", mode: 0o644, owner: "root", group: "root", deferred: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "#cloud-config\n# comment\nwrite_files:\n  - " + tt.entry + "\n"
			d, err := Decode("user-data", []byte(raw))
			if err != nil {
				t.Fatal(err)
			}
			files := decodeFiles(t, d)
			if len(files) != 1 {
				t.Fatalf("files = %+v", files)
			}
			f := files[0]
			got, err := f.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			if f.Append != tt.append || f.Defer != tt.deferred {
				t.Errorf("append %v defer %v, want %v %v", f.Append, f.Defer, tt.append, tt.deferred)
			}
			if string(got) != tt.content || f.Encoding != tt.encoding || f.Mode != tt.mode || f.Owner != tt.owner || f.Group != tt.group {
				t.Errorf("got content %q encoding %q mode %s owner %s group %s\nwant %q %q %s %s %s",
					got, f.Encoding, f.Mode, f.Owner, f.Group, tt.content, tt.encoding, tt.mode, tt.owner, tt.group)
			}
			if strings.Join(d.Warnings, "\n") != tt.warning {
				t.Errorf("warnings %q, want %q", d.Warnings, tt.warning)
			}
		})
	}
}

func TestWriteFilesSource(t *testing.T) {
	d, err := Decode("user-data", []byte("#cloud-config\nwrite_files:\n  - path: /a\n    source:\n      uri: s3://bucket/key\n"))
	if err != nil {
		t.Fatal(err)
	}
	if files := decodeFiles(t, d); files[0].Source != "s3://bucket/key" || files[0].Content != nil {
		t.Errorf("file %+v", files[0])
	}
}

func TestWriteFilesErrors(t *testing.T) {
	const secret = "hunter2-do-not-print"
	tests := []struct {
		name  string
		entry string
		want  string
	}{
		{name: "append", entry: "path: /a\n    content: x\n    append: sometimes", want: `user-data:6:13: write_files[0].append: want true or false, got "sometimes"`},
		{name: "encoding", entry: "path: /a\n    content: x\n    encoding: zstd", want: `user-data:6:15: write_files[0].encoding: unsupported encoding "zstd"; want b64, base64, gzip, gz+b64 or text/plain`},
		{name: "bad gzip", entry: "path: /a\n    encoding: gz+b64\n    content: " + base64.StdEncoding.EncodeToString([]byte(secret)), want: "user-data:6:14: write_files[0].content: not gzip data: gzip: invalid header (encoding gz+b64)"},
		{name: "bad base64", entry: "path: /a\n    encoding: gz+b64\n    content: '" + secret + "!'", want: "user-data:6:14: write_files[0].content: not valid base64, as encoding gz+b64 says"},
		{name: "headers", entry: "path: /a\n    source:\n      uri: https://x/y\n      headers:\n        Authorization: " + secret, want: "user-data:8:9: write_files[0].source.headers: request headers are not supported; bootstrap fetches s3:// with the instance role and https:// without headers"},
		{name: "mode", entry: "path: /a\n    content: x\n    permissions: rwxr-xr-x", want: `user-data:6:18: write_files[0].permissions: want an octal mode like 0644, "0600" or 0o755, got "rwxr-xr-x"`},
		{name: "owner kind", entry: "path: /a\n    content: x\n    owner: [a]", want: "user-data:6:12: write_files[0].owner: want a string, got a list"},
		{name: "source uri", entry: "path: /a\n    source:\n      uri: [x]", want: "user-data:6:12: write_files[0].source.uri: want a string, got a list"},
		{name: "entry not a mapping", entry: "just a string", want: "user-data:4:5: write_files[0]: want a mapping with path and content"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := "#cloud-config\n# comment\nwrite_files:\n  - " + tt.entry + "\n"
			_, err := Decode("user-data", []byte(raw))
			if err == nil || err.Error() != tt.want {
				t.Fatalf("error:\n%v\nwant:\n%s", err, tt.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error repeats a secret: %v", err)
			}
		})
	}
}

func TestWriteFilesNotAList(t *testing.T) {
	_, err := Decode("user-data", []byte("#cloud-config\nwrite_files:\n  path: /a\n"))
	if err == nil || err.Error() != "user-data:3:3: write_files: want a list of files" {
		t.Fatalf("error %v", err)
	}
}

func TestTheirPath(t *testing.T) {
	for in, want := range map[string]string{
		"files":                 "write_files",
		"files[2]":              "write_files[2]",
		"files[2].mode":         "write_files[2].permissions",
		"files[0].group":        "write_files[0].owner",
		"files[0].source":       "write_files[0].source.uri",
		"files[0].path":         "write_files[0].path",
		"imds.deadline":         "imds.deadline",
		"filesystem":            "filesystem",
		"files[1].content.more": "write_files[1].content.more",
	} {
		if got := theirPath(in); got != want {
			t.Errorf("theirPath(%s) = %s, want %s", in, got, want)
		}
	}
}
