//go:build e2e

package chef

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/datasource"
	"github.com/opsboot/bootstrap/internal/fetch"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
	"github.com/opsboot/bootstrap/internal/testbed"
	"github.com/opsboot/bootstrap/internal/testbed/minio"
)

// counter counts requests to the Chef server.
type counter struct{ n atomic.Int64 }

func (c *counter) RoundTrip(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return http.DefaultTransport.RoundTrip(r)
}

// standIn is a stand-in for chef-client (not in Debian): it records its
// argv and environment and exits with $STANDIN_EXIT.
func standIn(t *testing.T) (bin, record string) {
	dir := t.TempDir()
	bin, record = filepath.Join(dir, "chef-client-stand-in"), filepath.Join(dir, "record")
	script := "#!/bin/sh\n{ echo \"argv: $*\"; echo \"CHEF_LICENSE=$CHEF_LICENSE\"; } >> " + record + "\nexit ${STANDIN_EXIT:-0}\n"
	if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return bin, record
}

// watcher records, with inotify, every file created or written under a
// tree while a run goes on, and whether any held the needle at any moment.
type watcher struct {
	fd      int
	mu      sync.Mutex
	dirs    map[int]string
	seen    []string
	hits    []string
	needle  []byte
	done    chan struct{}
	stopped atomic.Bool
}

func watch(t *testing.T, needle []byte, roots ...string) *watcher {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{fd: fd, dirs: map[int]string{}, needle: needle, done: make(chan struct{})}
	for _, r := range roots {
		w.addTree(r)
	}
	go w.loop()
	return w
}

const watchMask = unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_CLOSE_WRITE | unix.IN_MODIFY

func (w *watcher) addTree(dir string) {
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.IsDir() {
			if wd, err := unix.InotifyAddWatch(w.fd, p, watchMask); err == nil {
				w.mu.Lock()
				w.dirs[wd] = p
				w.mu.Unlock()
			}
			return nil
		}
		if d.Type().IsRegular() {
			w.check(p) // created before the watch on its directory
		}
		return nil
	})
}

func (w *watcher) check(p string) {
	b, _ := os.ReadFile(p)
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = append(w.seen, p)
	if strings.HasSuffix(p, "validation.pem") || (len(w.needle) > 0 && bytes.Contains(b, w.needle)) {
		w.hits = append(w.hits, p)
	}
}

func (w *watcher) loop() {
	defer close(w.done)
	buf := make([]byte, 64<<10)
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		n, err := unix.Read(w.fd, buf)
		if n <= 0 || err != nil {
			if w.stopped.Load() {
				return
			}
			time.Sleep(time.Millisecond)
			continue
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafePointer(buf[off:]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			off += unix.SizeofInotifyEvent + int(ev.Len)
			w.mu.Lock()
			dir := w.dirs[int(ev.Wd)]
			w.mu.Unlock()
			p := filepath.Join(dir, name)
			if ev.Mask&unix.IN_ISDIR != 0 {
				w.addTree(p)
			} else if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
				w.check(p)
			}
		}
	}
}

// stop ends the watch after draining what is queued.
func (w *watcher) stop() (seen, hits []string) {
	time.Sleep(50 * time.Millisecond)
	w.stopped.Store(true)
	<-w.done
	unix.Close(w.fd)
	return w.seen, w.hits
}

// instance is one emulated EC2 instance running the chef: capability as
// the engine does: plan, then apply the steps not done yet.
type instance struct {
	id, root string
	scratch  string
	done     map[string]bool
	log      bytes.Buffer
	red      *secret.Redactor
}

func (i *instance) run(t *testing.T, ctx context.Context, cfgText string, f capability.Fetcher, c Capability) (string, error) {
	cfg, err := config.ParseConfig("chef.yaml", []byte(cfgText), map[string]string{"instance_id": i.id})
	if err != nil {
		return "", err
	}
	root, err := rootfs.Open(i.root)
	if err != nil {
		return "", err
	}
	defer root.Close()
	log := slog.New(i.red.Handler(slog.NewJSONHandler(&i.log, nil)))
	in := &capability.Input{Config: cfg, Facts: map[string]string{"instance_id": i.id}, Datasource: "ec2", Fetcher: f,
		Redactor: i.red, Log: log, Root: root, Scratch: i.scratch, Done: func(s string) bool { return i.done[s] }}
	steps, err := c.Steps(ctx, in)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	(&plan.Plan{Instance: i.id, Datasource: "ec2", Steps: steps}).Write(&b)
	env := &plan.Env{Root: root, Log: log, Redactor: i.red, Scratch: in.Scratch}
	for _, s := range steps {
		if s.Done {
			continue
		}
		for _, a := range s.Actions {
			if err := a.Apply(ctx, env); err != nil {
				return b.String(), i.red.Error(fmt.Errorf("step %s: %w", s.Name, err))
			}
		}
		i.done[s.Name] = true
	}
	return b.String(), nil
}

func newInstanceRoot(t *testing.T, id string) *instance {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\n"), 0o644)
	return &instance{id: id, root: dir, scratch: t.TempDir(), done: map[string]bool{}, red: &secret.Redactor{}}
}

// TestE2ERegisterWithS3Validator is the whole path: the validator key in
// MinIO, read with STS role credentials served by the IMDS emulator, into
// memory only; the client and node registered on goiardi (auth on);
// client.pem 0600 and no validator key on disk at any moment (inotify);
// the first run through a stand-in chef-client; a second run makes no
// request to the server; a reused name fails naming the knife commands.
func TestE2ERegisterWithS3Validator(t *testing.T) {
	needGoiardi(t)
	s3 := minio.Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	validatorPEM, err := os.ReadFile(filepath.Join(goiardi.Dir, "chef-validator.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s3.CreateBucket(ctx, "chef"); err != nil {
		t.Fatal(err)
	}
	if err := s3.Put(ctx, "chef", "validator.pem", validatorPEM); err != nil {
		t.Fatal(err)
	}
	creds, err := s3.AssumeRole(ctx, minio.ReadOnlyPolicy("chef", ""), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	id := fmt.Sprintf("i-0e2e%012x", time.Now().UnixNano()&0xffffffffffff)
	imds := testbed.NewIMDS(testbed.IMDSConfig{InstanceID: id, Role: "chef-node", Region: s3.Region, Credentials: creds})
	u, err := imds.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer imds.Close()
	ds := datasource.NewEC2(datasource.EC2Options{Endpoint: u, Deadline: 20 * time.Second})
	fetcher := fetch.New(fetch.Options{Region: s3.Region, S3Endpoint: s3.URL, S3PathStyle: true,
		IMDS: ds.CredentialsClient(), Role: ds.Role, Deadline: 20 * time.Second})
	bin, record := standIn(t)
	cnt := &counter{}
	c := Capability{Transport: cnt, ChefClient: bin, PackageManager: installed()}
	cfgText := "chef:\n  server_url: " + goiardi.URL + "\n  validation_name: chef-validator\n" +
		"  validation_key_source: s3://chef/validator.pem\n  run_list: ['recipe[base]', 'role[web]']\n" +
		"  environment: production\n  chef_license: accept\n  interval: 30m\n"

	inst := newInstanceRoot(t, id)
	w := watch(t, []byte(strings.Split(strings.TrimSpace(string(validatorPEM)), "\n")[3]), inst.root, inst.scratch)
	start := time.Now()
	planText, err := inst.run(t, ctx, cfgText, fetcher, c)
	elapsed := time.Since(start)
	seen, hits := w.stop()
	if err != nil {
		t.Fatalf("run: %v\nplan:\n%s\nlog:\n%s", err, planText, inst.log.String())
	}
	t.Logf("first run: registered in %s with %d Chef server requests; %d files seen by inotify", elapsed.Round(time.Millisecond), cnt.n.Load(), len(seen))
	if len(hits) > 0 {
		t.Errorf("the validator key was on disk: %v", hits)
	}
	if len(seen) == 0 {
		t.Error("inotify saw no file: the watch is vacuous")
	}
	fi, err := os.Stat(filepath.Join(inst.root, "etc/chef/client.pem"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("client.pem: %v %v", fi, err)
	}
	var node struct {
		RunList []string `json:"run_list"`
		Env     string   `json:"chef_environment"`
	}
	admin := newServer(t)
	if err := admin.Do(ctx, goiardiSigner(t, "admin", "admin.pem"), "GET", "/nodes/"+id, nil, &node); err != nil {
		t.Fatal(err)
	}
	if strings.Join(node.RunList, ",") != "recipe[base],role[web]" || node.Env != "production" {
		t.Errorf("node on the server: %+v", node)
	}
	if err := admin.Do(ctx, goiardiSigner(t, "admin", "admin.pem"), "GET", "/clients/"+id, nil, nil); err != nil {
		t.Errorf("client on the server: %v", err)
	}
	rec, _ := os.ReadFile(record)
	if want := "argv: -c /etc/chef/client.rb -j /etc/chef/first-boot.json -E production --no-color\nCHEF_LICENSE=accept\n"; string(rec) != want {
		t.Errorf("stand-in chef-client recorded:\n%s\nwant:\n%s", rec, want)
	}
	if _, err := os.Lstat(filepath.Join(inst.root, "etc/systemd/system/timers.target.wants/chef-client.timer")); err != nil {
		t.Errorf("timer not enabled: %v", err)
	}

	// Second run on the same instance: nothing to do, no request.
	before := cnt.n.Load()
	if _, err := inst.run(t, ctx, cfgText, fetcher, c); err != nil {
		t.Fatal(err)
	}
	if n := cnt.n.Load() - before; n != 0 {
		t.Errorf("second run made %d requests to the Chef server", n)
	}

	// Another instance reusing the name.
	other := newInstanceRoot(t, "i-other")
	_, err = other.run(t, ctx, cfgText+"  node_name: "+id+"\n", fetcher, c)
	var taken *TakenError
	if !errors.As(err, &taken) || !strings.Contains(err.Error(), "knife node delete "+id+" && knife client delete "+id) || !strings.Contains(err.Error(), goiardi.URL) {
		t.Errorf("reused node name: %v", err)
	}
	if _, err := os.Stat(filepath.Join(other.root, "etc/chef/client.pem")); err == nil {
		t.Error("a refused registration left client.pem")
	}

	// No key material anywhere we print.
	clientPEM, _ := os.ReadFile(filepath.Join(inst.root, "etc/chef/client.pem"))
	all := planText + inst.log.String() + other.log.String() + fmt.Sprint(err)
	for name, s := range map[string][]byte{"validator key": validatorPEM, "client key": clientPEM} {
		for _, line := range strings.Split(string(s), "\n") {
			if len(line) >= 16 && !strings.HasPrefix(line, "-----") && strings.Contains(all, line[:16]) {
				t.Errorf("a piece of the %s appears in the output", name)
				break
			}
		}
	}
	if !strings.Contains(inst.log.String(), "chef client created") {
		t.Errorf("log vacuous:\n%s", inst.log.String())
	}
}
