package userdata

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/opsboot/bootstrap/internal/config"
)

// FuzzDecode: no user-data may panic or hang the boot, and every failure
// is a non-empty config.ErrorList of messages with a source.
func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.txt")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	cloud := []byte("#cloud-config\nwrite_files:\n  - path: /a\n    encoding: gz+b64\n    content: " +
		base64.StdEncoding.EncodeToString(gz(f, []byte("hi ${x}\n"))) + "\n    permissions: 644\n")
	f.Add(cloud)
	f.Add(gz(f, cloud))
	f.Add(gz(f, []byte("#!/bin/sh\necho hi\n")))
	f.Add(mimeDoc(
		[2]string{"Content-Type: application/gzip\nContent-Transfer-Encoding: base64", base64.StdEncoding.EncodeToString(gz(f, cloud))},
		[2]string{"Content-Type: text/x-bootstrap-config\nContent-Transfer-Encoding: quoted-printable", "imds:\n  tags: tr=\nue"},
		[2]string{"Content-Type: multipart/mixed; boundary=in", "--in\n\n#!/bin/sh\n--in--"},
	))
	f.Add([]byte("#include\nhttps://example.com\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		d, err := Decode("ud", raw)
		if err != nil {
			list, ok := err.(config.ErrorList)
			if !ok || len(list) == 0 {
				t.Fatalf("error %T %v, want a non-empty config.ErrorList", err, err)
			}
			for _, e := range list {
				if e.Source == "" || e.Msg == "" {
					t.Fatalf("error without source or message: %#v", e)
				}
			}
			return
		}
		m, err := config.Merge(d.Layers)
		if err != nil {
			t.Fatalf("layers from Decode do not merge: %v", err)
		}
		_, _ = m.Decode(testFacts)
	})
}
