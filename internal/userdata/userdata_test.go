package userdata

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/config"
)

func gz(t testing.TB, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// mimeDoc builds a multipart user-data from parts given as header block
// and body, the way cloud-init's make-mime writes it.
func mimeDoc(parts ...[2]string) []byte {
	var b strings.Builder
	b.WriteString("Content-Type: multipart/mixed; boundary=\"==BOUNDARY==\"\nMIME-Version: 1.0\n\n")
	for _, p := range parts {
		b.WriteString("--==BOUNDARY==\n" + p[0] + "\n\n" + p[1] + "\n")
	}
	b.WriteString("--==BOUNDARY==--\n")
	return []byte(b.String())
}

func decodeFiles(t *testing.T, d *Decoded) []config.File {
	t.Helper()
	m, err := config.Merge(d.Layers)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := m.Decode(testFacts)
	if err != nil {
		t.Fatal(err)
	}
	return cfg.Files
}

func TestDecodeEmpty(t *testing.T) {
	for _, raw := range [][]byte{nil, []byte("  \n\t\r\n"), gz(t, nil), gz(t, []byte("\n\n")), []byte("#bootstrap-config\n")} {
		d, err := Decode("user-data", raw)
		if err != nil {
			t.Errorf("Decode(%q): %v", raw, err)
			continue
		}
		if len(d.Layers)+len(d.Scripts)+len(d.Warnings) != 0 {
			t.Errorf("Decode(%q) = %+v, want nothing", raw, d)
		}
	}
}

func TestDecodeSingleDocuments(t *testing.T) {
	tests := []struct {
		name    string
		raw     string
		layers  int
		scripts int
		err     string
	}{
		{name: "our yaml", raw: "imds:\n  tags: true\n", layers: 1},
		{name: "our yaml with header", raw: "#bootstrap-config\nimds:\n  tags: true\n", layers: 1},
		{name: "cloud-config", raw: "#cloud-config\nwrite_files:\n  - {path: /x, content: x}\n", layers: 1},
		{name: "cloud-config with CRLF", raw: "#cloud-config\r\nwrite_files:\r\n  - {path: /x, content: x}\r\n", layers: 1},
		{name: "script", raw: "#!/bin/sh\necho hi\n", scripts: 1},
		{name: "byte order mark", raw: "\xef\xbb\xbf#!/bin/sh\necho hi\n", scripts: 1},
		{name: "include", raw: "#include\nhttps://example.com/ud\n", err: "user-data: #include user-data is not supported: bootstrap does not fetch URLs listed in user-data; list them under include: in a bootstrap config layer"},
		{name: "include-once", raw: "#include-once\nhttps://example.com/ud\n", err: "user-data: #include-once user-data is not supported"},
		{name: "boothook", raw: "#cloud-boothook\necho early\n", err: "user-data: #cloud-boothook user-data is not supported by bootstrap; use a shell script (#!) or #cloud-config"},
		{name: "jinja", raw: "## template: jinja\n#cloud-config\n", err: "user-data: ## user-data is not supported by bootstrap"},
		{name: "part handler", raw: "#part-handler\ndef list_types(): pass\n", err: "#part-handler user-data is not supported"},
		{name: "cloud-config-archive", raw: "#cloud-config-archive\n- type: text/x-shellscript\n", err: "#cloud-config-archive user-data is not supported"},
		{name: "error inside our yaml", raw: "imds:\n  tgas: true\n", err: `user-data:2:3: imds: unknown key "tgas" (did you mean "tags"?)`},
		{name: "not yaml at all", raw: "\x00\x01\x02garbage", err: "user-data: YAML syntax:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decode("user-data", []byte(tt.raw))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(d.Layers) != tt.layers || len(d.Scripts) != tt.scripts {
				t.Errorf("got %d layers, %d scripts; want %d, %d", len(d.Layers), len(d.Scripts), tt.layers, tt.scripts)
			}
		})
	}
}

func TestDecodeGzip(t *testing.T) {
	raw := gz(t, []byte("#cloud-config\nwrite_files:\n  - path: /etc/motd\n    content: hi\n"))
	d, err := Decode("user-data", raw)
	if err != nil {
		t.Fatal(err)
	}
	files := decodeFiles(t, d)
	if len(files) != 1 || *files[0].Content != "hi" {
		t.Fatalf("files = %+v", files)
	}
}

func TestGzipErrors(t *testing.T) {
	bomb := gz(t, make([]byte, MaxDecompressed+1))
	// The repro: 15 MB of YAML in a few KiB of gzip.
	yamlBomb := gz(t, []byte("files:\n"+strings.Repeat("  - {path: /etc/x, content: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx}\n", 15<<20/56)))
	// Five parts just under the per-document limit: over the total.
	fifth := gz(t, append([]byte("#!/bin/sh\n"), make([]byte, MaxDecompressed/5+1)...))
	part := [2]string{"Content-Type: application/gzip\nContent-Transfer-Encoding: base64", base64.StdEncoding.EncodeToString(fifth)}
	trunc := gz(t, []byte("imds: {tags: true}\n"))
	trunc = trunc[:len(trunc)-6]
	tests := []struct {
		name string
		raw  []byte
		err  string
	}{
		{name: "bomb", raw: bomb, err: "user-data: gzip data expands beyond 1024 KiB, the limit for one document; refusing it"},
		{name: "15 MB of YAML", raw: yamlBomb, err: "user-data: gzip data expands beyond 1024 KiB, the limit for one document; refusing it"},
		{
			name: "parts together over the limit",
			raw:  mimeDoc(part, part, part, part, part),
			err:  "user-data[5]: gzip data expands beyond the user-data limit (4 MiB for all parts together); refusing it",
		},
		{name: "gzip twice", raw: gz(t, gz(t, []byte("imds: {}\n"))), err: "user-data: gzip data holds gzip data again; compress user-data once"},
		{name: "truncated", raw: trunc, err: "user-data: gzip data is corrupt or truncated"},
		{
			name: "part says gzip but is not",
			raw:  mimeDoc([2]string{"Content-Type: application/x-gzip", "imds: {}"}),
			err:  "user-data[1]: the part says application/x-gzip but does not hold gzip data",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode("user-data", tt.raw)
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want one containing %q", err, tt.err)
			}
		})
	}
}

func TestMIMEThreePartsInOrder(t *testing.T) {
	raw, err := os.ReadFile("testdata/mime-three-parts.txt")
	if err != nil {
		t.Fatal(err)
	}
	for _, crlf := range []bool{false, true} {
		if crlf {
			raw = bytes.ReplaceAll(raw, []byte("\n"), []byte("\r\n"))
		}
		d, err := Decode("user-data", raw)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.Layers) != 2 || len(d.Scripts) != 1 {
			t.Fatalf("crlf=%v: got %d layers, %d scripts", crlf, len(d.Layers), len(d.Scripts))
		}
		if got := d.Layers[0].Source + " " + d.Layers[1].Source + " " + d.Scripts[0].Name; got != "user-data[1](cloud-config.yaml) user-data[2](base.yaml) user-data[3](setup.sh)" {
			t.Errorf("crlf=%v: order %s", crlf, got)
		}
		if !bytes.HasPrefix(d.Scripts[0].Body, []byte("#!/bin/sh")) {
			t.Errorf("script body %q", d.Scripts[0].Body)
		}
		// The later part wins the merge: our config overrides cloud-config.
		if files := decodeFiles(t, d); len(files) != 1 || *files[0].Content != "hello from ip-10-0-0-12\n" {
			t.Errorf("crlf=%v: files %+v", crlf, files)
		}
	}
}

func TestMIMEParts(t *testing.T) {
	gzCloud := gz(t, []byte("#cloud-config\nwrite_files:\n  - {path: /from/gzip, content: x}\n"))
	tests := []struct {
		name     string
		raw      []byte
		sources  []string
		scripts  []string
		warnings []string
		err      string
	}{
		{
			name: "base64 parts",
			raw: mimeDoc(
				[2]string{"Content-Type: text/x-shellscript\nContent-Transfer-Encoding: base64", base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hi\n"))},
				[2]string{"Content-Type: text/x-bootstrap-config\nContent-Transfer-Encoding: BASE64", base64.StdEncoding.EncodeToString([]byte("imds:\n  tags: true\n"))},
			),
			sources: []string{"user-data[2]"},
			scripts: []string{"user-data[1]"},
		},
		{
			name: "gzip part in base64, sniffed",
			raw: mimeDoc(
				[2]string{"Content-Type: application/x-gzip\nContent-Transfer-Encoding: base64\nContent-Disposition: attachment; filename=\"c.gz\"", base64.StdEncoding.EncodeToString(gzCloud)},
			),
			sources: []string{"user-data[1](c.gz)"},
		},
		{
			name: "gzip body in a cloud-config part",
			raw: mimeDoc(
				[2]string{"Content-Type: text/cloud-config\nContent-Transfer-Encoding: base64", base64.StdEncoding.EncodeToString(gzCloud)},
			),
			sources: []string{"user-data[1]"},
		},
		{
			name: "no content type sniffs the first line",
			raw: mimeDoc(
				[2]string{"Content-Disposition: attachment; filename=\"a.sh\"", "#!/bin/sh\necho a"},
				[2]string{"Content-Disposition: attachment; filename=\"b.yaml\"", "imds: {tags: true}"},
			),
			sources: []string{"user-data[2](b.yaml)"},
			scripts: []string{"user-data[1](a.sh)"},
		},
		{
			name: "nested multipart",
			raw: mimeDoc(
				[2]string{"Content-Type: text/x-shellscript", "#!/bin/sh\necho outer"},
				[2]string{"Content-Type: multipart/mixed; boundary=inner", "--inner\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho inner\n--inner--"},
			),
			scripts: []string{"user-data[1]", "user-data[2]"},
		},
		{
			name: "unknown types: one warning naming them",
			raw: mimeDoc(
				[2]string{"Content-Type: text/x-include-url", "https://example.com/x"},
				[2]string{"Content-Type: text/cloud-boothook\nContent-Disposition: attachment; filename=\"hook\"", "#cloud-boothook\necho"},
				[2]string{"Content-Type: text/x-shellscript", "#!/bin/sh"},
			),
			scripts:  []string{"user-data[3]"},
			warnings: []string{"user-data: skipped MIME parts of types bootstrap does not handle: user-data[1] (text/x-include-url), user-data[2](hook) (text/cloud-boothook)"},
		},
		{
			name: "text/plain with #include is an error",
			raw:  mimeDoc([2]string{"Content-Type: text/plain", "#include\nhttps://example.com/x"}),
			err:  "user-data[1]: #include user-data is not supported",
		},
		{
			name: "errors point inside the part",
			raw: mimeDoc(
				[2]string{"Content-Type: text/x-shellscript", "#!/bin/sh"},
				[2]string{"Content-Type: text/x-bootstrap-config\nContent-Disposition: attachment; filename=\"base.yaml\"", "imds:\n  tags: true\n  deadlin: 5s"},
			),
			err: `user-data[2](base.yaml):3:3: imds: unknown key "deadlin" (did you mean "deadline"?)`,
		},
		{
			name: "unsupported transfer encoding",
			raw:  mimeDoc([2]string{"Content-Type: text/x-shellscript\nContent-Transfer-Encoding: uuencode", "begin 644 x"}),
			err:  `user-data[1]: unsupported Content-Transfer-Encoding "uuencode"; use base64, quoted-printable or 7bit`,
		},
		{
			name: "bad base64",
			raw:  mimeDoc([2]string{"Content-Type: text/x-shellscript\nContent-Transfer-Encoding: base64", "!!not base64!!"}),
			err:  "user-data[1]: decoding the part's base64 body: illegal base64 data",
		},
		{
			name: "truncated: no closing boundary",
			raw:  []byte("Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho cut he"),
			err:  "user-data[1]: reading the part: unexpected EOF (is the user-data truncated?)",
		},
		{
			name: "no boundary",
			raw:  []byte("Content-Type: multipart/mixed\n\n--b\n"),
			err:  "user-data: MIME multipart/mixed has no boundary parameter",
		},
		{
			name:    "single part MIME message",
			raw:     []byte("Content-Type: text/x-shellscript\nMIME-Version: 1.0\n\n#!/bin/sh\necho hi\n"),
			scripts: []string{"user-data[1]"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decode("user-data", tt.raw)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("error %v\nwant one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var sources, scripts []string
			for _, l := range d.Layers {
				sources = append(sources, l.Source)
			}
			for _, s := range d.Scripts {
				scripts = append(scripts, s.Name)
			}
			if fmt.Sprint(sources) != fmt.Sprint(tt.sources) || fmt.Sprint(scripts) != fmt.Sprint(tt.scripts) || fmt.Sprint(d.Warnings) != fmt.Sprint(tt.warnings) {
				t.Errorf("layers %q scripts %q warnings %q\nwant %q %q %q", sources, scripts, d.Warnings, tt.sources, tt.scripts, tt.warnings)
			}
		})
	}
}

func TestTooManyParts(t *testing.T) {
	parts := make([][2]string, maxParts+5)
	for i := range parts {
		parts[i] = [2]string{"Content-Type: text/x-shellscript", "#!/bin/sh"}
	}
	_, err := Decode("user-data", mimeDoc(parts...))
	if err == nil || !strings.Contains(err.Error(), "more than 1000 MIME parts") {
		t.Fatalf("error %v", err)
	}
}

func TestDocumentLimitAfterDecoding(t *testing.T) {
	big := func(first string) []byte {
		return append([]byte(first), bytes.Repeat([]byte("# padding\n"), MaxDocument/10+1)...)
	}
	b64 := func(data []byte) [2]string {
		return [2]string{"Content-Type: text/x-shellscript\nContent-Transfer-Encoding: base64", base64.StdEncoding.EncodeToString(data)}
	}
	tests := []struct {
		name string
		raw  []byte
		err  string
	}{
		{"script", big("#!/bin/sh\n"), "user-data: the script is 1048590 bytes, more than the 1024 KiB a user-data script may have"},
		{"our YAML", big("#bootstrap-config\n"), "user-data: the document is 1048598 bytes, more than the 1024 KiB a layer may have"},
		{"cloud-config", big("#cloud-config\n"), "user-data: the document is 1048594 bytes, more than the 1024 KiB a layer may have"},
		{"base64 MIME part", mimeDoc(b64(big("#!/bin/sh\n"))), "user-data[1]: the part is more than 1024 KiB once decoded, the limit for one document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode("user-data", tt.raw)
			if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
				t.Fatalf("error %v\nwant one starting %q", err, tt.err)
			}
		})
	}
}

func TestMIMEBoundaryNeverAppears(t *testing.T) {
	tests := []struct {
		name, raw, err string
	}{
		{
			name: "parts use another boundary",
			raw:  "Content-Type: multipart/mixed; boundary=\"==A==\"\nMIME-Version: 1.0\n\n--==B==\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho hi\n--==B==--\n",
			err:  `user-data: MIME multipart/mixed: no part starts with the declared boundary "==A=="; make the boundary parameter match the --BOUNDARY lines between the parts`,
		},
		{
			name: "no body at all",
			raw:  "Content-Type: multipart/mixed; boundary=b\n\n",
			err:  `user-data: MIME multipart/mixed: no part starts with the declared boundary "b"; make the boundary parameter match the --BOUNDARY lines between the parts`,
		},
		{
			name: "boundary longer than MIME allows is shortened",
			raw:  "Content-Type: multipart/mixed; boundary=" + strings.Repeat("b", 5000) + "\n\nno parts\n",
			err:  `user-data: MIME multipart/mixed: no part starts with the declared boundary "` + strings.Repeat("b", 70) + `"…; make the boundary parameter match the --BOUNDARY lines between the parts`,
		},
		{name: "closing boundary only: empty, not an error", raw: "Content-Type: multipart/mixed; boundary=b\r\n\r\n--b--\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode("user-data", []byte(tt.raw))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.err {
				t.Fatalf("error %q\nwant %q", got, tt.err)
			}
		})
	}
}

func TestErrorsBounded(t *testing.T) {
	// Every part is wrong; the list keeps the first config.MaxErrors and
	// counts the rest.
	parts := make([][2]string, 300)
	for i := range parts {
		parts[i] = [2]string{"Content-Type: text/x-bootstrap-config", "saltstack: {}\nansible: {}"}
	}
	_, err := Decode("user-data", mimeDoc(parts...))
	lines := strings.Split(fmt.Sprint(err), "\n")
	want := fmt.Sprintf("and %d more problems not shown; fix the ones above first", 600-config.MaxErrors)
	if len(lines) != config.MaxErrors+1 || lines[len(lines)-1] != want {
		t.Fatalf("%d lines, last %q; want %d, last %q", len(lines), lines[len(lines)-1], config.MaxErrors+1, want)
	}
}
