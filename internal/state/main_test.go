package state

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Children: the test binary re-executes itself with childEnv set to
// "<role>:<state dir>" to act as another bootstrap process.
const childEnv = "BOOTSTRAP_STATE_TEST_CHILD"

// journalCrashDetail makes appends big enough for a SIGKILL to land inside
// the write(2) and tear the line.
const journalCrashDetail = 4 << 20

func TestMain(m *testing.M) {
	if v := os.Getenv(childEnv); v != "" {
		role, dir, _ := strings.Cut(v, ":")
		if err := runChild(role, dir); err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runChild(role, dir string) error {
	d, err := Open(dir, nil)
	if err != nil {
		return err
	}
	switch role {
	case "lock":
		// Hold the lock until stdin closes or we are killed.
		if _, err := d.Lock(context.Background(), false); err != nil {
			return err
		}
		fmt.Println("ready")
		io.Copy(io.Discard, os.Stdin)
		return nil
	case "markdone":
		inst, err := d.Instance("i-crash")
		if err != nil {
			return err
		}
		for i := 0; ; i++ {
			if err := inst.MarkDone(fmt.Sprintf("step-%06d", i), "run-child"); err != nil {
				return err
			}
			if i == 0 {
				fmt.Println("ready")
			}
		}
	case "journal-midwrite":
		// Append a few entries, then stop inside the write of the next
		// one and wait there to be killed.
		for i := 0; i < 3; i++ {
			if err := d.Append(Entry{Run: "run-child", Step: fmt.Sprintf("step-%d", i), Start: time.Now(), Outcome: OutcomeOK}); err != nil {
				return err
			}
		}
		writeJournal = func(f *os.File, b []byte) (int, error) {
			if _, err := f.Write(b[:len(b)/2]); err != nil {
				return 0, err
			}
			fmt.Println("ready")
			for {
				time.Sleep(time.Hour) // until killed
			}
		}
		return d.Append(Entry{Run: "run-child", Step: "step-3", Start: time.Now(), Outcome: OutcomeRunning})
	case "journal":
		d.maxJournal = 1 << 40 // rotation is tested separately
		maxEntryField = journalCrashDetail
		detail := strings.Repeat("d", journalCrashDetail)
		for i := 0; ; i++ {
			e := Entry{Run: "run-child", Step: fmt.Sprintf("step-%d", i), Start: time.Now(), Outcome: OutcomeOK, Detail: detail}
			if err := d.Append(e); err != nil {
				return err
			}
			if i == 0 {
				fmt.Println("ready")
			}
		}
	}
	return fmt.Errorf("unknown child role %q", role)
}

type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startChild starts a child in role on dir and waits for it to say ready.
func startChild(t *testing.T, role, dir string) *child {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+role+":"+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin}
	t.Cleanup(func() { c.kill(t) })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.TrimSpace(line) != "ready" {
		t.Fatalf("child %s did not get ready: %q %v", role, line, err)
	}
	return c
}

// kill SIGKILLs the child and reaps it; it is safe to call twice.
func (c *child) kill(t *testing.T) {
	if c.cmd.ProcessState != nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGKILL)
	c.cmd.Wait()
	if ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Errorf("child exited on its own (%v) instead of being killed", c.cmd.ProcessState)
	}
}
