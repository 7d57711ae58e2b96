package rootfs

import (
	"archive/tar"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func tarOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for name, body := range files {
		tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(body))
	}
	tw.Close()
	return b.Bytes()
}

func TestUnpackBoundsAndRename(t *testing.T) {
	lim := UnpackLimits{Entries: 10, FileBytes: 8, TotalBytes: 12}
	cases := []struct {
		name   string
		files  map[string]string
		rename func(string) string
		want   string // error, or "" with the file top/a written
	}{
		{"written", map[string]string{"top/a": "x"}, nil, ""},
		{"renamed and skipped", map[string]string{"repo/top/a": "x", "other/b": "y"},
			func(n string) string {
				if !strings.HasPrefix(n, "repo/") {
					return ""
				}
				return strings.TrimPrefix(n, "repo/")
			}, ""},
		{"one file too big", map[string]string{"top/a": "123456789"}, nil, "is over 8 bytes"},
		{"all files too big", map[string]string{"top/a": "1234567", "top/b": "1234567"}, nil, "more than 12 bytes"},
		{"too many entries", map[string]string{"1": "", "2": "", "3": "", "4": "", "5": "", "6": "", "7": "", "8": "", "9": "", "10": "", "11": ""}, nil, "more than 10 entries"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if os.Geteuid() != 0 {
				r.KeepOwnership()
			}
			_, err = Unpack(context.Background(), r, "/srv", bytes.NewReader(tarOf(t, c.files)), lim, c.rename)
			if c.want != "" {
				if err == nil || !strings.Contains(err.Error(), c.want) {
					t.Fatalf("err = %v, want %q", err, c.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(filepath.Join(dir, "srv/top/a")); err != nil || string(got) != "x" {
				t.Fatalf("srv/top/a: %q %v", got, err)
			}
			if _, err := os.Stat(filepath.Join(dir, "srv/other")); err == nil {
				t.Error("a skipped entry was written")
			}
		})
	}
}
