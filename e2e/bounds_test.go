//go:build e2e

package e2e

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/testbed"
)

// maxRSSKB is the memory a first boot may take, whatever its input: small
// instances boot with little, and an out-of-memory kill at boot leaves a
// machine half configured with nothing in the journal.
const maxRSSKB = 64 << 10

// bombTimeout bounds each invocation: a bomb must fail fast, not wear the
// boot's deadline down.
const bombTimeout = 20 * time.Second

type measured struct {
	code    int
	rssKB   int64
	elapsed time.Duration
	stderr  string
}

// measure runs the binary once and reads its peak RSS from wait4's rusage,
// through /usr/bin/time: a child started straight from this test process
// inherits the test's own RSS as its high-water mark (Go starts children
// with CLONE_VM, and exec keeps the old mm's peak), so it would report
// hundreds of MB whatever it did.
func measure(t *testing.T, env []string, args ...string) measured {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), bombTimeout)
	defer cancel()
	rssFile := filepath.Join(t.TempDir(), "rss")
	cmd := exec.CommandContext(ctx, "/usr/bin/time", append([]string{"-o", rssFile, "-f", "%M", bin}, args...)...)
	cmd.Env = append(cleanEnv(), env...)
	// At the time bound kill time and bootstrap both: bootstrap alone
	// would keep stderr open and Wait with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &bytes.Buffer{}, &stderr
	start := time.Now()
	err := cmd.Run()
	m := measured{elapsed: time.Since(start), stderr: stderr.String()}
	if ctx.Err() != nil {
		t.Fatalf("%v still running after %s: killed", args[:1], bombTimeout)
	}
	if ee, ok := err.(*exec.ExitError); ok {
		m.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running bootstrap: %v", err)
	}
	out, err := os.ReadFile(rssFile)
	if err != nil {
		t.Fatalf("reading the peak RSS: %v", err)
	}
	// time writes "Command exited with non-zero status N" first then.
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if _, err := fmt.Sscan(lines[len(lines)-1], &m.rssKB); err != nil || m.rssKB <= 0 {
		t.Fatalf("peak RSS %q: %v", out, err)
	}
	outputMu.Lock()
	allOutput.WriteString(m.stderr)
	outputMu.Unlock()
	return m
}

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// aliasBomb is the 970 KB document: one 900 KB anchor referenced
// 2,000 times (plan took 1.8 GB, run 2.5 GB).
func aliasBomb() []byte {
	var b strings.Builder
	b.WriteString("files:\n  - path: /etc/a\n    content: &big " + strings.Repeat("x", 900_000) + "\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  - path: /etc/f%d\n    content: *big\n", i)
	}
	return []byte(b.String())
}

func mimeParts(boundary string, parts ...string) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=%q\nMIME-Version: 1.0\n\n", boundary)
	for _, p := range parts {
		b.WriteString(p)
	}
	return []byte(b.String())
}

// TestInputBombsBounded runs plan, validate and run on every input the
// spine must survive and asserts each fails (or succeeds) as it should,
// within bombTimeout, under maxRSSKB of peak RSS.
func TestInputBombsBounded(t *testing.T) {
	type setup struct {
		files map[string][]byte // written under the test dir; "root/…" is the target
		fifos []string          // made under the test dir
		// userData is served by IMDS (datasource ec2) when set; else
		// --config config.yaml with datasource none, or file when seed/ exists.
		userData []byte
	}
	deep := "files: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n"
	var manyIncludes strings.Builder
	manyIncludes.WriteString("include:\n")
	layers := map[string][]byte{}
	for i := range 40 {
		fmt.Fprintf(&manyIncludes, "  - file://DIR/layers/l%d.yaml\n", i)
		layers[fmt.Sprintf("layers/l%d.yaml", i)] = []byte("version: 1\n")
	}
	var unknownKeys strings.Builder
	for i := 0; unknownKeys.Len() < 1<<20-64; i++ {
		fmt.Fprintf(&unknownKeys, "k%06d: 1\n", i)
	}
	var tinyParts []string
	for range 5000 {
		tinyParts = append(tinyParts, "--b\n\n#!/bin/sh\n")
	}
	passwdGiant := append([]byte("app:x:1000:1000::/:/bin/sh\n"), bytes.Repeat([]byte("y"), 9<<20)...)
	ownedByApp := []byte("files:\n  - path: /etc/app.conf\n    owner: app\n    content: x\n")

	tests := []struct {
		name    string
		setup   setup
		cmds    []string
		code    int    // -1: any failure
		message string // in stderr
	}{
		{name: "alias bomb, 970 KB", setup: setup{files: map[string][]byte{"config.yaml": aliasBomb()}},
			code: 2, message: "YAML aliases expand to more than 1024 KiB of values"},
		{name: "alias bomb in 5.5 KB of gzip user-data", setup: setup{userData: gzipped(t, aliasBomb())},
			code: 2, message: "YAML aliases expand to more than 1024 KiB of values"},
		{name: "15 MB of gzip-decoded YAML", setup: setup{userData: gzipped(t, []byte("files:\n"+strings.Repeat("  - {path: /etc/x, content: xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx}\n", 15<<20/56)))},
			code: 2, message: "gzip data expands beyond 1024 KiB"},
		{name: "gzip in gzip", setup: setup{userData: gzipped(t, gzipped(t, make([]byte, 100<<20)))},
			code: 2, message: "gzip data holds gzip data again"},
		{name: "100 MB of user-data from IMDS", setup: setup{userData: bytes.Repeat([]byte("#"), 100<<20)},
			code: 2, message: "the user-data is larger than 1024 KiB"},
		{name: "MIME of 5,000 tiny parts", setup: setup{userData: mimeParts("b", tinyParts...)},
			code: 2, message: "more than 1000 MIME parts"},
		{name: "MIME boundary never appears", setup: setup{userData: mimeParts("==A==", "--==B==\nContent-Type: text/x-shellscript\n\n#!/bin/sh\necho hi\n--==B==--\n")},
			code: 2, message: `no part starts with the declared boundary "==A=="`},
		{name: "1 MiB of tiny flow values", setup: setup{files: map[string][]byte{"config.yaml": []byte("files: [" + strings.Repeat("1,", 1<<19-8) + "1]\n")}},
			code: 2, message: "too many YAML values for its size"},
		{name: "1 MiB of unknown keys", setup: setup{files: map[string][]byte{"config.yaml": []byte(unknownKeys.String())}},
			code: 2, message: "config.yaml"},
		{name: "nesting 20,000 deep", setup: setup{files: map[string][]byte{"config.yaml": []byte(deep)}},
			code: 2, message: "config.yaml"},
		{name: "a 1 MiB key", setup: setup{files: map[string][]byte{"config.yaml": []byte("? " + strings.Repeat("k", 1<<20-16) + "\n: 1\n")}},
			code: 2, message: "unknown key a value of 1048560 bytes"},
		{name: "40 includes", setup: setup{files: merge(layers, map[string][]byte{"config.yaml": []byte(manyIncludes.String())})},
			code: 2, message: "more than 32 layers"},
		{name: "include of /dev/zero", setup: setup{files: map[string][]byte{"config.yaml": []byte("include: [file:///dev/zero]\n")}},
			code: -1, message: "not a regular file: it is a character device"},
		{name: "file source /dev/zero", setup: setup{files: map[string][]byte{"config.yaml": []byte("files:\n  - {path: /etc/z, source: file:///dev/zero}\n")}},
			cmds: []string{"plan", "run"}, code: -1, message: "not a regular file: it is a character device"},
		{name: "seed meta-data of 100 MB", setup: setup{files: map[string][]byte{"seed/meta-data": make([]byte, 100<<20), "seed/user-data": []byte("version: 1\n")}},
			code: 2, message: "more than 65536 bytes"},
		{name: "seed user-data is a FIFO", setup: setup{files: map[string][]byte{"seed/meta-data": []byte("instance-id: i-1\n")}, fifos: []string{"seed/user-data"}},
			code: 2, message: "not a regular file: it is a FIFO"},
		{name: "target passwd is a FIFO", setup: setup{files: map[string][]byte{"config.yaml": ownedByApp}, fifos: []string{"root/etc/passwd"}},
			cmds: []string{"plan", "run"}, code: -1, message: "not a regular file: it is a FIFO"},
		{name: "target passwd with a 9 MB line", setup: setup{files: map[string][]byte{"config.yaml": ownedByApp, "root/etc/passwd": passwdGiant}},
			cmds: []string{"plan", "run"}, code: -1, message: "more than 8388608 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"root/etc", "state"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for name, data := range tt.setup.files {
				p := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, bytes.ReplaceAll(data, []byte("DIR"), []byte(dir)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			for _, name := range tt.setup.fifos {
				if err := syscall.Mkfifo(filepath.Join(dir, name), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			common := []string{"--root", filepath.Join(dir, "root"), "--state-dir", filepath.Join(dir, "state")}
			var env []string
			switch {
			case tt.setup.userData != nil:
				b := newBed(t, testbed.IMDSConfig{UserData: tt.setup.userData})
				common = append(common, "--datasource", "ec2")
				env = append(env, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+b.url)
			case tt.setup.files["seed/meta-data"] != nil:
				common = append(common, "--datasource", "file", "--datasource-dir", filepath.Join(dir, "seed"))
			default:
				common = append(common, "--datasource", "none", "--config", filepath.Join(dir, "config.yaml"))
			}
			cmds := tt.cmds
			if cmds == nil {
				cmds = []string{"plan", "validate", "run"}
			}
			for _, c := range cmds {
				m := measure(t, env, append([]string{c}, common...)...)
				t.Logf("figure: %s: exit %d in %s, peak RSS %d KB", c, m.code, m.elapsed.Round(time.Millisecond), m.rssKB)
				if (tt.code == -1 && m.code == 0) || (tt.code != -1 && m.code != tt.code) {
					t.Errorf("%s: exit %d, want %d; stderr:\n%.2000s", c, m.code, tt.code, m.stderr)
				}
				if !strings.Contains(m.stderr, tt.message) {
					t.Errorf("%s: stderr lacks %q:\n%.2000s", c, tt.message, m.stderr)
				}
				if m.rssKB > maxRSSKB {
					t.Errorf("%s: peak RSS %d KB, over %d KB", c, m.rssKB, maxRSSKB)
				}
				if len(m.stderr) > 64<<10 {
					t.Errorf("%s: %d bytes of messages: errors are not bounded", c, len(m.stderr))
				}
			}
			if left := treeFiles(t, filepath.Join(dir, "root")); len(left) > 1 || (len(left) == 1 && left[0] != "etc/passwd") {
				t.Errorf("files written under the root: %v", left)
			}
		})
	}
}

func merge(a, b map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// TestStopDuringFileCopy: SIGTERM stops a run or a plan copying a large
// file:// source (the copy once ignored cancellation and kept writing after
// the scratch directory was removed), promptly, and the scratch is gone.
func TestStopDuringFileCopy(t *testing.T) {
	for _, cmdName := range []string{"plan", "run"} {
		t.Run(cmdName, func(t *testing.T) {
			dir := t.TempDir()
			big := filepath.Join(dir, "big.img")
			f, err := os.Create(big)
			if err != nil {
				t.Fatal(err)
			}
			// Sparse: reading it is fast, writing the copy is not.
			if err := f.Truncate(64 << 30); err != nil {
				t.Fatal(err)
			}
			f.Close()
			cfg := filepath.Join(dir, "config.yaml")
			if err := os.WriteFile(cfg, []byte("files:\n  - {path: /var/big.img, source: file://"+big+"}\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			tmp, root, st := filepath.Join(dir, "tmp"), filepath.Join(dir, "root"), filepath.Join(dir, "state")
			for _, d := range []string{tmp, root} {
				if err := os.Mkdir(d, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			cmd := exec.Command(bin, cmdName, "--datasource", "none", "--root", root, "--state-dir", st, "--config", cfg)
			cmd.Env = append(cleanEnv(), "TMPDIR="+tmp)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			// Wait until the copy has started: a staged file appears.
			deadline := time.Now().Add(10 * time.Second)
			for time.Now().Before(deadline) && len(treeFiles(t, tmp))+len(treeFiles(t, filepath.Join(st, "scratch"))) == 0 {
				time.Sleep(20 * time.Millisecond)
			}
			stopped := time.Now()
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(5 * time.Second):
				cmd.Process.Kill()
				<-done
				t.Fatalf("%s still running 5 s after SIGTERM", cmdName)
			}
			took := time.Since(stopped)
			t.Logf("figure: %s stopped %s after SIGTERM", cmdName, took.Round(time.Millisecond))
			if cmd.ProcessState.ExitCode() == 0 {
				t.Errorf("exit 0 after SIGTERM; stderr:\n%s", stderr.String())
			}
			if left := append(treeFiles(t, tmp), treeFiles(t, filepath.Join(st, "scratch"))...); len(left) != 0 {
				t.Errorf("scratch left behind: %v", left)
			}
			if left := treeFiles(t, root); len(left) != 0 {
				t.Errorf("files written under the root: %v", left)
			}
		})
	}
}
