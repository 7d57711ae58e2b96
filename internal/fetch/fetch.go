// Package fetch is the resource fetcher (as in Ignition): it gets config
// layers, secrets and files from s3://, https:// and file:// sources, into
// memory (bounded) or a temp file (streamed), checks their sha256, and
// waits out what is normal at first boot: the instance role not there yet,
// S3 answering 403 until IAM propagates, throttling, a network still coming
// up. Its errors name the bucket, key and role, so an operator can act.
package fetch

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/opsboot/bootstrap/internal/localfile"
	"github.com/opsboot/bootstrap/internal/retry"
	"github.com/opsboot/bootstrap/internal/secret"
)

// Defaults.
const (
	// DefaultDeadline bounds the waiting (not the transfers) of the whole
	// run: every fetch draws on one budget.
	DefaultDeadline = 120 * time.Second
	// DefaultIAMPropagation is how long after the role's credentials first
	// appear S3's AccessDenied is taken for IAM propagation and waited out;
	// later it is a real denial. AWS's propagation is seconds, rarely more.
	DefaultIAMPropagation = 30 * time.Second
	// lastChance bounds the single attempt a fetch gets when (almost) no
	// budget is left (a tenth of a shorter deadline): a source that answers
	// at once still succeeds.
	lastChance = 10 * time.Second
	// DefaultLimit is Bytes' limit when the caller gives none.
	DefaultLimit = 32 << 20
	// stallTimeout aborts an attempt whose body stopped flowing; the
	// transfer itself is not bounded by the deadline (a big file may take
	// longer than the boot-time wait), only by progress.
	stallTimeout = 60 * time.Second
	// credentialsExpiryWindow refreshes role credentials this long before
	// they expire, so a long download does not start with credentials
	// about to run out (the EC2 role provider has no early refresh).
	credentialsExpiryWindow = 5 * time.Minute
)

// Options configures a Fetcher.
type Options struct {
	// Region for S3 ("" → AWS_REGION or the shared config; the EC2
	// datasource knows it).
	Region string
	// S3Endpoint overrides S3's endpoint (MinIO, a VPC endpoint); "" lets
	// the SDK honour AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL.
	S3Endpoint string
	// S3PathStyle addresses buckets as endpoint/bucket/key.
	S3PathStyle bool
	// IMDS is the client role credentials come through (ec2rolecreds), so
	// they share the datasource's token and request count. nil → the
	// SDK's default chain with its own IMDS client.
	IMDS ec2rolecreds.GetMetadataAPIClient
	// Role returns the instance's role name: used in messages, and waited
	// for before the first S3 request (at boot the role appears late).
	// May be nil.
	Role func(ctx context.Context) (string, error)
	// Deadline bounds the waiting of all fetches together (one run-wide
	// budget, started by the first fetch; time spent receiving a body does
	// not count); zero means DefaultDeadline.
	Deadline time.Duration
	// IAMPropagation is how long after credentials first appear S3's
	// AccessDenied is retried (still within Deadline); zero means
	// DefaultIAMPropagation.
	IAMPropagation time.Duration
	// HTTPClient is used for https:// (and http://) sources; nil → a
	// client with sane timeouts and the environment's proxy.
	HTTPClient *http.Client
	// Logger receives progress while a source is not ready; nil discards.
	Logger *slog.Logger
	// Redactor learns every set of role credentials the moment the fetcher
	// obtains it (the first and each refreshed one), and what a source hides
	// from DisplaySource; nil: nobody outside the fetcher's own messages.
	Redactor *secret.Redactor
}

// Fetcher fetches resources. It is safe for concurrent use.
type Fetcher struct {
	o        Options
	log      *slog.Logger
	requests atomic.Int64
	httpc    *http.Client

	mu    sync.Mutex
	s3c   *s3.Client
	creds aws.CredentialsProvider

	roleOnce sync.Once
	role     string
	roleErr  error

	secretMu sync.Mutex
	secrets  []string // values of the credentials in use, scrubbed from messages

	budgetMu  sync.Mutex
	budgetEnd time.Time // the run-wide wait ends here; zero until the first fetch
	credsAt   time.Time // when credentials were first retrieved; zero until then

	// Tuning; tests shorten them.
	backoff retry.Policy
	stall   time.Duration
	parts   partTuning
}

// New returns a Fetcher. It does no I/O: the S3 client is built on first
// use of an s3:// source.
func New(o Options) *Fetcher {
	if o.Deadline <= 0 {
		o.Deadline = DefaultDeadline
	}
	if o.IAMPropagation <= 0 {
		o.IAMPropagation = DefaultIAMPropagation
	}
	f := &Fetcher{
		o:       o,
		log:     o.Logger,
		backoff: retry.Policy{Initial: 250 * time.Millisecond, Max: 5 * time.Second},
		stall:   stallTimeout,
		parts:   defaultParts,
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	base := http.RoundTripper(nil)
	if o.HTTPClient != nil {
		c := *o.HTTPClient
		f.httpc = &c
		base = c.Transport
	} else {
		f.httpc = &http.Client{}
	}
	if base == nil {
		if o.HTTPClient != nil {
			base = http.DefaultTransport
		} else {
			base = defaultTransport()
		}
	}
	f.httpc.Transport = &countingTransport{base: base, n: &f.requests}
	return f
}

func defaultTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     true,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
}

// countingTransport counts every request that goes out (redirects and
// retries included).
type countingTransport struct {
	base http.RoundTripper
	n    *atomic.Int64
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	t.n.Add(1)
	return t.base.RoundTrip(r)
}

// countingClient is the same for the S3 client's HTTP client interface.
type countingClient struct {
	c interface {
		Do(*http.Request) (*http.Response, error)
	}
	n *atomic.Int64
}

func (c *countingClient) Do(r *http.Request) (*http.Response, error) {
	c.n.Add(1)
	return c.c.Do(r)
}

// Requests is the number of S3 and HTTP requests made so far (IMDS
// requests for credentials are counted by the datasource).
func (f *Fetcher) Requests() int64 { return f.requests.Load() }

// Blob is a fetched file: a temp file the caller owns (it renames or
// removes it).
type Blob struct {
	Path   string
	Size   int64
	SHA256 string
}

// Bytes fetches src into memory, at most limit bytes (<= 0: DefaultLimit);
// a bigger resource is an error. With wantSHA256 (hex) the content must
// match it. For config layers and secrets: never log what it returns.
func (f *Fetcher) Bytes(ctx context.Context, src, wantSHA256 string, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultLimit
	}
	s := &memSink{limit: limit}
	if _, err := f.fetch(ctx, src, wantSHA256, limit, s); err != nil {
		return nil, err
	}
	return s.buf.Bytes(), nil
}

// File fetches src into a new temp file in dir, streamed (never whole in
// memory: see copyToFile) and written past the page cache where the file
// system allows it. On any failure the temp file is removed. It is not
// fsynced: it is a staging copy that a crash makes worthless anyway, and
// whoever installs it makes the final copy durable.
func (f *Fetcher) File(ctx context.Context, src, wantSHA256, dir string) (*Blob, error) {
	tmp, err := os.CreateTemp(dir, ".bootstrap-fetch-*.tmp")
	if err != nil {
		return nil, fmt.Errorf("%s: cannot create a temp file: %w", DisplaySource(src), err)
	}
	ok := false
	defer func() {
		if !ok {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	res, err := f.fetch(ctx, src, wantSHA256, -1, &fileSink{f: tmp})
	if err != nil {
		return nil, err
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("%s: close %s: %w", DisplaySource(src), tmp.Name(), err)
	}
	ok = true
	return &Blob{Path: tmp.Name(), Size: res.size, SHA256: res.digest}, nil
}

// sink receives a download; reset starts it over for a new attempt.
type sink interface {
	io.Writer
	reset() error
}

var errTooLarge = errors.New("too large")

type memSink struct {
	buf   bytes.Buffer
	limit int64
}

func (m *memSink) Write(p []byte) (int, error) {
	if int64(m.buf.Len())+int64(len(p)) > m.limit {
		return 0, errTooLarge
	}
	return m.buf.Write(p)
}

func (m *memSink) reset() error { m.buf.Reset(); return nil }

type fileSink struct{ f *os.File }

func (s *fileSink) Write(p []byte) (int, error) { return s.f.Write(p) }

func (s *fileSink) reset() error {
	if err := s.f.Truncate(0); err != nil {
		return err
	}
	_, err := s.f.Seek(0, io.SeekStart)
	return err
}

// source is a parsed src.
type source struct {
	raw, scheme string
	bucket, key string // s3
	path        string // file
}

func parseSource(src string) (source, error) {
	s := source{raw: src}
	switch {
	case strings.HasPrefix(src, "s3://"):
		s.scheme = "s3"
		// Not url.Parse: keys may hold '?', '#' and '%' literally.
		s.bucket, s.key, _ = strings.Cut(strings.TrimPrefix(src, "s3://"), "/")
		if s.bucket == "" || s.key == "" {
			return s, fmt.Errorf("%s: an S3 source is s3://bucket/key", src)
		}
	case strings.HasPrefix(src, "https://"), strings.HasPrefix(src, "http://"):
		u, err := url.Parse(src)
		if err != nil || u.Host == "" {
			return s, fmt.Errorf("%s is not a valid URL", DisplaySource(src))
		}
		s.scheme = u.Scheme
	case strings.HasPrefix(src, "file://"):
		u, err := url.Parse(src)
		if err != nil || (u.Host != "" && u.Host != "localhost") || !filepath.IsAbs(u.Path) {
			return s, fmt.Errorf("%s: a file source is file:///absolute/path", src)
		}
		s.scheme, s.path = "file", u.Path
	default:
		shown := src
		if strings.ContainsAny(src, "?@") { // may carry credentials
			scheme, _, _ := strings.Cut(src, ":")
			shown = scheme + ":…"
		}
		return s, fmt.Errorf("unsupported source %q: use s3://, https:// or file://", shown)
	}
	return s, nil
}

// DisplaySource is what may be shown of a source in logs and messages:
// secret.Source, which replaces the query values of a presigned URL
// (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token …), its user
// info and fragment.
func DisplaySource(src string) string { return secret.Source(src) }

// secretKey marks a context whose fetches get secret content.
type secretKey struct{}

// WithSecret marks the fetches made with ctx as fetching secret content
// (a file marked secret, a key): a sha256 mismatch then names the source and
// says the digest differs, but shows neither digest, because a digest of a
// short secret can be brute-forced.
func WithSecret(ctx context.Context) context.Context {
	return context.WithValue(ctx, secretKey{}, true)
}

func isSecret(ctx context.Context) bool { v, _ := ctx.Value(secretKey{}).(bool); return v }

// normalizeDigest accepts hex with an optional "sha256:" prefix.
func normalizeDigest(src, want string) (string, error) {
	if want == "" {
		return "", nil
	}
	w := strings.ToLower(strings.TrimPrefix(strings.TrimSpace(want), "sha256:"))
	if b, err := hex.DecodeString(w); err != nil || len(b) != sha256.Size {
		return "", fmt.Errorf("%s: the expected sha256 %q is not 64 hex digits", DisplaySource(src), want)
	}
	return w, nil
}

type result struct {
	size     int64
	digest   string
	transfer time.Duration // receiving the body: not waiting
}

// waitPolicy is the backoff for one fetch within what is left of the
// run-wide budget, which the first call starts. When nothing is left the
// fetch still gets one attempt.
func (f *Fetcher) waitPolicy() retry.Policy {
	f.budgetMu.Lock()
	if f.budgetEnd.IsZero() {
		f.budgetEnd = time.Now().Add(f.o.Deadline)
	}
	left := time.Until(f.budgetEnd)
	f.budgetMu.Unlock()
	p := f.backoff
	p.Deadline = left
	if last := min(lastChance, f.o.Deadline/10); left < last {
		p.Deadline, p.MaxAttempts = last, 1
	}
	return p
}

// notWaiting gives back to the budget time that was not spent waiting.
func (f *Fetcher) notWaiting(d time.Duration) {
	f.budgetMu.Lock()
	f.budgetEnd = f.budgetEnd.Add(d)
	f.budgetMu.Unlock()
}

// credentialsSeen records when credentials first appeared: the IAM
// propagation window starts then.
func (f *Fetcher) credentialsSeen() {
	f.budgetMu.Lock()
	if f.credsAt.IsZero() {
		f.credsAt = time.Now()
	}
	f.budgetMu.Unlock()
}

// propagating reports whether an AccessDenied may still be IAM propagation.
func (f *Fetcher) propagating() bool {
	f.budgetMu.Lock()
	defer f.budgetMu.Unlock()
	return f.credsAt.IsZero() || time.Since(f.credsAt) < f.o.IAMPropagation
}

// fetch runs the retry loop for one source into s. limit < 0: no limit.
func (f *Fetcher) fetch(ctx context.Context, raw, want string, limit int64, s sink) (result, error) {
	var res result
	f.o.Redactor.AddSource(raw)
	src := DisplaySource(raw)
	srcp, err := parseSource(raw)
	if err != nil {
		return res, err
	}
	if want, err = normalizeDigest(raw, want); err != nil {
		return res, err
	}
	if srcp.scheme == "http" && want == "" {
		return res, fmt.Errorf("%s: plain http:// is only allowed with a sha256 to check the content against; use https://", src)
	}
	if srcp.scheme == "file" {
		return f.fetchFile(ctx, srcp, want, isSecret(ctx), limit, s)
	}

	e := &Error{Source: src, Bucket: srcp.bucket, Key: srcp.key}
	if srcp.scheme == "s3" {
		if err := f.prepareS3(ctx); err != nil {
			e.Final, e.Err = true, err
			e.Code, e.detail = CodeConfig, "cannot set up S3: "+f.scrub(err.Error())
			if re := (*roleError)(nil); errors.As(err, &re) {
				e.Code, e.detail = CodeNoCredentials, "cannot get credentials: "+f.scrub(err.Error())
			}
			return res, e
		}
		e.Role = f.role
	}

	start := time.Now()
	attempts := 0
	p := f.waitPolicy()
	p.Notify = func(attempt int, err error, wait time.Duration) {
		level := slog.LevelDebug
		if attempt == 1 || attempt%10 == 0 {
			level = slog.LevelInfo
		}
		reason := err.Error()
		if fe := (*attemptError)(nil); errors.As(err, &fe) {
			reason = fe.summary()
		}
		reason = f.scrub(reason)
		f.log.Log(ctx, level, "source not ready yet, waiting", "src", src, "attempt", attempt,
			"reason", reason, "retry_in", wait.Round(time.Millisecond))
	}
	err = retry.Do(ctx, p, func(actx context.Context) error {
		attempts++
		if err := s.reset(); err != nil {
			return retry.Permanent(&attemptError{code: CodeLocal, err: err})
		}
		r, err := f.attempt(ctx, actx, srcp, want, limit, s)
		if err != nil {
			return err
		}
		res = r
		return nil
	})
	if err == nil {
		f.notWaiting(res.transfer)
		return res, nil
	}
	e.Attempts, e.Elapsed = attempts, time.Since(start)
	var de *retry.DeadlineError
	canceled := ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded)
	switch {
	case errors.As(err, &de):
		e.Deadline = f.o.Deadline
		err = de.Last
	case !canceled:
		e.Final = true // marked permanent: waiting could not help
	}
	var ae *attemptError
	if errors.As(err, &ae) {
		e.Code, e.Err, e.detail = ae.code, ae, f.scrub(ae.summary())
		e.Propagation = ae.propagation
	} else {
		e.Err, e.detail = err, f.scrub(err.Error())
	}
	if canceled {
		e.Err = errors.Join(ctx.Err(), e.Err)
		e.detail = "canceled: " + e.detail
	}
	return res, e
}

// attempt is one try. parent outlives actx (the retry deadline): once an
// answer has started, the transfer runs on, bounded by progress only.
func (f *Fetcher) attempt(parent, actx context.Context, src source, want string, limit int64, s sink) (result, error) {
	reqCtx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	stop := context.AfterFunc(actx, func() { cancel(context.Cause(actx)) })

	var body io.ReadCloser
	var size int64
	var err error
	switch src.scheme {
	case "s3":
		if _, toFile := s.(*fileSink); toFile {
			body, size, err = f.openS3Parts(reqCtx, src)
		} else {
			body, size, err = f.openS3(reqCtx, src)
		}
	default:
		body, size, err = f.openHTTP(reqCtx, src)
	}
	if !stop() && err == nil {
		// The deadline passed while the answer arrived.
		body.Close()
		err = &attemptError{code: CodeConnection, err: context.Cause(actx)}
	}
	if err != nil {
		return result{}, err
	}
	sr := newStallReader(body, f.stall, cancel)
	defer sr.Close()

	if limit >= 0 && size > limit {
		return result{}, retry.Permanent(&attemptError{code: CodeTooLarge, limit: limit, err: errTooLarge})
	}
	began := time.Now()
	h := sha256.New()
	var n int64
	if fs, ok := s.(*fileSink); ok {
		n, err = copyToFile(fs.f, sr, h)
	} else {
		n, err = io.Copy(io.MultiWriter(s, h), sr)
	}
	var se *sinkError
	switch {
	case errors.As(err, &se):
		return result{}, retry.Permanent(&attemptError{code: CodeLocal, err: se})
	case errors.Is(err, errTooLarge):
		return result{}, retry.Permanent(&attemptError{code: CodeTooLarge, limit: limit, err: errTooLarge})
	case err != nil && sr.stalled.Load():
		return result{}, &attemptError{code: CodeTransfer, err: fmt.Errorf("download stalled: no data for %s", f.stall)}
	case err != nil:
		return result{}, &attemptError{code: CodeTransfer, err: err}
	case size >= 0 && n != size:
		return result{}, &attemptError{code: CodeTransfer, err: fmt.Errorf("short body: got %d of %d bytes", n, size)}
	}
	res, err := checkDigest(h, n, want, isSecret(parent))
	res.transfer = time.Since(began)
	return res, err
}

func checkDigest(h hash.Hash, n int64, want string, secret bool) (result, error) {
	got := hex.EncodeToString(h.Sum(nil))
	if want != "" && got != want {
		return result{}, retry.Permanent(&attemptError{code: CodeSHA256Mismatch, want: want, got: got, secret: secret})
	}
	return result{size: n, digest: got}, nil
}

// fetchFile reads a local file: nothing to wait for. Only a regular file
// (a device or FIFO would stream or block forever), read no further than
// its size when opened, and stopped by ctx.
func (f *Fetcher) fetchFile(ctx context.Context, src source, want string, secret bool, limit int64, s sink) (result, error) {
	e := &Error{Source: DisplaySource(src.raw), Final: true, Attempts: 1}
	fail := func(ae *attemptError) (result, error) {
		e.Code, e.Err, e.detail = ae.code, ae.err, ae.summary()
		return result{}, e
	}
	fh, st, err := localfile.Open(src.path, false)
	if err != nil {
		return fail(&attemptError{code: CodeLocal, err: err})
	}
	defer fh.Close()
	if limit >= 0 && st.Size() > limit {
		return fail(&attemptError{code: CodeTooLarge, limit: limit, err: errTooLarge})
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(s, h), io.LimitReader(localfile.Reader(ctx, fh), st.Size()+1))
	switch {
	case errors.Is(err, errTooLarge):
		return fail(&attemptError{code: CodeTooLarge, limit: limit, err: errTooLarge})
	case err != nil:
		return fail(&attemptError{code: CodeLocal, err: err})
	case n > st.Size():
		return fail(&attemptError{code: CodeLocal, err: fmt.Errorf("%s grew while it was read (%d bytes when opened); write it whole before bootstrap runs", src.path, st.Size())})
	}
	res, err := checkDigest(h, n, want, secret)
	var ae *attemptError
	if errors.As(err, &ae) {
		return fail(ae)
	}
	return res, nil
}

// openHTTP sends a GET. 429, 5xx and connection errors are worth
// waiting for; other 4xx and certificate problems are not.
func (f *Fetcher) openHTTP(ctx context.Context, src source) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, src.raw, nil)
	if err != nil {
		return nil, 0, retry.Permanent(&attemptError{code: "BadURL", err: err})
	}
	resp, err := f.httpc.Do(req)
	if err != nil {
		ae := &attemptError{code: CodeConnection, err: err}
		if isCertError(err) {
			ae.code = CodeTLS
			return nil, 0, retry.Permanent(ae)
		}
		return nil, 0, ae
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, resp.ContentLength, nil
	}
	resp.Body.Close()
	ae := &attemptError{code: fmt.Sprintf("HTTP%d", resp.StatusCode), status: resp.StatusCode}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500 {
		return nil, 0, ae
	}
	return nil, 0, retry.Permanent(ae)
}

// stallReader aborts a transfer (through cancel) when no data arrived for
// d, and frees the request on Close.
type stallReader struct {
	rc      io.ReadCloser
	d       time.Duration
	timer   *time.Timer
	cancel  context.CancelCauseFunc
	stalled atomic.Bool
}

func newStallReader(rc io.ReadCloser, d time.Duration, cancel context.CancelCauseFunc) *stallReader {
	s := &stallReader{rc: rc, d: d, cancel: cancel}
	s.timer = time.AfterFunc(d, func() {
		s.stalled.Store(true)
		cancel(errors.New("download stalled"))
	})
	return s
}

func (s *stallReader) Read(p []byte) (int, error) {
	n, err := s.rc.Read(p)
	if n > 0 {
		s.timer.Reset(s.d)
	}
	return n, err
}

func (s *stallReader) Close() error {
	s.timer.Stop()
	err := s.rc.Close()
	s.cancel(nil)
	return err
}

// scrub removes the values of the credentials in use from a message:
// nothing the SDK or a server says may carry them into a log.
func (f *Fetcher) scrub(msg string) string {
	f.secretMu.Lock()
	defer f.secretMu.Unlock()
	for _, s := range f.secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "[REDACTED]")
		}
	}
	return msg
}

// remember registers a set of credentials the moment it is obtained, with
// the fetcher's scrub and the run's redactor.
func (f *Fetcher) remember(c aws.Credentials) {
	f.secretMu.Lock()
	defer f.secretMu.Unlock()
	var learned []string
	for _, s := range []string{c.AccessKeyID, c.SecretAccessKey, c.SessionToken} {
		if s == "" {
			continue
		}
		known := false
		for _, k := range f.secrets {
			known = known || k == s
		}
		if !known {
			learned = append(learned, s)
			if len(f.secrets) < 64 {
				f.secrets = append(f.secrets, s)
			}
		}
	}
	if len(learned) > 0 {
		f.o.Redactor.Add(learned...)
	}
}

// LearnRoleCredentials obtains the instance role's credentials once, without
// waiting for a role to appear, so that the redactor knows them before a
// program the run starts (a user-data script) can read them from IMDS and
// print them. It does nothing when the fetcher already obtained credentials or
// has no IMDS client; an instance without a role is not an error.
func (f *Fetcher) LearnRoleCredentials(ctx context.Context) {
	if f.o.IMDS == nil {
		return
	}
	f.secretMu.Lock()
	known := len(f.secrets) > 0
	f.secretMu.Unlock()
	if known {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, learnTimeout)
	defer cancel()
	c, err := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = f.o.IMDS }).Retrieve(ctx)
	if err != nil {
		f.log.Debug("no role credentials to mask", "reason", f.scrub(err.Error()))
		return
	}
	f.remember(c)
}

// learnTimeout bounds LearnRoleCredentials: IMDS has answered by then.
const learnTimeout = 5 * time.Second

// rememberingProvider registers every set of credentials the S3 client's
// signer retrieves, refreshed ones included, before it is used.
type rememberingProvider struct {
	aws.CredentialsProvider
	f *Fetcher
}

func (p rememberingProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.CredentialsProvider.Retrieve(ctx)
	if err == nil {
		p.f.remember(c)
	}
	return c, err
}

// Invalidate drops the cached set (see invalidate).
func (p rememberingProvider) Invalidate() {
	if c, ok := p.CredentialsProvider.(interface{ Invalidate() }); ok {
		c.Invalidate()
	}
}

// newS3Client builds the S3 client and the credentials (cache) behind it.
func (f *Fetcher) newS3Client(ctx context.Context) (*s3.Client, aws.CredentialsProvider, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithCredentialsCacheOptions(func(o *aws.CredentialsCacheOptions) {
			o.ExpiryWindow = credentialsExpiryWindow
			o.ExpiryWindowJitterFrac = 0.2
		}),
	}
	if f.o.Region != "" {
		opts = append(opts, config.WithRegion(f.o.Region))
	}
	if f.o.IMDS != nil {
		opts = append(opts, config.WithEC2RoleCredentialOptions(func(o *ec2rolecreds.Options) { o.Client = f.o.IMDS }))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("loading the AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, nil, errors.New("no AWS region for S3: set the region (the EC2 datasource provides it) or AWS_REGION")
	}
	if cfg.Credentials == nil {
		return nil, nil, errors.New("no AWS credentials provider")
	}
	creds := rememberingProvider{CredentialsProvider: cfg.Credentials, f: f}
	hc := &countingClient{
		c: awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
			t.ResponseHeaderTimeout = 30 * time.Second
		}),
		n: &f.requests,
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.Credentials = creds
		o.UsePathStyle = f.o.S3PathStyle
		if f.o.S3Endpoint != "" {
			o.BaseEndpoint = aws.String(f.o.S3Endpoint)
		}
		o.DisableLogOutputChecksumValidationSkipped = true
		o.HTTPClient = hc
		// One attempt per call: our loop does the waiting, with a
		// deadline, and knows which errors are worth it.
		o.RetryMaxAttempts = 1
		o.Retryer = awsretry.NewStandard(func(so *awsretry.StandardOptions) {
			so.MaxAttempts = 1
			so.RateLimiter = ratelimit.None
		})
	})
	return c, creds, nil
}

// roleError is a failed wait for the instance's role.
type roleError struct{ err error }

func (e *roleError) Error() string { return e.err.Error() }
func (e *roleError) Unwrap() error { return e.err }

// prepareS3 builds the client once and waits for the role once: a failed
// role lookup has already waited its deadline, so later s3:// fetches fail
// at once with the same error instead of waiting again.
func (f *Fetcher) prepareS3(ctx context.Context) error {
	f.mu.Lock()
	if f.s3c == nil {
		c, creds, err := f.newS3Client(ctx)
		if err != nil {
			f.mu.Unlock()
			return err
		}
		f.s3c, f.creds = c, creds
	}
	f.mu.Unlock()
	if f.o.Role == nil {
		return nil
	}
	f.roleOnce.Do(func() {
		rctx, cancel := context.WithTimeout(ctx, f.waitPolicy().Deadline)
		defer cancel()
		role, err := f.o.Role(rctx)
		if err != nil {
			f.roleErr = &roleError{err: err}
			return
		}
		f.role = role
	})
	return f.roleErr
}

func (f *Fetcher) client() (*s3.Client, aws.CredentialsProvider) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.s3c, f.creds
}

// invalidate drops cached credentials so the next attempt fetches new ones.
func (f *Fetcher) invalidate() {
	_, creds := f.client()
	if c, ok := creds.(interface{ Invalidate() }); ok {
		c.Invalidate()
	}
}

// Credentials returns the credentials S3 requests are signed with (waiting
// for the role and for IMDS within the deadline), so the engine can
// register them with the redactor.
func (f *Fetcher) Credentials(ctx context.Context) (aws.Credentials, error) {
	if err := f.prepareS3(ctx); err != nil {
		return aws.Credentials{}, fmt.Errorf("AWS credentials: %s", f.scrub(err.Error()))
	}
	_, creds := f.client()
	var out aws.Credentials
	attempts := 0
	err := retry.Do(ctx, f.waitPolicy(), func(ctx context.Context) error {
		attempts++
		c, err := creds.Retrieve(ctx)
		if err != nil {
			return err
		}
		f.credentialsSeen()
		f.remember(c)
		out = c
		return nil
	})
	if err != nil {
		who := "the instance's credentials"
		if f.role != "" {
			who = fmt.Sprintf("role %q", f.role)
		}
		return aws.Credentials{}, fmt.Errorf("AWS credentials for %s not available after %s: %s; check the instance profile and IMDS",
			who, retry.Attempts(attempts), f.scrub(err.Error()))
	}
	return out, nil
}

// isCertError reports TLS verification failures: waiting does not fix them.
func isCertError(err error) bool {
	var cve *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var he x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cve) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci)
}
