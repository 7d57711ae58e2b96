//go:build e2e

// The puppet e2e suite: the static bootstrap binary enrols agents with a
// real Debian puppetserver on 127.0.0.1 whose autosign policy is
// `bootstrap autosign`, with the challenge password read from MinIO with
// STS role credentials served by the IMDS emulator. One server for the
// whole package (it takes 30-120 s to start): TestMain.
//
// Run: eval "$(bash scripts/setup.sh --env)"; BOOTSTRAP_E2E=1 go test -tags e2e -count=1 ./internal/puppet/
package puppet_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/testbed"
	"github.com/opsboot/bootstrap/internal/testbed/minio"
)

const (
	challenge   = "e2e-Puppet-Challenge-7f3a9c"
	wrongSecret = "e2e-Wrong-Challenge-0b1d"
	serverJar   = "/usr/share/puppetserver/puppetserver.jar"
	role        = "puppet-e2e-role"
)

var (
	bin, work, outDir string
	port              int
	s3                *minio.Server
	creds             testbed.Credentials

	outputMu  sync.Mutex
	allOutput bytes.Buffer
)

func TestMain(m *testing.M) { os.Exit(testMain(m)) }

func testMain(m *testing.M) int {
	must := os.Getenv("BOOTSTRAP_E2E") == "1"
	for _, need := range []string{serverJar, "/usr/bin/java", "/usr/bin/puppet", "/usr/bin/openssl"} {
		if _, err := os.Stat(need); err != nil {
			if must {
				fmt.Fprintf(os.Stderr, "puppet e2e: %s is missing (scripts/setup.sh installs puppetserver)\n", need)
				return 1
			}
			fmt.Printf("puppet e2e: skipping: no %s (set BOOTSTRAP_E2E=1 to make this a failure)\n", need)
			return 0
		}
	}
	if _, err := minio.Binary(); err != nil {
		if must {
			fmt.Fprintf(os.Stderr, "puppet e2e: %v\n", err)
			return 1
		}
		fmt.Println("puppet e2e: skipping: no MinIO binary")
		return 0
	}
	var err error
	if work, err = os.MkdirTemp("", "bootstrap-puppet-e2e-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(work)
	outDir = filepath.Join(work, "out")
	os.MkdirAll(outDir, 0o755)
	if err := build(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// MinIO and puppetserver start together: the server is the slow one.
	srvErr := make(chan error, 1)
	var srv *exec.Cmd
	go func() {
		var err error
		srv, err = startServer(ctx)
		srvErr <- err
	}()
	if err := startS3(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "puppet e2e: MinIO: %v\n", err)
		if err := <-srvErr; err == nil {
			stopServer(srv)
		}
		return 1
	}
	defer s3.Stop()
	if err := <-srvErr; err != nil {
		fmt.Fprintf(os.Stderr, "puppet e2e: puppetserver: %v\n", err)
		return 1
	}
	defer stopServer(srv)

	code := m.Run()
	return max(code, checkNoSecrets())
}

// build makes the static binary.
func build() error {
	bin = filepath.Join(work, "bootstrap")
	args := []string{"build", "-trimpath", "-o", bin}
	cmd := exec.Command("go", append(args, "../../cmd/bootstrap")...)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building bootstrap: %v\n%s", err, out)
	}
	return nil
}

func startS3(ctx context.Context) error {
	var err error
	s3, err = minio.Start(ctx, minio.Options{Dir: filepath.Join(work, "minio"), Region: "eu-west-1"})
	if err != nil {
		return err
	}
	if err := s3.CreateBucket(ctx, "secrets"); err != nil {
		return err
	}
	good, err := tgz(map[string]string{
		"manifests/site.pp":               "include greet\n",
		"modules/greet/manifests/init.pp": "class greet {\n  file { \"" + outDir + "/masterless\": content => \"applied on ${trusted['certname']}\\n\" }\n}\n",
	})
	if err != nil {
		return err
	}
	bad, err := tgz(map[string]string{"manifests/site.pp": "notice('first line is fine')\nfile { '/tmp/x':\n  ensure => file\n  content => 'y',\n}\n"})
	if err != nil {
		return err
	}
	for key, body := range map[string]string{"puppet/challenge": challenge + "\n", "puppet/wrong": wrongSecret + "\n",
		"puppet/site-good.tgz": string(good), "puppet/site-bad.tgz": string(bad)} {
		if err := s3.Put(ctx, "secrets", key, []byte(body)); err != nil {
			return err
		}
	}
	creds, err = s3.AssumeRole(ctx, minio.ReadOnlyPolicy("secrets", "puppet/"), time.Hour)
	return err
}

// tgz packs files into a .tar.gz.
func tgz(files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	z := gzip.NewWriter(&buf)
	w := tar.NewWriter(z)
	for name, body := range files {
		if err := w.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			return nil, err
		}
		w.Write([]byte(body))
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	err := z.Close()
	return buf.Bytes(), err
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// startServer runs Debian's puppetserver from its jar with its own conf.d,
// confdir, CA, codedir and logs under work, and bootstrap autosign as its
// policy executable.
func startServer(ctx context.Context) (*exec.Cmd, error) {
	var err error
	if port, err = freePort(); err != nil {
		return nil, err
	}
	d := filepath.Join(work, "server")
	pwFile := filepath.Join(d, "autosign.secret")
	files := map[string]string{
		"logback.xml": `<configuration><appender name="F" class="ch.qos.logback.core.FileAppender"><file>` + d + `/log/server.log</file>
<encoder><pattern>%d %-5p [%c{2}] %m%n</pattern></encoder></appender><root level="info"><appender-ref ref="F"/></root></configuration>`,
		"conf.d/global.conf": "global: { logging-config: " + d + "/logback.xml }\n",
		"conf.d/ca.conf":     "certificate-authority: { }\n",
		"conf.d/puppetserver.conf": `jruby-puppet: {
    ruby-load-path: [/usr/lib/puppetserver/ruby/vendor_ruby]
    gem-home: /var/lib/puppetserver/jruby-gems
    gem-path: [${jruby-puppet.gem-home}, "/usr/lib/puppetserver/vendored-jruby-gems"]
    server-conf-dir: ` + d + `/puppet
    server-code-dir: ` + d + `/code
    server-var-dir: ` + d + `/var
    server-run-dir: ` + d + `/run
    server-log-dir: ` + d + `/log
    max-active-instances: 2
}
http-client: { }
profiler: { }
`,
		// Jetty's default idle timeout stalls fresh agents 30 s (spec §3).
		"conf.d/webserver.conf": fmt.Sprintf("webserver: {\n client-auth: want\n ssl-host: 127.0.0.1\n ssl-port: %d\n idle-timeout-milliseconds: 3000\n}\n", port),
		"puppet/puppet.conf": "[main]\ncertname = localhost\ndns_alt_names = localhost\nssldir = " + d + "/puppet/ssl\n\n[server]\ncadir = " + d +
			"/ca\nautosign = " + d + "/autosign\n",
		"autosign":        "#!/bin/sh\nexec " + bin + " autosign --policy " + d + "/autosign.yaml --log-format json \"$@\" 2>>" + d + "/log/autosign.log\n",
		"autosign.yaml":   "password_file: " + pwFile + "\nrequire_ec2: true\nregions: [eu-west-1]\naccounts: ['123456789012']\n",
		"autosign.secret": challenge + "\n",
		"code/environments/production/manifests/site.pp": "node default {\n  file { \"" + outDir + "/${trusted['certname']}\":\n    content => \"certname=${trusted['certname']} region=${trusted['extensions']['pp_region']}\\n\",\n  }\n}\n",
	}
	for name, body := range files {
		p := filepath.Join(d, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, err
		}
		mode := os.FileMode(0o644)
		switch name {
		case "autosign":
			mode = 0o755
		case "autosign.secret":
			mode = 0o600
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			return nil, err
		}
	}
	for _, f := range []string{"auth.conf", "web-routes.conf", "metrics.conf"} {
		b, err := os.ReadFile("/etc/puppet/puppetserver/conf.d/" + f)
		if err != nil {
			return nil, err
		}
		os.WriteFile(filepath.Join(d, "conf.d", f), b, 0o644)
	}
	for _, sub := range []string{"var", "run", "log"} {
		os.MkdirAll(filepath.Join(d, sub), 0o755)
	}
	cmd := exec.Command("/usr/bin/java", "-Xms256m", "-Xmx512m",
		"-Djruby.logger.class=com.puppetlabs.jruby_utils.jruby.Slf4jLogger", "-Djruby.lib=/usr/share/jruby/lib",
		"-XX:+CrashOnOutOfMemoryError", "-jar", serverJar,
		"--config", filepath.Join(d, "conf.d"), "--bootstrap-config", "/etc/puppet/puppetserver/services.d")
	cmd.Dir = d
	out, err := os.Create(filepath.Join(d, "log", "stdout.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	deadline := time.Now().Add(4 * time.Minute)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		resp, err := client.Get(fmt.Sprintf("https://127.0.0.1:%d/status/v1/simple", port))
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 100))
			resp.Body.Close()
			if string(body) == "running" {
				fmt.Printf("puppet e2e: puppetserver started in %s (pid %d, port %d)\n", time.Since(start).Round(time.Second), cmd.Process.Pid, port)
				return cmd, nil
			}
		}
		if cmd.ProcessState != nil {
			break
		}
		time.Sleep(time.Second)
	}
	stopServer(cmd)
	log, _ := os.ReadFile(filepath.Join(d, "log", "server.log"))
	return nil, fmt.Errorf("not running after %s; server.log:\n%s", time.Since(start).Round(time.Second), tail(string(log), 30))
}

func stopServer(cmd *exec.Cmd) {
	if cmd == nil || cmd.Process == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// node is one emulated instance: its IMDS, its agent's directories, its
// state dir. The target root is / (the host's puppet), with the agent's
// conf, ssl and var dirs under the node's own directory.
type node struct {
	imds  *testbed.IMDS
	id    string
	dir   string // the agent's conf, ssl and var dirs (root /)
	root  string // the target root
	state string
}

// newNode makes an instance. With root "", the target is / and the
// agent's directories are the node's own; else root is an image where the
// agent is installed and configured in its usual places.
func newNode(t *testing.T, id, secretKey, root string) *node {
	t.Helper()
	n := &node{id: id, dir: t.TempDir(), root: root}
	n.state = filepath.Join(n.dir, "state")
	paths := fmt.Sprintf(`  conf_file: %[1]s/puppet.conf
  ssl_dir: %[1]s/ssl
  csr_attributes_path: %[1]s/csr_attributes.yaml
`, n.dir)
	dirs := fmt.Sprintf(`      vardir: %[1]s/var
      rundir: %[1]s/run
      logdir: %[1]s/log
`, n.dir)
	if root == "" {
		n.root = "/"
	} else {
		paths, dirs = "", ""
		n.dir = "/var/lib/puppet" // the Debian layout's ssl dir is under it
	}
	cfg := fmt.Sprintf(`#bootstrap-config
aws:
  s3: {endpoint: %q, path_style: true}
puppet:
  install: true
  start_service: false
%s  challenge_password_source: s3://secrets/puppet/%s
  waitforcert: 2s
  maxwaitforcert: 15s
  conf:
    main:
      server: localhost
      serverport: "%d"
      keylength: "2048"
%s  csr_attributes:
    extension_requests:
      pp_role: e2e
`, s3.URL, paths, secretKey, port, dirs)
	n.imds = testbed.NewIMDS(testbed.IMDSConfig{InstanceID: id, Region: "eu-west-1", AMIID: "ami-0e2e0e2e0e2e0e2e0",
		AccountID: "123456789012", Role: role, Credentials: creds, UserData: []byte(cfg)})
	if _, err := n.imds.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.imds.Close() })
	return n
}

// path is a path of the agent's, on this machine.
func (n *node) path(p ...string) string {
	return filepath.Join(append([]string{n.root, n.dir}, p...)...)
}

type result struct {
	code           int
	stdout, stderr string
	elapsed        time.Duration
}

func (r result) String() string {
	return fmt.Sprintf("exit %d after %s\nstdout:\n%s\nstderr:\n%s", r.code, r.elapsed.Round(time.Millisecond), tail(r.stdout, 40), tail(r.stderr, 60))
}

func (n *node) run(t *testing.T, args ...string) result {
	t.Helper()
	full := append([]string{args[0], "--datasource", "ec2", "--root", n.root, "--state-dir", n.state, "--log-format", "json"}, args[1:]...)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, full...)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "BOOTSTRAP_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "AWS_CONFIG_FILE="+os.DevNull, "AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_EC2_METADATA_SERVICE_ENDPOINT="+n.imds.URL())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String(), elapsed: time.Since(start)}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running bootstrap: %v", err)
	}
	outputMu.Lock()
	allOutput.WriteString(r.stdout + r.stderr)
	outputMu.Unlock()
	return r
}

// certExtensions reads the signed certificate's extensions back with
// openssl asn1parse: each OID followed by its value, a DER UTF8String.
func (n *node) certExtensions(t *testing.T) map[string]string {
	t.Helper()
	out, err := exec.Command("openssl", "asn1parse", "-in", n.path("ssl", "certs", n.id+".pem")).CombinedOutput()
	if err != nil {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	ext := map[string]string{}
	oid := ""
	for _, l := range strings.Split(string(out), "\n") {
		if _, v, ok := strings.Cut(l, "OBJECT            :"); ok {
			oid = strings.TrimSpace(v)
			continue
		}
		if _, v, ok := strings.Cut(l, "OCTET STRING      [HEX DUMP]:"); ok && oid != "" {
			if b, err := hex.DecodeString(strings.TrimSpace(v)); err == nil && len(b) > 2 && b[0] == 0x0c {
				ext[oid] = string(b[2:])
			}
		}
		oid = ""
	}
	return ext
}

func TestEnrolConvergeAndSecondRun(t *testing.T) {
	n := newNode(t, "i-0e2e000000000aaa1", "challenge", "")
	r := n.run(t, "run")
	if r.code != 0 {
		t.Fatalf("first run: %s", r)
	}
	t.Logf("first run (install check, config, enrolment, catalog): %s; the agent's run %v; bootstrap's peak RSS %v kB",
		r.elapsed.Round(time.Millisecond), logField(r.stderr, "puppet agent run finished", "duration"), logField(r.stderr, "run finished", "max_rss_kb"))
	got, err := os.ReadFile(filepath.Join(outDir, n.id))
	if err != nil || string(got) != "certname="+n.id+" region=eu-west-1\n" {
		t.Errorf("the catalog's file resource: %q, %v", got, err)
	}
	ext := n.certExtensions(t)
	for oid, want := range map[string]string{
		"1.3.6.1.4.1.34380.1.1.2":  n.id,                    // pp_instance_id
		"1.3.6.1.4.1.34380.1.1.3":  "ami-0e2e0e2e0e2e0e2e0", // pp_image_name
		"1.3.6.1.4.1.34380.1.1.18": "eu-west-1",             // pp_region
		"1.3.6.1.4.1.34380.1.1.20": "eu-west-1a",            // pp_zone
		"1.3.6.1.4.1.34380.1.1.13": "e2e",                   // pp_role
	} {
		if v := ext[oid]; v != want {
			t.Errorf("certificate extension %s = %q, want %q", oid, v, want)
		}
	}
	fi, err := os.Stat(n.path("csr_attributes.yaml"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("csr_attributes.yaml: %v %v", fi, err)
	}
	certBefore, _ := os.Stat(n.path("ssl", "certs", n.id+".pem"))

	r2 := n.run(t, "run")
	if r2.code != 0 {
		t.Fatalf("second run: %s", r2)
	}
	if strings.Contains(r2.stderr, "puppet agent") || strings.Contains(r2.stderr, "certificate request") {
		t.Errorf("the second run ran the agent again:\n%s", r2)
	}
	certAfter, _ := os.Stat(n.path("ssl", "certs", n.id+".pem"))
	if !certAfter.ModTime().Equal(certBefore.ModTime()) {
		t.Error("the certificate changed on the second run")
	}
	t.Logf("second run: %s", r2.elapsed.Round(time.Millisecond))
}

func TestWrongChallengePasswordIsPending(t *testing.T) {
	n := newNode(t, "i-0e2e000000000bbb2", "wrong", "")
	r := n.run(t, "run")
	if r.code != 1 {
		t.Fatalf("want exit 1: %s", r)
	}
	want := fmt.Sprintf("the CSR for %s is pending on localhost:%d; sign it there", n.id, port)
	if !strings.Contains(r.stderr, want) {
		t.Errorf("stderr lacks %q:\n%s", want, r)
	}
	// maxwaitforcert is 15 s; the rest is bootstrap, facter and puppet's start.
	if r.elapsed > 45*time.Second {
		t.Errorf("took %s; the wait is bounded at 15s", r.elapsed)
	}
	if _, err := os.Stat(n.path("ssl", "certs", n.id+".pem")); err == nil {
		t.Error("a certificate was signed for the wrong password")
	}
	log, _ := os.ReadFile(filepath.Join(work, "server", "log", "autosign.log"))
	if !strings.Contains(string(log), "the challengePassword does not match") || !strings.Contains(string(log), n.id) {
		t.Errorf("the autosign log does not say why %s was refused:\n%s", n.id, log)
	}
	t.Logf("wrong password: exit 1 after %s", r.elapsed.Round(time.Millisecond))
}

// TestFleet enrols 10 instances at once against the one server.
func TestFleet(t *testing.T) {
	if testing.Short() {
		t.Skip("fleet: not in -short")
	}
	const size = 10
	nodes := make([]*node, size)
	for i := range nodes {
		nodes[i] = newNode(t, fmt.Sprintf("i-0f1ee7%011x", i), "challenge", "")
	}
	results := make([]result, size)
	var wg sync.WaitGroup
	start := time.Now()
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = n.run(t, "run")
		}()
	}
	wg.Wait()
	wall := time.Since(start)
	var slowest time.Duration
	for i, r := range results {
		if r.code != 0 {
			t.Errorf("%s: %s", nodes[i].id, r)
			continue
		}
		slowest = max(slowest, r.elapsed)
		if b, err := os.ReadFile(filepath.Join(outDir, nodes[i].id)); err != nil || !strings.Contains(string(b), "region=eu-west-1") {
			t.Errorf("%s did not converge: %q %v", nodes[i].id, b, err)
		}
	}
	t.Logf("fleet of %d: wall %s, slowest %s", size, wall.Round(time.Millisecond), slowest.Round(time.Millisecond))
}

// logField is a field of the JSON log record with this message.
func logField(stderr, msg, field string) any {
	for _, line := range strings.Split(stderr, "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) == nil && rec["msg"] == msg {
			return rec[field]
		}
	}
	return nil
}

// checkNoSecrets fails the suite if any output holds the challenge
// password, the wrong one, or the role's credentials.
func checkNoSecrets() int {
	outputMu.Lock()
	defer outputMu.Unlock()
	out := allOutput.String()
	autosign, _ := os.ReadFile(filepath.Join(work, "server", "log", "autosign.log"))
	out += string(autosign)
	if len(out) == 0 {
		fmt.Fprintln(os.Stderr, "puppet e2e: no output captured: the secret check would be vacuous")
		return 1
	}
	leaked := 0
	for name, s := range map[string]string{"challenge password": challenge, "wrong password": wrongSecret,
		"secret access key": creds.SecretAccessKey, "session token": creds.Token} {
		if s != "" && strings.Contains(out, s) {
			fmt.Fprintf(os.Stderr, "puppet e2e: the %s appeared in the output\n", name)
			leaked++
		}
	}
	fmt.Printf("puppet e2e: searched %s bytes of output for 4 secrets: %d leaked\n", strconv.Itoa(len(out)), leaked)
	if leaked > 0 {
		return 1
	}
	return 0
}

// imageRoot extracts a minimal Debian root made by mmdebstrap; the tarball
// is cached for the day under the name the pkgmgr and e2e suites use.
func imageRoot(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("BOOTSTRAP_CI_CACHE")
	if cache == "" {
		home, _ := os.UserHomeDir()
		cache = filepath.Join(home, ".cache", "bootstrap-ci")
	}
	os.MkdirAll(cache, 0o755)
	tarball := filepath.Join(cache, "bookworm-minbase-"+time.Now().UTC().Format("20060102")+".tar")
	if _, err := os.Stat(tarball); err != nil {
		tmp := fmt.Sprintf("%s.tmp-%d.tar", tarball, os.Getpid())
		if out, err := exec.Command("mmdebstrap", "--quiet", "--variant=minbase", "--mode=root", "bookworm", tmp, "/etc/apt/sources.list.d/debian.sources").CombinedOutput(); err != nil {
			t.Fatalf("mmdebstrap: %v\n%s", err, out)
		}
		if err := os.Rename(tmp, tarball); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xf", tarball, "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	return dir
}

// TestInstallIntoImageWhenMissing: a root without puppet gets the distro's
// puppet-agent through apt (in a chroot), then enrols and converges with
// the agent running inside it.
func TestInstallIntoImageWhenMissing(t *testing.T) {
	root := imageRoot(t)
	os.Remove(filepath.Join(root, "etc/resolv.conf")) // an image has none; the package step lends one
	if err := os.WriteFile(filepath.Join(root, "etc/hosts"), []byte("127.0.0.1 localhost\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(root, outDir), 0o755) // where the catalog's file goes
	if _, err := os.Stat(filepath.Join(root, "usr/bin/puppet")); err == nil {
		t.Fatal("the image already has puppet")
	}
	n := newNode(t, "i-0e2e000000000ccc3", "challenge", root)
	r := n.run(t, "run")
	if r.code != 0 {
		t.Fatalf("run: %s", r)
	}
	if _, err := os.Stat(filepath.Join(root, "usr/bin/puppet")); err != nil {
		t.Errorf("puppet not installed in the image: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(root, outDir, n.id)); err != nil || !strings.Contains(string(b), "region=eu-west-1") {
		t.Errorf("the catalog's file: %q, %v", b, err)
	}
	if ext := n.certExtensions(t); ext["1.3.6.1.4.1.34380.1.1.2"] != n.id {
		t.Errorf("pp_instance_id in the certificate: %q", ext["1.3.6.1.4.1.34380.1.1.2"])
	}
	fi, err := os.Stat(filepath.Join(root, "etc/puppet/csr_attributes.yaml"))
	if err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("csr_attributes.yaml: %v, %v", fi, err)
	}
	t.Logf("install into the image + enrol + converge: %s", r.elapsed.Round(time.Millisecond))
}

// TestMasterlessFromMinIO applies a tarball from MinIO (role credentials) with
// puppet apply, and a broken one fails naming the file and line.
func TestMasterlessFromMinIO(t *testing.T) {
	t.Cleanup(func() { os.RemoveAll("/var/cache/bootstrap/puppet") })
	for _, tt := range []struct{ name, key, want string }{
		{"applies", "site-good.tgz", ""},
		{"a broken manifest", "site-bad.tgz", "puppet apply exited 1: manifests/site.pp:4:3: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			id := "i-0e2e00000000" + fmt.Sprintf("%05x", len(tt.key))
			n := &node{id: id, dir: t.TempDir(), root: "/"}
			n.state = filepath.Join(n.dir, "state")
			cfg := fmt.Sprintf(`#bootstrap-config
aws:
  s3: {endpoint: %q, path_style: true}
puppet:
  conf_file: %[2]s/puppet.conf
  ssl_dir: %[2]s/ssl
  masterless:
    source: s3://secrets/puppet/%[3]s
  conf:
    main: {vardir: %[2]s/var, rundir: %[2]s/run, logdir: %[2]s/log}
`, s3.URL, n.dir, tt.key)
			n.imds = testbed.NewIMDS(testbed.IMDSConfig{InstanceID: id, Role: role, Credentials: creds, UserData: []byte(cfg)})
			if _, err := n.imds.Start(); err != nil {
				t.Fatal(err)
			}
			defer n.imds.Close()
			r := n.run(t, "run")
			if tt.want == "" {
				if r.code != 0 {
					t.Fatalf("run: %s", r)
				}
				b, err := os.ReadFile(filepath.Join(outDir, "masterless"))
				if err != nil || string(b) != "applied on "+id+"\n" {
					t.Errorf("the module's file: %q, %v", b, err)
				}
				t.Logf("masterless apply from MinIO: %s", r.elapsed.Round(time.Millisecond))
				return
			}
			if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("want exit 1 naming %q: %s", tt.want, r)
			}
		})
	}
}

// TestBadInputExits2 runs the binary on bad puppet: input: exit 2, each
// problem at its user-data line, column and key, and nothing written.
func TestBadInputExits2(t *testing.T) {
	dir := t.TempDir()
	cfg := fmt.Sprintf(`#bootstrap-config
puppet:
  conf_file: %[1]s/puppet.conf
  csr_attributes_path: %[1]s/csr_attributes.yaml
  challenge_password: %[2]s
  conf:
    main:
      server: puppet.example.com
    agent:
      certname: web/01
  masterless:
    source: s3://secrets/puppet/site-good.tgz
`, dir, challenge)
	n := &node{id: "i-0e2e000000000ddd4", dir: dir, root: "/", state: filepath.Join(dir, "state")}
	n.imds = testbed.NewIMDS(testbed.IMDSConfig{InstanceID: n.id, UserData: []byte(cfg)})
	if _, err := n.imds.Start(); err != nil {
		t.Fatal(err)
	}
	defer n.imds.Close()
	r := n.run(t, "run")
	if r.code != 2 {
		t.Fatalf("want exit 2: %s", r)
	}
	for _, want := range []string{
		`user-data:10:17: puppet.conf.agent.certname: "web/01" is not a certname puppet accepts`,
		`user-data:12:5: puppet.masterless: masterless applies a manifest without a server, but conf.main.server is set at user-data:8:15`,
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r)
		}
	}
	for _, f := range []string{"puppet.conf", "csr_attributes.yaml"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s written despite bad input", f)
		}
	}
	// An unknown section is refused by the schema, at its key.
	n.imds.SetUserData([]byte("#bootstrap-config\npuppet:\n  conf:\n    master: {server: x}\n"))
	if r := n.run(t, "run"); r.code != 2 || !strings.Contains(r.stderr, `user-data:4:5: puppet.conf: unknown key \"master\"`) {
		t.Errorf("unknown section: %s", r)
	}
}
