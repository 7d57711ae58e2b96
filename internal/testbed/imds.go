package testbed

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// IMDS protocol constants, as real EC2 speaks them.
const (
	tokenPath      = "/latest/api/token"
	tokenHeader    = "X-aws-ec2-metadata-token"
	tokenTTLHeader = "X-aws-ec2-metadata-token-ttl-seconds"
	maxTokenTTL    = 21600

	// Bounds on what the emulator remembers, so a long benchmark cannot
	// grow it without limit.
	maxTokens   = 10000
	maxRequests = 10000
)

// Credentials are the role credentials the emulator serves at
// iam/security-credentials/<Role>. String and GoString hide the secret
// parts so that printing a value never leaks them into a log.
type Credentials struct {
	AccessKeyID, SecretAccessKey, Token string
	Expiration                          time.Time
}

// String describes c without its secret parts.
func (c Credentials) String() string {
	return fmt.Sprintf("Credentials{AccessKeyID:%s SecretAccessKey:%s Token:%s Expiration:%s}",
		redact(c.AccessKeyID), redact(c.SecretAccessKey), redact(c.Token), c.Expiration.UTC().Format(time.RFC3339))
}

// GoString makes %#v as safe as %v.
func (c Credentials) GoString() string { return "testbed." + c.String() }

func redact(s string) string {
	if s == "" {
		return `""`
	}
	return "[REDACTED]"
}

// IMDSConfig describes the emulated instance. Zero fields get defaults (see
// NewIMDS); the nil/empty values documented below switch features off the way
// they are off on a real instance.
type IMDSConfig struct {
	InstanceID, Region, AvailabilityZone, InstanceType, AMIID, LocalIPv4, MAC, AccountID, Hostname string

	// UserData nil: /latest/user-data answers 404 (no user-data given).
	UserData []byte
	// Role "": no instance profile; iam/info and iam/security-credentials/
	// answer 404.
	Role string
	// Credentials are served at iam/security-credentials/<Role>. Zero key
	// fields get fake values, a zero Expiration becomes six hours after
	// NewIMDS.
	Credentials Credentials
	// Tags nil: tags/instance/ answers 404 (tags in metadata not enabled).
	Tags map[string]string
	// AllowV1 is HttpTokens=optional: GETs without a token are served too.
	// false means IMDSv2 is required. An invalid token is a 401 either way.
	AllowV1 bool
	// V1Only emulates an endpoint without IMDSv2: the token PUT answers
	// 404 and GETs are served without looking at any token.
	V1Only bool
	// ENIs are attached network interfaces besides the primary (which is
	// always served from MAC and LocalIPv4, device-number 0), served
	// under network/interfaces/macs/<MAC>/.
	ENIs []ENI
}

// ENI is one network interface as IMDS describes it. Fields are served
// as given (not checked), so a test can serve a misshapen one.
type ENI struct {
	MAC          string
	DeviceNumber string   // "1"
	LocalIPv4s   []string // one a line, the primary private address first
	Subnet       string   // subnet-ipv4-cidr-block, "10.1.0.0/24"
}

// Request is one HTTP request the emulator answered. Status 0 means the
// client went away (or Close ran) before an answer was written.
type Request struct {
	Method, Path string
	Status       int
	Time         time.Time
	HadToken     bool
}

// IMDS is an emulator of the EC2 instance metadata service (IMDSv2 and v1)
// with fault injection. It is safe for concurrent use; the fault methods
// take effect immediately.
type IMDS struct {
	mu               sync.Mutex
	cfg              IMDSConfig
	created          time.Time // pendingTime of the identity document
	credsUpdated     time.Time // LastUpdated of iam/info and the credentials
	tokens           map[string]time.Time
	downUntil        time.Time
	slow             time.Duration
	throttleN        int
	throttleStatus   int
	roleMissingUntil time.Time
	count            int
	reqs             []Request
	started, closed  bool
	url              string
	ln               *faultListener
	srv              *http.Server
	served           chan struct{} // closed when srv.Serve returned

	done      chan struct{} // closed by Close: ends pending Slow delays
	delayed   atomic.Int32  // requests now waiting in a Slow delay
	closeOnce sync.Once
}

// NewIMDS returns an emulator for cfg with defaults filled in:
// i-0123456789abcdef0, eu-west-1 (zone <region>a), t3.micro,
// ami-0123456789abcdef0, 10.0.1.23, 0e:00:00:00:00:01, account
// 123456789012 and an EC2-style private hostname.
func NewIMDS(cfg IMDSConfig) *IMDS {
	now := time.Now().UTC().Truncate(time.Second)
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&cfg.InstanceID, "i-0123456789abcdef0")
	def(&cfg.Region, "eu-west-1")
	def(&cfg.AvailabilityZone, cfg.Region+"a")
	def(&cfg.InstanceType, "t3.micro")
	def(&cfg.AMIID, "ami-0123456789abcdef0")
	def(&cfg.LocalIPv4, "10.0.1.23")
	def(&cfg.MAC, "0e:00:00:00:00:01")
	def(&cfg.AccountID, "123456789012")
	domain := cfg.Region + ".compute.internal"
	if cfg.Region == "us-east-1" {
		domain = "ec2.internal"
	}
	def(&cfg.Hostname, "ip-"+strings.ReplaceAll(cfg.LocalIPv4, ".", "-")+"."+domain)
	def(&cfg.Credentials.AccessKeyID, "ASIAEMULATOREXAMPLE0")
	def(&cfg.Credentials.SecretAccessKey, "emulator/secret/access/key/EXAMPLEKEY0")
	def(&cfg.Credentials.Token, "emulator-session-token-EXAMPLE")
	if cfg.Credentials.Expiration.IsZero() {
		cfg.Credentials.Expiration = now.Add(6 * time.Hour)
	}
	cfg.UserData = cloneBytes(cfg.UserData)
	cfg.ENIs = append([]ENI(nil), cfg.ENIs...)
	if cfg.Tags != nil {
		tags := make(map[string]string, len(cfg.Tags))
		for k, v := range cfg.Tags {
			tags[k] = v
		}
		cfg.Tags = tags
	}
	return &IMDS{
		cfg:          cfg,
		created:      now,
		credsUpdated: now,
		tokens:       make(map[string]time.Time),
		done:         make(chan struct{}),
	}
}

func cloneBytes(b []byte) []byte {
	if b == nil {
		return nil
	}
	return append([]byte{}, b...)
}

// Config returns the emulated instance as currently configured (defaults
// filled in, latest SetCredentials and SetUserData applied).
func (m *IMDS) Config() IMDSConfig {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.cfg
	c.UserData = cloneBytes(c.UserData)
	c.ENIs = append([]ENI(nil), c.ENIs...)
	return c
}

// Handler serves the IMDS protocol. While DownFor is in effect it aborts
// the connection (panic(http.ErrAbortHandler), which net/http turns into a
// closed connection), so it is meant for a real http.Server, not for
// httptest.ResponseRecorder.
func (m *IMDS) Handler() http.Handler { return http.HandlerFunc(m.serveHTTP) }

// Start serves the emulator on its own listener on 127.0.0.1:0 and returns
// its base URL ("http://127.0.0.1:PORT"). DownFor works at this listener:
// connections are accepted and reset at once, as with a metadata endpoint
// that is not up yet.
func (m *IMDS) Start() (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", errors.New("testbed: IMDS already closed")
	}
	if m.started {
		return "", errors.New("testbed: IMDS already started")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("testbed: IMDS listen: %w", err)
	}
	return m.serveOn(ln)
}

// StartOn is Start on a listener the caller made: one opened inside
// another network namespace serves a guest there. The emulator closes it.
func (m *IMDS) StartOn(ln net.Listener) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed || m.started {
		ln.Close()
		return "", errors.New("testbed: IMDS already started or closed")
	}
	return m.serveOn(ln)
}

// serveOn serves on ln; m.mu is held.
func (m *IMDS) serveOn(ln net.Listener) (string, error) {
	m.ln = &faultListener{Listener: ln, down: m.isDown, conns: make(map[net.Conn]struct{})}
	m.srv = &http.Server{
		Handler:           m.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       30 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	m.served = make(chan struct{})
	m.started = true
	m.url = "http://" + ln.Addr().String()
	go func(srv *http.Server, ln net.Listener, served chan struct{}) {
		defer close(served)
		_ = srv.Serve(ln) // returns http.ErrServerClosed after Close
	}(m.srv, m.ln, m.served)
	return m.url, nil
}

// URL is the base URL returned by Start ("" before Start).
func (m *IMDS) URL() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.url
}

// Close stops the listener, closes every connection, ends pending Slow
// delays and waits for the serving goroutine. It is safe to call twice.
func (m *IMDS) Close() error {
	var err error
	m.closeOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		srv, served := m.srv, m.served
		m.mu.Unlock()
		close(m.done)
		if srv != nil {
			err = srv.Close()
			<-served
		}
	})
	return err
}

// DownFor makes the endpoint unreachable for d from now: new connections
// are accepted and reset at once, open ones are closed, and requests that
// still arrive on a connection are aborted. Clients see a send failure.
func (m *IMDS) DownFor(d time.Duration) {
	m.mu.Lock()
	m.downUntil = time.Now().Add(d)
	ln := m.ln
	m.mu.Unlock()
	if ln != nil && d > 0 {
		ln.closeAll()
	}
}

// Slow delays every response by d; 0 turns the delay off.
func (m *IMDS) Slow(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.slow = max(d, 0)
}

// Throttle makes the next n requests (of any kind) answer status with an
// empty body, as IMDS does when throttling (429) or overloaded (503).
// status 0 means 503; n <= 0 cancels throttling.
func (m *IMDS) Throttle(n int, status int) {
	if status == 0 {
		status = http.StatusServiceUnavailable
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.throttleN, m.throttleStatus = max(n, 0), status
}

// RoleMissingFor makes iam/security-credentials/ and
// iam/security-credentials/<role> answer 404 for d from now, as right after
// boot or before an instance profile is attached.
func (m *IMDS) RoleMissingFor(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.roleMissingUntil = time.Now().Add(d)
}

// ExpireTokens invalidates every token issued so far: they now get 401.
func (m *IMDS) ExpireTokens() {
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.tokens)
}

// SetCredentials replaces the role credentials (a rotation).
func (m *IMDS) SetCredentials(c Credentials) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg.Credentials = c
	m.credsUpdated = time.Now().UTC().Truncate(time.Second)
}

// SetUserData replaces the user-data; nil makes it answer 404.
func (m *IMDS) SetUserData(b []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg.UserData = cloneBytes(b)
}

// RequestCount is the number of HTTP requests received (connections reset
// by DownFor carry no request and are not counted).
func (m *IMDS) RequestCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.count
}

// Requests returns the log of requests, oldest first. It keeps the latest
// 10000.
func (m *IMDS) Requests() []Request {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]Request(nil), m.reqs...)
}

func (m *IMDS) isDown() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return time.Now().Before(m.downUntil)
}

func (m *IMDS) record(r *http.Request, status int, hadToken bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count++
	if len(m.reqs) >= maxRequests {
		m.reqs = append(m.reqs[:0], m.reqs[len(m.reqs)-maxRequests/2:]...)
	}
	m.reqs = append(m.reqs, Request{Method: r.Method, Path: r.URL.Path, Status: status, Time: time.Now(), HadToken: hadToken})
}

// statusWriter remembers the status for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (m *IMDS) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if m.isDown() {
		panic(http.ErrAbortHandler)
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() { m.record(r, sw.status, r.Header.Get(tokenHeader) != "") }()

	m.mu.Lock()
	delay := m.slow
	m.mu.Unlock()
	if delay > 0 {
		m.delayed.Add(1)
		defer m.delayed.Add(-1)
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			panic(http.ErrAbortHandler) // the client went away
		case <-m.done:
			// Closing: drop the connection rather than let net/http
			// answer an empty 200.
			panic(http.ErrAbortHandler)
		}
	}
	m.serve(sw, r)
}

func (m *IMDS) serve(w http.ResponseWriter, r *http.Request) {
	m.mu.Lock()
	if m.throttleN > 0 {
		m.throttleN--
		status := m.throttleStatus
		m.mu.Unlock()
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(status)
		return
	}
	cfg := m.cfg
	m.mu.Unlock()

	if r.URL.Path == tokenPath {
		m.serveToken(w, r, cfg)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		httpError(w, http.StatusMethodNotAllowed)
		return
	}
	if !cfg.V1Only {
		tok := r.Header.Get(tokenHeader)
		switch {
		case tok != "":
			if !m.validToken(tok) {
				httpError(w, http.StatusUnauthorized)
				return
			}
		case !cfg.AllowV1:
			httpError(w, http.StatusUnauthorized)
			return
		}
	}
	body, ctype, ok := m.lookup(r.URL.Path)
	if !ok {
		httpError(w, http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Server", "EC2ws")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, body)
}

func (m *IMDS) serveToken(w http.ResponseWriter, r *http.Request, cfg IMDSConfig) {
	if cfg.V1Only {
		httpError(w, http.StatusNotFound)
		return
	}
	if r.Method != http.MethodPut {
		httpError(w, http.StatusMethodNotAllowed)
		return
	}
	// IMDS refuses token requests that went through a proxy: a hop-limit
	// and SSRF protection.
	if r.Header.Get("X-Forwarded-For") != "" {
		httpError(w, http.StatusForbidden)
		return
	}
	ttl, err := strconv.Atoi(strings.TrimSpace(r.Header.Get(tokenTTLHeader)))
	if err != nil || ttl < 1 || ttl > maxTokenTTL {
		httpError(w, http.StatusBadRequest)
		return
	}
	tok := newToken()
	now := time.Now()
	m.mu.Lock()
	if len(m.tokens) >= maxTokens {
		for t, exp := range m.tokens {
			if !now.Before(exp) {
				delete(m.tokens, t)
			}
		}
		for t := range m.tokens { // still full: forget arbitrary ones
			if len(m.tokens) < maxTokens {
				break
			}
			delete(m.tokens, t)
		}
	}
	m.tokens[tok] = now.Add(time.Duration(ttl) * time.Second)
	m.mu.Unlock()
	w.Header().Set(tokenTTLHeader, strconv.Itoa(ttl))
	w.Header().Set("Content-Type", "text/plain")
	w.Header().Set("Content-Length", strconv.Itoa(len(tok)))
	w.Header().Set("Server", "EC2ws")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, tok)
}

func (m *IMDS) validToken(tok string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	exp, ok := m.tokens[tok]
	if ok && !time.Now().Before(exp) {
		delete(m.tokens, tok)
		return false
	}
	return ok
}

func newToken() string {
	b := make([]byte, 42)
	_, _ = rand.Read(b) // never fails (crypto/rand panics rather than return an error)
	return "AQAEA" + base64.RawURLEncoding.EncodeToString(b)
}

// httpError answers like IMDS: a short HTML page named after the status.
func httpError(w http.ResponseWriter, code int) {
	text := fmt.Sprintf("%d - %s", code, http.StatusText(code))
	body := `<?xml version="1.0" encoding="iso-8859-1"?>` + "\n" +
		`<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">` + "\n" +
		`<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">` + "\n" +
		" <head>\n  <title>" + text + "</title>\n </head>\n <body>\n  <h1>" + text + "</h1>\n </body>\n</html>\n"
	w.Header().Set("Content-Type", "text/html")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Header().Set("Server", "EC2ws")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// tree is the metadata as files (path without the leading "/" → body)
// and directories (path without trailing "/"), built per request from the
// current state so that every setter is effective at once.
type tree struct {
	files map[string]string
	dirs  map[string]bool
}

func (t *tree) dir(p string) {
	for p != "" && !t.dirs[p] {
		t.dirs[p] = true
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			break
		}
		p = p[:i]
	}
}

func (t *tree) file(p, body string) {
	t.files[p] = body
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		t.dir(p[:i])
	}
}

// lookup returns the body and content type at path, or ok=false for 404.
// A directory answers a listing with or without the trailing slash, as
// IMDS does; subdirectories are listed with a trailing slash.
func (m *IMDS) lookup(path string) (body, ctype string, ok bool) {
	t := m.tree()
	p := strings.TrimPrefix(path, "/")
	if b, ok := t.files[p]; ok {
		// IMDS serves its JSON documents as text/plain too.
		ctype = "text/plain"
		if p == "latest/user-data" {
			ctype = "application/octet-stream"
		}
		return b, ctype, true
	}
	d := strings.TrimSuffix(p, "/")
	if !t.dirs[d] {
		return "", "", false
	}
	seen := map[string]bool{}
	var names []string
	add := func(rest string, isDir bool) {
		name, _, nested := strings.Cut(rest, "/")
		if nested || isDir {
			name += "/"
		}
		if name != "/" && !seen[name] {
			seen[name] = true
			names = append(names, name)
		}
	}
	prefix := d + "/"
	if d == "" {
		prefix = ""
	}
	for f := range t.files {
		if rest, ok := strings.CutPrefix(f, prefix); ok && rest != "" {
			add(rest, false)
		}
	}
	for sub := range t.dirs {
		if rest, ok := strings.CutPrefix(sub, prefix); ok && rest != "" {
			add(rest, true)
		}
	}
	sort.Strings(names)
	return strings.Join(names, "\n"), "text/plain", true
}

func (m *IMDS) tree() *tree {
	m.mu.Lock()
	cfg := m.cfg
	created, credsUpdated := m.created, m.credsUpdated
	roleMissing := time.Now().Before(m.roleMissingUntil)
	m.mu.Unlock()

	t := &tree{files: map[string]string{}, dirs: map[string]bool{"": true}}
	t.dir("latest/meta-data")
	t.dir("latest/dynamic")
	if cfg.UserData != nil {
		t.file("latest/user-data", string(cfg.UserData))
	}

	md := func(p, v string) { t.file("latest/meta-data/"+p, v) }
	md("ami-id", cfg.AMIID)
	md("ami-launch-index", "0")
	md("ami-manifest-path", "(unknown)")
	md("block-device-mapping/ami", "/dev/xvda")
	md("block-device-mapping/root", "/dev/xvda")
	md("hostname", cfg.Hostname)
	md("instance-action", "none")
	md("instance-id", cfg.InstanceID)
	md("instance-life-cycle", "on-demand")
	md("instance-type", cfg.InstanceType)
	md("local-hostname", cfg.Hostname)
	md("local-ipv4", cfg.LocalIPv4)
	md("mac", cfg.MAC)
	md("placement/availability-zone", cfg.AvailabilityZone)
	md("placement/region", cfg.Region)
	md("reservation-id", "r-0123456789abcdef0")
	md("security-groups", "default")
	md("services/domain", "amazonaws.com")
	md("services/partition", "aws")

	nic := "network/interfaces/macs/" + cfg.MAC + "/"
	md(nic+"device-number", "0")
	md(nic+"interface-id", "eni-0123456789abcdef0")
	md(nic+"local-hostname", cfg.Hostname)
	md(nic+"local-ipv4s", cfg.LocalIPv4)
	md(nic+"mac", cfg.MAC)
	md(nic+"owner-id", cfg.AccountID)
	md(nic+"security-group-ids", "sg-0123456789abcdef0")
	md(nic+"security-groups", "default")
	md(nic+"subnet-id", "subnet-0123456789abcdef0")
	md(nic+"subnet-ipv4-cidr-block", subnet24(cfg.LocalIPv4))
	md(nic+"vpc-id", "vpc-0123456789abcdef0")
	md(nic+"vpc-ipv4-cidr-block", "10.0.0.0/16")
	md(nic+"vpc-ipv4-cidr-blocks", "10.0.0.0/16")
	for i, e := range cfg.ENIs {
		nic := "network/interfaces/macs/" + e.MAC + "/"
		md(nic+"device-number", e.DeviceNumber)
		md(nic+"interface-id", fmt.Sprintf("eni-%017x", i+1))
		md(nic+"local-ipv4s", strings.Join(e.LocalIPv4s, "\n"))
		md(nic+"mac", e.MAC)
		md(nic+"subnet-ipv4-cidr-block", e.Subnet)
	}

	if cfg.Role != "" {
		md("iam/info", jsonDoc(struct {
			Code               string
			LastUpdated        string
			InstanceProfileArn string
			InstanceProfileId  string
		}{"Success", credsUpdated.Format(time.RFC3339),
			"arn:aws:iam::" + cfg.AccountID + ":instance-profile/" + cfg.Role,
			"AIPAEMULATOR0EXAMPLE"}))
		if !roleMissing {
			c := cfg.Credentials
			md("iam/security-credentials/"+cfg.Role, jsonDoc(struct {
				Code            string
				LastUpdated     string
				Type            string
				AccessKeyId     string
				SecretAccessKey string
				Token           string
				Expiration      string
			}{"Success", credsUpdated.Format(time.RFC3339), "AWS-HMAC",
				c.AccessKeyID, c.SecretAccessKey, c.Token, c.Expiration.UTC().Format(time.RFC3339)}))
		}
	}
	if cfg.Tags != nil {
		t.dir("latest/meta-data/tags/instance")
		for k, v := range cfg.Tags {
			if k != "" && !strings.Contains(k, "/") {
				md("tags/instance/"+k, v)
			}
		}
	}

	t.file("latest/dynamic/instance-identity/document", jsonDoc(struct {
		AccountID               string    `json:"accountId"`
		Architecture            string    `json:"architecture"`
		AvailabilityZone        string    `json:"availabilityZone"`
		BillingProducts         []string  `json:"billingProducts"`
		DevpayProductCodes      []string  `json:"devpayProductCodes"`
		MarketplaceProductCodes []string  `json:"marketplaceProductCodes"`
		ImageID                 string    `json:"imageId"`
		InstanceID              string    `json:"instanceId"`
		InstanceType            string    `json:"instanceType"`
		KernelID                *string   `json:"kernelId"`
		PendingTime             time.Time `json:"pendingTime"`
		PrivateIP               string    `json:"privateIp"`
		RamdiskID               *string   `json:"ramdiskId"`
		Region                  string    `json:"region"`
		Version                 string    `json:"version"`
	}{
		AccountID: cfg.AccountID, Architecture: "x86_64", AvailabilityZone: cfg.AvailabilityZone,
		ImageID: cfg.AMIID, InstanceID: cfg.InstanceID, InstanceType: cfg.InstanceType,
		PendingTime: created, PrivateIP: cfg.LocalIPv4, Region: cfg.Region, Version: "2017-09-30",
	}))
	return t
}

// jsonDoc formats v the way IMDS does: indented JSON.
func jsonDoc(v any) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		panic(err) // only fixed struct types are encoded here
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// subnet24 is the /24 around an IPv4 address, the default subnet shape.
func subnet24(ip string) string {
	a := net.ParseIP(ip).To4()
	if a == nil {
		return "10.0.1.0/24"
	}
	return fmt.Sprintf("%d.%d.%d.0/24", a[0], a[1], a[2])
}

// faultListener implements DownFor at the TCP level: while down, accepted
// connections are reset at once (SO_LINGER 0), so clients see a real
// connection failure rather than an HTTP answer.
type faultListener struct {
	net.Listener
	down  func() bool
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// Accept loops only while it resets connections, one per client dial.
func (l *faultListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.down() {
			reset(c)
			continue
		}
		tc := &trackedConn{Conn: c, l: l}
		l.mu.Lock()
		l.conns[tc] = struct{}{}
		l.mu.Unlock()
		return tc, nil
	}
}

// closeAll resets every open connection (kept-alive ones included), so a
// client cannot keep talking to an endpoint that is "down".
func (l *faultListener) closeAll() {
	l.mu.Lock()
	conns := make([]net.Conn, 0, len(l.conns))
	for c := range l.conns {
		conns = append(conns, c)
	}
	l.mu.Unlock()
	for _, c := range conns {
		reset(c)
	}
}

func reset(c net.Conn) {
	if tc, ok := c.(*trackedConn); ok {
		c = tc.Conn
		defer tc.forget()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = c.Close()
}

type trackedConn struct {
	net.Conn
	l *faultListener
}

func (c *trackedConn) forget() {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
}

func (c *trackedConn) Close() error {
	c.forget()
	return c.Conn.Close()
}
