package userdata

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"strings"
	"testing"
)

// benchMIME is a MIME user-data as Terraform's cloudinit_config writes it:
// a cloud-config part, our config with 50 files, and a script.
func benchMIME() []byte {
	var cfg strings.Builder
	cfg.WriteString("include:\n  - s3://acme/base.yaml\nfiles:\n")
	for i := 0; i < 50; i++ {
		fmt.Fprintf(&cfg, "  - path: /etc/app/f%d.conf\n    content: \"value ${instance_id} %d\"\n    mode: \"0640\"\n", i, i)
	}
	return []byte("Content-Type: multipart/mixed; boundary=\"B\"\nMIME-Version: 1.0\n\n" +
		"--B\nContent-Type: text/cloud-config\n\n#cloud-config\nwrite_files:\n  - path: /etc/a\n    content: a\npackages: [x]\n" +
		"--B\nContent-Type: text/x-bootstrap-config\n\n" + cfg.String() +
		"--B\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho hi\n--B--\n")
}

func BenchmarkDecodeMIME(b *testing.B) {
	raw := benchMIME()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		d, err := Decode("user-data", raw)
		if err != nil || len(d.Layers) != 2 || len(d.Scripts) != 1 {
			b.Fatalf("decode: %v", err)
		}
	}
}

func BenchmarkDecodeGzip(b *testing.B) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(benchMIME())
	zw.Close()
	raw := buf.Bytes()
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode("user-data", raw); err != nil {
			b.Fatal(err)
		}
	}
}
