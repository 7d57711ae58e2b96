package userdata

import (
	"bytes"
	"encoding/base64"
	"mime/quotedprintable"
	"strings"
	"testing"
)

// User-data is secret as a whole; what it hides under an encoding must reach
// the redactor as readable text too, or `set -x` in a gzip or base64 script
// prints its secrets.
func TestDecodedBodiesAreExposed(t *testing.T) {
	const line = "DB_PASSWORD=correct-horse-battery-staple"
	script := "#!/bin/sh\nset -x\n" + line + "\n"
	b64 := base64.StdEncoding.EncodeToString([]byte(script))
	var qp bytes.Buffer
	w := quotedprintable.NewWriter(&qp)
	w.Write([]byte("#!/bin/sh\nset -x\nDB_PASSWORD=correct-horse-battery-staple=\n"))
	w.Close()
	cloudConfig := func(enc, content string) []byte {
		return []byte("#cloud-config\nwrite_files:\n  - path: /etc/x\n    encoding: " + enc + "\n    content: " + content + "\n")
	}
	tests := map[string][]byte{
		"gzip user-data": gz(t, []byte(script)),
		"base64 part":    mimeDoc([2]string{"Content-Type: text/x-shellscript\nContent-Transfer-Encoding: base64", b64}),
		"quoted-printable part": mimeDoc([2]string{"Content-Type: text/x-shellscript\nContent-Transfer-Encoding: quoted-printable",
			qp.String()}),
		"gzip part": mimeDoc([2]string{"Content-Type: application/gzip\nContent-Transfer-Encoding: base64",
			base64.StdEncoding.EncodeToString(gz(t, []byte(script)))}),
		"cloud-config b64 content":      cloudConfig("b64", b64),
		"cloud-config !!binary content": []byte("#cloud-config\nwrite_files:\n  - path: /etc/x\n    content: !!binary " + b64 + "\n"),
		"cloud-config gz+b64 content": cloudConfig("gz+b64",
			base64.StdEncoding.EncodeToString(gz(t, []byte(script)))),
	}
	for name, raw := range tests {
		t.Run(name, func(t *testing.T) {
			d, err := Decode("user-data", raw)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range d.Plain {
				found = found || strings.Contains(string(p), line)
			}
			if !found {
				t.Errorf("no decoded body holds the script's line; Plain has %d bodies", len(d.Plain))
			}
		})
	}
	d, err := Decode("user-data", []byte(script))
	if err != nil || len(d.Plain) != 0 {
		t.Errorf("plain user-data: %d decoded bodies, want none (the raw user-data is registered as it is), err %v", len(d.Plain), err)
	}
}
