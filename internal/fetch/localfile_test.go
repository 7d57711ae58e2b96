package fetch

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestLocalFileNotRegular: a file:// source that is a device, a FIFO or a
// directory is refused at once, into memory and into a temp file alike, and
// leaves no temp file behind (file:///dev/zero once filled /tmp with 3.2 GB
// in 4 s).
func TestLocalFileNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, src, want string }{
		{"character device", "file:///dev/zero", "not a regular file: it is a character device"},
		{"FIFO without a writer", "file://" + fifo, "not a regular file: it is a FIFO"},
		{"directory", "file://" + dir, "not a regular file: it is a directory"},
	}
	f := newTest(Options{}, nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			scratch := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done := make(chan [2]error, 1)
			go func() {
				_, errBytes := f.Bytes(ctx, tt.src, "", 0)
				_, errFile := f.File(ctx, tt.src, "", scratch)
				done <- [2]error{errBytes, errFile}
			}()
			select {
			case errs := <-done:
				for i, err := range errs {
					if err == nil || !strings.Contains(err.Error(), tt.want) {
						t.Errorf("call %d: error %v, want it to contain %q", i, err, tt.want)
					}
				}
			case <-time.After(6 * time.Second):
				t.Fatal("fetch does not return")
			}
			if left, _ := os.ReadDir(scratch); len(left) != 0 {
				t.Errorf("temp files left: %v", left)
			}
		})
	}
}

func TestLocalFileCanceled(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(p, make([]byte, 1<<20), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	scratch := t.TempDir()
	_, err := newTest(Options{}, nil).File(ctx, "file://"+p, "", scratch)
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("error %v, want context canceled", err)
	}
	if left, _ := os.ReadDir(scratch); len(left) != 0 {
		t.Errorf("temp files left: %v", left)
	}
}
