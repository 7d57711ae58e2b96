package engine

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// BenchmarkRun is one first-boot run in-process: IMDS (emulator), one S3
// layer and one file from S3 (demo object store), plan and apply under a temp
// root. It reports IMDS requests per run beside the time.
func BenchmarkRun(b *testing.B) {
	w := newWorldB(b)
	w.store.Put("cfg", "base.yaml", []byte("files:\n  - path: /etc/app/app.conf\n    source: s3://cfg/app.conf\n    mode: \"0600\"\n"))
	w.store.Put("cfg", "app.conf", make([]byte, 64<<10))
	w.userData("include: [s3://cfg/base.yaml]\n")
	in := w.input()
	in.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	var imds int64
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		dir := b.TempDir()
		in.Root = filepath.Join(dir, "root")
		os.Mkdir(in.Root, 0o755)
		res, err := Run(context.Background(), in, filepath.Join(dir, "state-"+strconv.Itoa(i)))
		if err != nil {
			b.Fatal(err)
		}
		imds += res.IMDSRequests
	}
	b.ReportMetric(float64(imds)/float64(b.N), "imds-req/op")
}
