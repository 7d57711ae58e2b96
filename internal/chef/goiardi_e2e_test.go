//go:build e2e

package chef

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/config"
)

// goiardi is the one Chef server (Debian's goiardi, authentication on) the
// package's e2e tests share; TestMain starts it.
var goiardi struct {
	URL string
	Dir string // conf root: admin.pem, chef-validator.pem
	err error
	cmd *exec.Cmd
}

func TestMain(m *testing.M) {
	code := func() int {
		stop, err := startGoiardi()
		if err != nil {
			goiardi.err = err
		} else {
			defer stop()
		}
		return m.Run()
	}()
	os.Exit(code)
}

func startGoiardi() (func(), error) {
	bin, err := exec.LookPath("goiardi")
	if err != nil {
		return nil, fmt.Errorf("goiardi not found: install Debian's goiardi (scripts/setup.sh)")
	}
	dir, err := os.MkdirTemp("", "goiardi-")
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "-A", "-I", "127.0.0.1", "-H", "127.0.0.1", "-P", fmt.Sprint(port), "--conf-root="+dir, "-g", "error")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
		os.RemoveAll(dir)
	}
	goiardi.URL, goiardi.Dir, goiardi.cmd = fmt.Sprintf("http://127.0.0.1:%d", port), dir, cmd
	for i := 0; i < 100; i++ {
		if _, err := os.Stat(filepath.Join(dir, "chef-validator.pem")); err == nil {
			if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
				c.Close()
				return stop, nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	return nil, errors.New("goiardi did not come up within 10s")
}

func needGoiardi(t *testing.T) {
	t.Helper()
	if goiardi.err != nil {
		if os.Getenv("BOOTSTRAP_E2E") != "" {
			t.Fatal(goiardi.err)
		}
		t.Skip(goiardi.err)
	}
}

func goiardiSigner(t *testing.T, name, file string) Signer {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(goiardi.Dir, file))
	if err != nil {
		t.Fatal(err)
	}
	k, err := config.ParseRSAKey(data)
	if err != nil {
		t.Fatal(err)
	}
	return Signer{UserID: name, Key: k}
}

func newServer(t *testing.T) *Server {
	u, _ := url.Parse(goiardi.URL)
	return &Server{URL: u, HTTP: &http.Client{}, Deadline: 10 * time.Second}
}

// TestGoiardiAcceptsSignatures: an authenticated GET as admin and as the
// validator succeeds with 1.3 and with 1.0; a wrong key is refused.
func TestGoiardiAcceptsSignatures(t *testing.T) {
	needGoiardi(t)
	for _, v := range []string{Sign13, Sign10} {
		s := newServer(t)
		s.version.Store(v)
		var clients map[string]string
		if err := s.Do(context.Background(), goiardiSigner(t, "admin", "admin.pem"), "GET", "/clients", nil, &clients); err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		if s.signVersion() != v || clients["chef-validator"] == "" {
			t.Errorf("%s: version now %s, clients %v", v, s.signVersion(), clients)
		}
		bad := Signer{UserID: "admin", Key: testKey(t)}
		err := s.Do(context.Background(), bad, "GET", "/clients", nil, nil)
		if StatusOf(err) != http.StatusUnauthorized {
			t.Errorf("%s: wrong key: %v, want 401", v, err)
		}
	}
}

// TestGoiardiRegister: the validator creates the client, the client
// creates its node; the same name again is reported with the knife
// commands.
func TestGoiardiRegister(t *testing.T) {
	needGoiardi(t)
	ctx := context.Background()
	s := newServer(t)
	validator := goiardiSigner(t, "chef-validator", "chef-validator.pem")
	key, err := GenerateClientKey()
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("i-reg%d", time.Now().UnixNano())
	if err := s.CreateClient(ctx, validator, name, key); err != nil {
		t.Fatal(err)
	}
	n := Node{Name: name, Environment: "_default", RunList: []string{"recipe[base]", "role[web]"}}
	if err := s.SaveNode(ctx, Signer{UserID: name, Key: key}, n, false); err != nil {
		t.Fatal(err)
	}
	var node struct {
		RunList []string `json:"run_list"`
		Env     string   `json:"chef_environment"`
	}
	if err := s.Do(ctx, goiardiSigner(t, "admin", "admin.pem"), "GET", "/nodes/"+name, nil, &node); err != nil {
		t.Fatal(err)
	}
	if strings.Join(node.RunList, ",") != "recipe[base],role[web]" || node.Env != "_default" {
		t.Errorf("node = %+v", node)
	}
	err = s.CreateClient(ctx, validator, name, key)
	var taken *TakenError
	if !errors.As(err, &taken) || !strings.Contains(err.Error(), "knife node delete "+name+" && knife client delete "+name) || !strings.Contains(err.Error(), goiardi.URL) {
		t.Errorf("second registration: %v", err)
	}
	if err := s.SaveNode(ctx, Signer{UserID: name, Key: key}, n, true); err != nil {
		t.Errorf("resuming: %v", err)
	}
}
