package rootfs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const crashChildEnv = "BOOTSTRAP_ROOTFS_CRASH_CHILD"

const crashSize = 4 << 20

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// crashChild rewrites /etc/big forever, alternating two contents, until it
// is killed. It says "ready" once one write has completed.
func crashChild(dir string) {
	r, err := Open(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	contents := [][]byte{bytes.Repeat([]byte("A"), crashSize), bytes.Repeat([]byte("B"), crashSize)}
	spec := FileSpec{Mode: 0o640, Owner: fmt.Sprint(os.Geteuid()), Group: fmt.Sprint(os.Getegid())}
	for i := 0; ; i++ {
		if _, _, err := r.WriteFile("/etc/big", bytes.NewReader(contents[i%2]), spec); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(2)
		}
		if i == 0 {
			fmt.Println("ready")
		}
	}
}

// TestCrashMidWrite SIGKILLs a child that is rewriting a file and checks the
// final path always holds a complete old or new version with the exact mode,
// and that the next run removes the temp file the killed one left.
func TestCrashMidWrite(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	delays := []time.Duration{0, 1 * time.Millisecond, 3 * time.Millisecond, 7 * time.Millisecond,
		12 * time.Millisecond, 20 * time.Millisecond, 33 * time.Millisecond, 50 * time.Millisecond}
	sawTemp := 0
	for _, delay := range delays {
		t.Run(delay.String(), func(t *testing.T) {
			dir := t.TempDir()
			mustWriteHost(t, filepath.Join(dir, "etc/big"), "old")
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
			cmd.Stderr = os.Stderr
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(out).ReadString('\n')
			if err != nil || strings.TrimSpace(line) != "ready" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("child did not get ready: %q %v", line, err)
			}
			time.Sleep(delay)
			cmd.Process.Signal(syscall.SIGKILL)
			err = cmd.Wait()
			if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
				t.Fatalf("child was not killed by the signal: %v", err)
			}

			p := filepath.Join(dir, "etc/big")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			full := len(b) == crashSize && (bytes.Count(b, []byte("A")) == crashSize || bytes.Count(b, []byte("B")) == crashSize)
			if !full {
				t.Fatalf("final path holds a partial file: %d bytes", len(b))
			}
			fi, _ := os.Stat(p)
			if fi.Mode().Perm() != 0o640 {
				t.Errorf("mode = %v, want 0640", fi.Mode().Perm())
			}
			sawTemp += len(tempsIn(t, filepath.Join(dir, "etc")))

			// The next run finishes the job and sweeps the leftovers.
			r, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			if _, _, err := r.WriteFile("/etc/big", strings.NewReader("C"), mine(0o640)); err != nil {
				t.Fatal(err)
			}
			if b, _ := os.ReadFile(p); string(b) != "C" {
				t.Errorf("after re-run content = %q, want C", b)
			}
			if tmps := tempsIn(t, filepath.Join(dir, "etc")); len(tmps) != 0 {
				t.Errorf("temp files left after re-run: %v", tmps)
			}
		})
	}
	t.Logf("killed runs left %d temp files behind (all swept)", sawTemp)
}
