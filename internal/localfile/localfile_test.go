package localfile

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, f func(p string) error) string {
		p := filepath.Join(dir, name)
		if err := f(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	small := mk("small", func(p string) error { return os.WriteFile(p, []byte("0123456789"), 0o600) })
	fifo := mk("fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) })
	link := mk("link", func(p string) error { return os.Symlink(small, p) })
	tests := []struct {
		name, path string
		limit      int64
		want       string
		err        error
		msg        string
	}{
		{name: "within the limit", path: small, limit: 10, want: "0123456789"},
		{name: "a symlink to a regular file is followed", path: link, limit: 10, want: "0123456789"},
		{name: "one byte over", path: small, limit: 9, err: ErrTooLarge, msg: "read " + small + ": file too large: more than 9 bytes"},
		{name: "FIFO without a writer: no wait", path: fifo, limit: 10, err: ErrNotRegular, msg: "open " + fifo + ": not a regular file: it is a FIFO"},
		{name: "directory", path: dir, limit: 10, err: ErrNotRegular, msg: "it is a directory"},
		{name: "character device", path: "/dev/zero", limit: 10, err: ErrNotRegular, msg: "open /dev/zero: not a regular file: it is a character device"},
		{name: "missing", path: filepath.Join(dir, "nope"), limit: 10, err: os.ErrNotExist},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := ReadFile(tt.path, tt.limit)
			if tt.err == nil {
				if err != nil || string(b) != tt.want {
					t.Fatalf("ReadFile = %q, %v; want %q", b, err, tt.want)
				}
				return
			}
			if !errors.Is(err, tt.err) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("error %v, want %v containing %q", err, tt.err, tt.msg)
			}
		})
	}
}

func TestOpenNoFollow(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	if err := os.WriteFile(target, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if _, _, err := Open(link, true); !errors.Is(err, syscall.ELOOP) {
		t.Fatalf("Open(link, noFollow) error %v, want ELOOP", err)
	}
	f, fi, err := Open(link, false)
	if err != nil || fi.Size() != 1 {
		t.Fatalf("Open(link) = %v, %v", fi, err)
	}
	f.Close()
}

func TestReaderStopsAtCancel(t *testing.T) {
	f, err := os.Open("/dev/zero")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(50*time.Millisecond, cancel)
	done := make(chan error, 1)
	go func() { _, err := io.Copy(io.Discard, Reader(ctx, f)); done <- err }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("copy ended with %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("copy from /dev/zero ignores cancellation")
	}
}
