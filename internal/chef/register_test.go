package chef

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/badinput"
)

// fakeServer is a Chef server in memory: it checks 1.3 signatures against
// the keys it knows and keeps clients and nodes.
type fakeServer struct {
	mu    sync.Mutex
	keys  map[string]*rsa.PublicKey
	nodes map[string]map[string]any
	fail  int // answer 503 to this many requests first
	log   []string
}

func newFakeServer(t *testing.T, validator *rsa.PublicKey) (*fakeServer, *httptest.Server) {
	f := &fakeServer{keys: map[string]*rsa.PublicKey{"acme-validator": validator}, nodes: map[string]map[string]any{}}
	ts := httptest.NewServer(f)
	t.Cleanup(ts.Close)
	return f, ts
}

func (f *fakeServer) verify(r *http.Request, body []byte) bool {
	who := r.Header.Get("X-Ops-Userid")
	pub := f.keys[who]
	if pub == nil || r.Header.Get("X-Ops-Sign") != "algorithm=sha256;version=1.3;" {
		return false
	}
	var enc strings.Builder
	for i := 1; r.Header.Get("X-Ops-Authorization-"+itoa(i)) != ""; i++ {
		enc.WriteString(r.Header.Get("X-Ops-Authorization-" + itoa(i)))
	}
	sig, _ := base64.StdEncoding.DecodeString(enc.String())
	sum := sha256.Sum256(body)
	canon := "Method:" + r.Method + "\nPath:" + r.URL.Path + "\nX-Ops-Content-Hash:" + b64(sum[:]) +
		"\nX-Ops-Sign:version=1.3\nX-Ops-Timestamp:" + r.Header.Get("X-Ops-Timestamp") + "\nX-Ops-UserId:" + who + "\nX-Ops-Server-API-Version:0"
	d := sha256.Sum256([]byte(canon))
	return rsa.VerifyPKCS1v15(pub, crypto.SHA256, d[:], sig) == nil && r.Header.Get("X-Ops-Content-Hash") == b64(sum[:])
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	f.log = append(f.log, r.Method+" "+r.URL.Path+" as "+r.Header.Get("X-Ops-Userid"))
	if f.fail > 0 {
		f.fail--
		http.Error(w, `{"error":["starting"]}`, http.StatusServiceUnavailable)
		return
	}
	if !f.verify(r, body) {
		http.Error(w, `{"error":["Failed to authenticate"]}`, http.StatusUnauthorized)
		return
	}
	var in map[string]any
	json.Unmarshal(body, &in)
	switch {
	case r.Method == "POST" && r.URL.Path == "/organizations/acme/clients":
		name, _ := in["name"].(string)
		if f.keys[name] != nil {
			http.Error(w, `{"error":["Client already exists"]}`, http.StatusConflict)
			return
		}
		b, _ := pem.Decode([]byte(in["public_key"].(string)))
		k, err := x509.ParsePKIXPublicKey(b.Bytes)
		if err != nil {
			http.Error(w, `{"error":["bad key"]}`, 400)
			return
		}
		f.keys[name] = k.(*rsa.PublicKey)
		w.WriteHeader(http.StatusCreated)
		w.Write([]byte(`{"uri":"x"}`))
	case r.Method == "POST" && r.URL.Path == "/organizations/acme/nodes":
		name, _ := in["name"].(string)
		if f.nodes[name] != nil {
			http.Error(w, `{"error":["Node already exists"]}`, http.StatusConflict)
			return
		}
		f.nodes[name] = in
		w.WriteHeader(http.StatusCreated)
	case r.Method == "PUT" && strings.HasPrefix(r.URL.Path, "/organizations/acme/nodes/"):
		f.nodes[strings.TrimPrefix(r.URL.Path, "/organizations/acme/nodes/")] = in
	default:
		http.NotFound(w, r)
	}
}

func registerConfig(url string) string {
	return "chef:\n  server_url: " + url + "/organizations/acme\n  validation_name: acme-validator\n" +
		"  validation_key_source: s3://acme-chef/validator.pem\n  run_list: ['role[web]']\n  environment: prod\n  exec: false\n  interval: 0\n"
}

// runRegister plans and applies the register step.
func runRegister(t *testing.T, cfgText string, prep func(root string)) (string, *mapFetcher, error) {
	t.Helper()
	cfg, _ := loadConfig(t, "c.yaml", []byte(cfgText))
	f := &mapFetcher{objects: map[string][]byte{"s3://acme-chef/validator.pem": EncodeKey(testKey(t))}}
	in, env := newInput(t, cfg, f)
	if prep != nil {
		prep(in.Root.Dir())
	}
	steps, err := Capability{PackageManager: installed()}.Steps(context.Background(), in)
	if err != nil {
		return in.Root.Dir(), f, err
	}
	for _, s := range steps {
		if s.Name != StepRegister {
			continue
		}
		for _, a := range s.Actions {
			if err := a.Apply(context.Background(), env); err != nil {
				return in.Root.Dir(), f, err
			}
		}
	}
	return in.Root.Dir(), f, nil
}

// keyFiles lists the files under root holding a private key.
func keyFiles(t *testing.T, root string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if d != nil && d.Type().IsRegular() {
			if b, _ := os.ReadFile(p); strings.Contains(string(b), "PRIVATE KEY") {
				rel, _ := filepath.Rel(root, p)
				fi, _ := d.Info()
				out = append(out, rel+" "+fi.Mode().String())
			}
		}
		return nil
	})
	return out
}

func TestRegister(t *testing.T) {
	fs, ts := newFakeServer(t, &testKey(t).PublicKey)
	fs.fail = 2 // the server still starting: 503, retried
	root, _, err := runRegister(t, registerConfig(ts.URL), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"POST /organizations/acme/clients as acme-validator", "POST /organizations/acme/clients as acme-validator",
		"POST /organizations/acme/clients as acme-validator", "POST /organizations/acme/nodes as i-0123456789abcdef0",
	}
	if strings.Join(fs.log, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant\n%s", strings.Join(fs.log, "\n"), strings.Join(want, "\n"))
	}
	if got := keyFiles(t, root); len(got) != 1 || got[0] != "etc/chef/client.pem -rw-------" {
		t.Errorf("key files: %v, want only etc/chef/client.pem 0600", got)
	}
	n := fs.nodes["i-0123456789abcdef0"]
	if n["chef_environment"] != "prod" || n["run_list"].([]any)[0] != "role[web]" {
		t.Errorf("node = %v", n)
	}

	// The same name again, from a fresh instance: named, with the fix.
	fs.log = nil
	root, _, err = runRegister(t, registerConfig(ts.URL), nil)
	var taken *TakenError
	if !errors.As(err, &taken) || badinput.Is(err) ||
		!strings.Contains(err.Error(), ts.URL+"/organizations/acme") ||
		!strings.Contains(err.Error(), "knife node delete i-0123456789abcdef0 && knife client delete i-0123456789abcdef0") {
		t.Errorf("reused name: %v", err)
	}
	if got := keyFiles(t, root); len(got) != 0 {
		t.Errorf("key files after a refused registration: %v", got)
	}
}

// TestRegisterResumes: a client.pem left by a run that crashed after
// registering is used; the validator is not fetched, no client created.
func TestRegisterResumes(t *testing.T) {
	fs, ts := newFakeServer(t, &testKey(t).PublicKey)
	clientKey, err := GenerateClientKey()
	if err != nil {
		t.Fatal(err)
	}
	fs.keys["i-0123456789abcdef0"] = &clientKey.PublicKey
	fs.nodes["i-0123456789abcdef0"] = map[string]any{}
	_, f, err := runRegister(t, registerConfig(ts.URL), func(root string) {
		os.MkdirAll(filepath.Join(root, "etc/chef"), 0o750)
		os.WriteFile(filepath.Join(root, "etc/chef/client.pem"), EncodeKey(clientKey), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.fetched) != 0 {
		t.Errorf("fetched %v", f.fetched)
	}
	want := "POST /organizations/acme/nodes as i-0123456789abcdef0\nPUT /organizations/acme/nodes/i-0123456789abcdef0 as i-0123456789abcdef0"
	if got := strings.Join(fs.log, "\n"); got != want {
		t.Errorf("requests:\n%s\nwant\n%s", got, want)
	}
	if fs.nodes["i-0123456789abcdef0"]["chef_environment"] != "prod" {
		t.Errorf("node not updated: %v", fs.nodes)
	}
}

func TestRegisterBadInput(t *testing.T) {
	_, ts := newFakeServer(t, &testKey(t).PublicKey)
	tests := []struct {
		name, cfg, want string
		bad             bool
	}{
		{"missing S3 object: exit 1 naming the key", strings.Replace(registerConfig(ts.URL), "validator.pem", "nope.pem", 1),
			"chef.validation_key_source: fetch s3://acme-chef/nope.pem: NoSuchKey", false},
		{"validator key in S3 is not a key", strings.Replace(registerConfig(ts.URL), "validator.pem", "data_bag_secret", 1),
			"c.yaml:4:26: chef.validation_key_source: the validator key: not a PEM private key", true},
		{"no validator key at all", "chef:\n  server_url: " + ts.URL + "\n  exec: false\n",
			"c.yaml:2:3: chef: no validator key to register the node with", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, _ := loadConfig(t, "c.yaml", []byte(tt.cfg))
			f := &mapFetcher{objects: map[string][]byte{"s3://acme-chef/validator.pem": EncodeKey(testKey(t)), "s3://acme-chef/data_bag_secret": []byte("x")}}
			in, _ := newInput(t, cfg, f)
			_, err := Capability{PackageManager: installed()}.Steps(context.Background(), in)
			if err == nil || !strings.Contains(err.Error(), tt.want) || badinput.Is(err) != tt.bad {
				t.Errorf("err = %v (bad input %v), want %q (bad input %v)", err, badinput.Is(err), tt.want, tt.bad)
			}
			if _, err := os.Stat(filepath.Join(in.Root.Dir(), "etc/chef")); err == nil {
				t.Error("something was written at plan time")
			}
		})
	}
}

// TestRegisterSystemValidator: cc_chef's validation_cert: system reads the
// operator's file at validation_key (left where it is); client.rb names it.
func TestRegisterSystemValidator(t *testing.T) {
	fs, ts := newFakeServer(t, &testKey(t).PublicKey)
	cfg := "chef:\n  server_url: " + ts.URL + "/organizations/acme\n  validation_name: acme-validator\n" +
		"  validation_cert: system\n  validation_key: /etc/chef/acme.pem\n  exec: false\n  interval: 0\n"
	root, f, err := runRegister(t, cfg, func(root string) {
		os.MkdirAll(filepath.Join(root, "etc/chef"), 0o750)
		os.WriteFile(filepath.Join(root, "etc/chef/acme.pem"), EncodeKey(testKey(t)), 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.fetched) != 0 || len(fs.log) != 2 {
		t.Errorf("fetched %v, requests %v", f.fetched, fs.log)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/chef/client.pem")); err != nil {
		t.Error(err)
	}
	if _, err := os.Stat(filepath.Join(root, "etc/chef/acme.pem")); err != nil {
		t.Errorf("the operator's validator file: %v", err)
	}
	cc, _ := loadConfig(t, "c.yaml", []byte(cfg))
	if rb := string(ClientRB(cc.Chef, "n")); !strings.Contains(rb, `validation_key             "/etc/chef/acme.pem"`) {
		t.Errorf("client.rb:\n%s", rb)
	}
	_, _, err = runRegister(t, cfg, nil)
	if err == nil || !strings.Contains(err.Error(), "chef.validation_cert: is system, but the validator key at chef.validation_key cannot be read") {
		t.Errorf("missing file: %v", err)
	}
}

// TestServerComingUp: connection refused while the server is still coming
// up at boot is retried until it answers, within the deadline.
func TestServerComingUp(t *testing.T) {
	fsrv := &fakeServer{keys: map[string]*rsa.PublicKey{"acme-validator": &testKey(t).PublicKey}, nodes: map[string]map[string]any{}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens: connection refused
	srv := &http.Server{Addr: addr, Handler: fsrv}
	time.AfterFunc(700*time.Millisecond, func() {
		if l, err := net.Listen("tcp", addr); err == nil {
			go srv.Serve(l)
		}
	})
	defer srv.Close()
	start := time.Now()
	_, _, err = runRegister(t, registerConfig("http://"+addr), nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < 700*time.Millisecond || len(fsrv.log) != 2 {
		t.Errorf("took %s, requests %v", took, fsrv.log)
	}
}
