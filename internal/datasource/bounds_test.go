package datasource

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/testbed"
)

func TestEC2UserDataBounded(t *testing.T) {
	tests := []struct {
		name     string
		size     int
		wantErr  string
		badInput bool
	}{
		{name: "at the limit", size: MaxUserData},
		{name: "one byte over", size: MaxUserData + 1, badInput: true,
			wantErr: "the user-data is larger than 1024 KiB, bootstrap's limit (EC2 itself allows 16 KiB)"},
		{name: "100 MB", size: 100 << 20, badInput: true,
			wantErr: "the user-data is larger than 1024 KiB, bootstrap's limit (EC2 itself allows 16 KiB)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, u := startIMDS(t, testbed.IMDSConfig{UserData: bytes.Repeat([]byte("#"), tt.size)})
			e := newTestEC2(EC2Options{Endpoint: u, UserData: true}, nil)
			md, err := e.Fetch(context.Background())
			if tt.wantErr == "" {
				if err != nil || len(md.UserData) != tt.size {
					t.Fatalf("Fetch: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
			if badinput.Is(err) != tt.badInput {
				t.Errorf("bad input = %v, want %v", badinput.Is(err), tt.badInput)
			}
			// Token, identity, mac, hostname, user-data once: not retried.
			if e.Requests() != 5 {
				t.Errorf("%d requests, want 5 (a too large answer is final)", e.Requests())
			}
		})
	}
}

func TestEC2OtherAnswersBounded(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == tokenPath {
			w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "300")
			fmt.Fprint(w, "token")
			return
		}
		fmt.Fprintf(w, `{"instanceId": "i-1", "pad": "%s"}`, strings.Repeat("x", maxMetaData))
	}))
	defer srv.Close()
	e := newTestEC2(EC2Options{Endpoint: srv.URL, Deadline: 2 * time.Second}, nil)
	_, err := e.Fetch(context.Background())
	want := "the answer to GET /latest/dynamic/instance-identity/document is larger than 64 KiB, far more than IMDS sends"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want it to contain %q", err, want)
	}
	if e.Requests() != 2 {
		t.Errorf("%d requests, want 2", e.Requests())
	}
}

// TestFileSeedNotRegular: a seed file that is a FIFO, a device or a
// directory is refused at once (a FIFO's open would wait for a writer
// forever), and so is one past its size limit.
func TestFileSeedNotRegular(t *testing.T) {
	tests := []struct {
		name, file string
		make       func(path string) error
		wantErr    string
	}{
		{"user-data is a FIFO", "user-data", func(p string) error { return syscall.Mkfifo(p, 0o600) }, "user-data: not a regular file: it is a FIFO"},
		{"meta-data is a FIFO", "meta-data", func(p string) error { return syscall.Mkfifo(p, 0o600) }, "meta-data: not a regular file: it is a FIFO"},
		{"user-data is /dev/zero", "user-data", func(p string) error { return os.Symlink("/dev/zero", p) }, "user-data: not a regular file: it is a character device"},
		{"user-data is a directory", "user-data", func(p string) error { return os.Mkdir(p, 0o755) }, "user-data: not a regular file: it is a directory"},
		{"user-data too large", "user-data", func(p string) error { return os.WriteFile(p, make([]byte, MaxUserData+1), 0o600) }, "user-data: file too large: more than 1048576 bytes"},
		{"meta-data too large", "meta-data", func(p string) error { return os.WriteFile(p, make([]byte, maxMetaData+1), 0o600) }, "meta-data: file too large: more than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, "seed")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := tt.make(filepath.Join(dir, tt.file)); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := NewFile(dir, root).Fetch(ctx); done <- err }()
			select {
			case err := <-done:
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				if !badinput.Is(err) {
					t.Errorf("not bad input: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Fetch hangs")
			}
		})
	}
}

func TestMachineIDNotRegular(t *testing.T) {
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(root, "etc", "machine-id"), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan string, 1)
	go func() { done <- machineID(root) }()
	select {
	case id := <-done:
		if id != "" {
			t.Fatalf("machineID = %q, want none", id)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("machineID hangs on a FIFO")
	}
}
