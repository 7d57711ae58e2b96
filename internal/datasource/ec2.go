package datasource

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/smithy-go/logging"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/retry"
)

// DefaultDeadline is how long the EC2 datasource waits for IMDS at boot
// when EC2Options.Deadline is zero.
const DefaultDeadline = 120 * time.Second

// DefaultEndpoint is where IMDS answers on every EC2 instance (IPv4).
const DefaultEndpoint = "http://169.254.169.254"

// IPv6Endpoint is IMDS on Nitro instances with the IPv6 endpoint enabled:
// the only one an IPv6-only subnet reaches.
const IPv6Endpoint = "http://[fd00:ec2::254]"

// maxTags bounds the per-tag requests; EC2 allows 50 tags per instance.
const maxTags = 64

// IMDS paths, as the requests name them (for messages).
const (
	tokenPath    = "/latest/api/token"
	identityPath = "/latest/dynamic/instance-identity/document"
	macPath      = "/latest/meta-data/mac"
	hostnamePath = "/latest/meta-data/local-hostname"
	userDataPath = "/latest/user-data"
	tagsPath     = "/latest/meta-data/tags/instance"
	rolesPath    = "/latest/meta-data/iam/security-credentials/"
)

// EC2Options configures the EC2 datasource.
type EC2Options struct {
	// Endpoint of IMDS; "" means env AWS_EC2_METADATA_SERVICE_ENDPOINT,
	// else the address EndpointMode picks.
	Endpoint string
	// EndpointMode is "ipv4" (DefaultEndpoint) or "ipv6" (IPv6Endpoint);
	// "" means env AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE, else ipv4.
	EndpointMode string
	// AllowV1 accepts an IMDSv1-only endpoint. When false (the default) a
	// refused token PUT is an error: IMDSv1 is what SSRF attacks use.
	AllowV1 bool
	// Deadline is the overall boot-time wait of one Fetch or Role call;
	// zero means DefaultDeadline.
	Deadline time.Duration
	// UserData fetches /latest/user-data (a 404 there means "none given").
	UserData bool
	// Tags fetches the instance's tags (needs "Allow tags in instance
	// metadata" on the instance; costs one request per tag).
	Tags bool
	// Logger receives progress while IMDS is not ready; nil discards.
	Logger *slog.Logger
}

// EC2 reads instance facts from IMDSv2 through feature/ec2/imds, inside our
// own boot-time wait: the SDK alone gives up after ~4 s on an unreachable
// endpoint, fails at once on 429, and after one send failure stops using
// tokens for good. EC2 retries connection errors, timeouts, 429, 5xx and
// 401 within Deadline, and builds a fresh imds.Client after a send failure.
type EC2 struct {
	opts     EC2Options
	endpoint string
	epErr    error // the endpoint is not a usable URL
	log      *slog.Logger
	requests atomic.Int64
	hc       *countingClient

	mu     sync.Mutex
	client *imds.Client

	roleMu sync.Mutex
	role   string
	// roleListed is set once the credentials client has answered one role
	// listing from role (see CredentialsClient).
	roleListed atomic.Bool

	// Backoff and per-attempt bound; tests shorten them.
	backoff        retry.Policy
	attemptTimeout time.Duration
}

// NewEC2 returns the EC2 datasource. It does no I/O.
func NewEC2(o EC2Options) *EC2 {
	if o.Deadline <= 0 {
		o.Deadline = DefaultDeadline
	}
	e := &EC2{
		opts:           o,
		endpoint:       o.Endpoint,
		log:            o.Logger,
		backoff:        retry.Policy{Initial: 200 * time.Millisecond, Max: 3 * time.Second},
		attemptTimeout: imdsAttemptTimeout,
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.endpoint == "" {
		e.endpoint = os.Getenv(endpointEnv)
	}
	if e.endpoint == "" {
		mode := o.EndpointMode
		if mode == "" {
			mode = os.Getenv(endpointModeEnv)
		}
		switch strings.ToLower(mode) {
		case "", "ipv4":
			e.endpoint = DefaultEndpoint
		case "ipv6":
			e.endpoint = IPv6Endpoint
		default:
			e.endpoint = DefaultEndpoint
			e.epErr = fmt.Errorf("IMDS endpoint mode %q: want ipv4 or ipv6; fix imds.endpoint_mode or %s", mode, endpointModeEnv)
		}
	}
	e.endpoint = strings.TrimSuffix(e.endpoint, "/")
	if u, err := url.Parse(e.endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		e.epErr = fmt.Errorf("IMDS endpoint %q is not an http:// URL; fix imds endpoint or %s", e.endpoint, endpointEnv)
	}
	e.hc = &countingClient{hc: newIMDSHTTPClient(), n: &e.requests}
	e.client = e.newClient()
	return e
}

// Name is "ec2".
func (e *EC2) Name() string { return "ec2" }

// Endpoint is the IMDS endpoint in use, for messages.
func (e *EC2) Endpoint() string { return e.endpoint }

// Requests is the number of HTTP requests sent to IMDS so far, counted at
// the transport: every attempt, token PUTs and the credentials provider's
// calls included.
func (e *EC2) Requests() int64 { return e.requests.Load() }

// Client returns the current imds.Client. A send failure replaces it, so
// take it for each call rather than keeping it.
func (e *EC2) Client() *imds.Client {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.client
}

// CredentialsClient is the client to hand to ec2rolecreds: its requests
// share our transport, token and request count. The provider lists the
// roles before each credentials fetch; its first listing is answered with
// the name Role already waited for, which saves one request at boot (the
// run's budget is 8). Later listings, at refresh, go to IMDS so that a
// replaced instance profile is seen.
func (e *EC2) CredentialsClient() ec2rolecreds.GetMetadataAPIClient { return credentialsClient{e} }

type credentialsClient struct{ e *EC2 }

func (c credentialsClient) GetMetadata(ctx context.Context, in *imds.GetMetadataInput, opts ...func(*imds.Options)) (*imds.GetMetadataOutput, error) {
	if strings.Trim(in.Path, "/") == "iam/security-credentials" {
		c.e.roleMu.Lock()
		role := c.e.role
		c.e.roleMu.Unlock()
		if role != "" && c.e.roleListed.CompareAndSwap(false, true) {
			return &imds.GetMetadataOutput{Content: io.NopCloser(strings.NewReader(role))}, nil
		}
	}
	return c.e.Client().GetMetadata(ctx, in, opts...)
}

func (e *EC2) newClient() *imds.Client {
	fallback := aws.FalseTernary
	if e.opts.AllowV1 {
		fallback = aws.TrueTernary
	}
	return imds.New(imds.Options{
		Endpoint:   e.endpoint,
		HTTPClient: e.hc,
		// One attempt per call: the waiting is ours (retry.Do), with a
		// deadline, jitter, and 429 and connection errors included.
		Retryer: awsretry.NewStandard(func(o *awsretry.StandardOptions) {
			o.MaxAttempts = 1
			o.RateLimiter = ratelimit.None
		}),
		DisableDefaultMaxBackoff: true,
		DisableDefaultTimeout:    true, // every call gets our attempt timeout
		// The config chose this datasource; AWS_EC2_METADATA_DISABLED in
		// the environment must not silently turn it off.
		ClientEnableState: imds.ClientEnabled,
		EnableFallback:    fallback,
		Logger: logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
			level := slog.LevelDebug
			if c == logging.Warn {
				level = slog.LevelWarn
			}
			e.log.Log(context.Background(), level, "aws sdk imds: "+fmt.Sprintf(format, v...))
		}),
	})
}

// replaceClient swaps in a fresh client after a send failure on old: the
// SDK's token provider stops using tokens for good after one.
func (e *EC2) replaceClient(old *imds.Client) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.client == old {
		e.client = e.newClient()
	}
}

// Fetch reads the instance's facts: a token PUT, the identity document,
// mac and local-hostname, then user-data and tags when asked for. Each
// request is retried within the one overall Deadline.
func (e *EC2) Fetch(ctx context.Context) (*Metadata, error) {
	start := time.Now()
	deadline := start.Add(e.opts.Deadline)
	md := &Metadata{Source: "ec2"}

	var doc imds.InstanceIdentityDocument
	err := e.call(ctx, deadline, identityPath, false, func(ctx context.Context, c *imds.Client) error {
		out, err := c.GetInstanceIdentityDocument(ctx, nil)
		if err != nil {
			return err
		}
		doc = out.InstanceIdentityDocument
		return nil
	})
	if err != nil {
		return nil, err
	}
	if doc.InstanceID == "" {
		return nil, fmt.Errorf("IMDS at %s: the identity document has no instanceId; is this endpoint really IMDS?", e.endpoint)
	}
	if err := checkInstanceID(doc.InstanceID, e.endpoint); err != nil {
		return nil, err
	}
	md.InstanceID, md.Region, md.AvailabilityZone = doc.InstanceID, doc.Region, doc.AvailabilityZone
	md.InstanceType, md.AMIID, md.LocalIPv4, md.AccountID = doc.InstanceType, doc.ImageID, doc.PrivateIP, doc.AccountID

	for _, f := range []struct {
		path string
		dst  *string
	}{{macPath, &md.MAC}, {hostnamePath, &md.Hostname}} {
		b, found, err := e.get(ctx, deadline, f.path)
		if err != nil {
			return nil, err
		}
		if !found {
			e.log.Warn("IMDS has no "+f.path+"; the fact stays empty", "endpoint", e.endpoint)
		}
		*f.dst = strings.TrimSpace(string(b))
	}

	dropMisshapen(md, e.log, e.endpoint)

	if e.opts.UserData {
		b, found, err := e.get(ctx, deadline, userDataPath)
		if err != nil {
			return nil, err
		}
		if found {
			md.UserData = b
		}
	}

	if e.opts.Tags {
		tags, err := e.tags(ctx, deadline)
		if err != nil {
			return nil, err
		}
		md.Tags = tags
	}

	e.log.Info("read instance metadata from IMDS", "endpoint", e.endpoint, "instance_id", md.InstanceID,
		"region", md.Region, "user_data_bytes", len(md.UserData), "tags", len(md.Tags),
		"requests", e.Requests(), "elapsed", time.Since(start).Round(time.Millisecond))
	return md, nil
}

// get reads a metadata path (the SDK's GetMetadata, or GetUserData for
// user-data); found is false on a 404.
func (e *EC2) get(ctx context.Context, deadline time.Time, path string) (b []byte, found bool, err error) {
	err = e.call(ctx, deadline, path, false, func(ctx context.Context, c *imds.Client) error {
		var rc io.ReadCloser
		if path == userDataPath {
			out, err := c.GetUserData(ctx, nil)
			if err != nil {
				return err
			}
			rc = out.Content
		} else {
			out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: strings.TrimPrefix(path, "/latest/meta-data/")})
			if err != nil {
				return err
			}
			rc = out.Content
		}
		defer rc.Close()
		// The SDK has already read the body into memory.
		b, err = io.ReadAll(rc)
		return err
	})
	var nf *notFoundError
	if errors.As(err, &nf) {
		return nil, false, nil
	}
	return b, err == nil, err
}

// tags reads tags/instance (the key list) and one request per key.
func (e *EC2) tags(ctx context.Context, deadline time.Time) (map[string]string, error) {
	list, found, err := e.get(ctx, deadline, tagsPath)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("IMDS at %s has no instance tags (404 at %s): enable \"Allow tags in instance metadata\" (InstanceMetadataTags=enabled) on the instance, or stop asking for tags", e.endpoint, tagsPath)
	}
	tags := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(list)))
	for sc.Scan() {
		key := strings.TrimSpace(sc.Text())
		if key == "" {
			continue
		}
		if len(tags) == maxTags {
			e.log.Warn("IMDS lists more tags than bootstrap reads; the rest are ignored", "max", maxTags)
			break
		}
		v, found, err := e.get(ctx, deadline, tagsPath+"/"+key)
		if err != nil {
			return nil, err
		}
		if found { // a tag deleted between the two requests is simply gone
			tags[key] = string(v)
		}
	}
	return tags, nil
}

// Role returns the name of the instance's IAM role (the first one under
// iam/security-credentials/). At boot the role can appear late, so a 404
// is waited out within Deadline. The name is cached once known.
func (e *EC2) Role(ctx context.Context) (string, error) {
	e.roleMu.Lock()
	defer e.roleMu.Unlock()
	if e.role != "" {
		return e.role, nil
	}
	var role string
	err := e.call(ctx, time.Now().Add(e.opts.Deadline), rolesPath, true, func(ctx context.Context, c *imds.Client) error {
		out, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: "iam/security-credentials/"})
		if err != nil {
			return err
		}
		defer out.Content.Close()
		b, err := io.ReadAll(out.Content)
		if err != nil {
			return err
		}
		first, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
		if role = strings.TrimSpace(first); role == "" {
			return errors.New("GET " + rolesPath + ": empty role list")
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	e.role = role
	return role, nil
}

// notFoundError is a 404 from IMDS: final for most paths.
type notFoundError struct{ path string }

func (e *notFoundError) Error() string { return "GET " + e.path + ": HTTP 404 Not Found" }

// waitError is the error after the wait ran out; it unwraps to the
// *retry.DeadlineError (and so to the last attempt's error).
type waitError struct {
	msg string
	err error
}

func (e *waitError) Error() string { return e.msg }
func (e *waitError) Unwrap() error { return e.err }

// call runs fn against the current client until it succeeds, fails for
// good or the deadline passes. path names the request in messages. With
// wait404 a 404 is waited out too (the role list at boot).
func (e *EC2) call(ctx context.Context, deadline time.Time, path string, wait404 bool, fn func(ctx context.Context, c *imds.Client) error) error {
	if e.epErr != nil {
		return e.epErr
	}
	p := e.backoff
	// A step that starts late still gets one real attempt.
	p.Deadline = max(time.Until(deadline), min(e.attemptTimeout, e.opts.Deadline))
	p.Notify = func(attempt int, err error, wait time.Duration) {
		level := slog.LevelDebug
		if attempt == 1 || attempt%10 == 0 {
			level = slog.LevelInfo
		}
		e.log.Log(ctx, level, "IMDS not ready yet, waiting", "endpoint", e.endpoint, "path", path,
			"attempt", attempt, "error", err.Error(), "retry_in", wait.Round(time.Millisecond))
	}
	err := retry.Do(ctx, p, func(ctx context.Context) error {
		actx, cancel := context.WithTimeout(ctx, e.attemptTimeout)
		defer cancel()
		ob := &observer{}
		c := e.Client()
		err := fn(withObserver(actx, ob), c)
		if err == nil {
			return nil
		}
		err = e.classify(ob.last(), err)
		var se *sendError
		if errors.As(err, &se) {
			e.replaceClient(c)
		}
		var nf *notFoundError
		if wait404 && errors.As(err, &nf) {
			return nf // not Permanent: keep waiting
		}
		return err
	})
	if err == nil {
		return nil
	}
	var de *retry.DeadlineError
	if !errors.As(err, &de) {
		var nf *notFoundError
		if errors.As(err, &nf) {
			return err // the caller decides what a 404 means
		}
		return fmt.Errorf("IMDS at %s: %w", e.endpoint, err)
	}
	var nf *notFoundError
	if wait404 && errors.As(de.Last, &nf) {
		return &waitError{err: err, msg: fmt.Sprintf(
			"no IAM role on this instance: IMDS at %s answered 404 for %s for %s (%s); attach an instance profile to the instance, or raise the deadline if it is attached late",
			e.endpoint, path, e.opts.Deadline, retry.Attempts(de.Attempts))}
	}
	return &waitError{err: err, msg: fmt.Sprintf("IMDS at %s did not answer within %s (%s): %v",
		e.endpoint, e.opts.Deadline, retry.Attempts(de.Attempts), de.Last)}
}

// sendError is an attempt that got no HTTP answer.
type sendError struct {
	method, path string
	err          error
}

func (e *sendError) Error() string {
	return fmt.Sprintf("%s %s: %s", e.method, e.path, describeTransportErr(e.err))
}
func (e *sendError) Unwrap() error { return e.err }

// statusError is an HTTP answer we did not want.
type statusError struct {
	method, path string
	status       int
}

func (e *statusError) Error() string {
	return fmt.Sprintf("%s %s: HTTP %d %s", e.method, e.path, e.status, http.StatusText(e.status))
}

// classify turns the SDK's error for one attempt into a short message
// and decides whether waiting can help. It relies on what the transport
// saw (ex), because the SDK hides the token PUT's status.
func (e *EC2) classify(ex *exchange, sdkErr error) error {
	if ex == nil {
		// Nothing went out (the context ended first): retry.Do decides.
		return sdkErr
	}
	if ex.err != nil {
		return &sendError{method: ex.method, path: ex.path, err: ex.err}
	}
	if errors.Is(ex.bodyErr, errAnswerTooLarge) {
		what := fmt.Sprintf("the answer to %s %s is larger than %d KiB", ex.method, ex.path, maxMetaData>>10)
		if ex.path == userDataPath {
			// Waiting cannot shrink it; the operator has to.
			return retry.Permanent(badinput.Wrap(fmt.Errorf("the user-data is larger than %d KiB, bootstrap's limit (EC2 itself allows 16 KiB): compress it with gzip, or move configuration into include: layers in S3", MaxUserData>>10)))
		}
		return retry.Permanent(fmt.Errorf("%s, far more than IMDS sends; is this endpoint really IMDS?", what))
	}
	if ex.bodyErr != nil {
		return &sendError{method: ex.method, path: ex.path, err: ex.bodyErr}
	}
	st := &statusError{method: ex.method, path: ex.path, status: ex.status}
	switch s := ex.status; {
	case s == http.StatusTooManyRequests || s >= 500:
		return st // throttled or overloaded: wait
	case ex.path == tokenPath:
		switch s {
		case http.StatusForbidden, http.StatusNotFound, http.StatusMethodNotAllowed:
			// With AllowV1 the SDK falls back to v1 by itself and the
			// last exchange would be the GET; here v1 is not allowed.
			return retry.Permanent(fmt.Errorf("IMDSv2 token refused (%v): the endpoint seems IMDSv1-only; to accept it, set imds.allow_v1: true in a local --config (user-data cannot: it is read through IMDS)", st))
		case http.StatusUnauthorized:
			return st
		case http.StatusOK:
			return sdkErr
		}
		return retry.Permanent(fmt.Errorf("IMDS rejected the token request (%v); is a proxy or firewall in between?", st))
	case s == http.StatusUnauthorized:
		// The token expired or was never valid; the SDK dropped it, the
		// next attempt fetches a new one.
		return st
	case s == http.StatusNotFound:
		return retry.Permanent(&notFoundError{path: ex.path})
	case s == http.StatusForbidden:
		return retry.Permanent(fmt.Errorf("%v: the instance metadata service is turned off for this instance (HttpEndpoint=disabled) or the request went through a proxy", st))
	case s >= 200 && s < 300:
		// An answer we could not use (not the JSON we expect): IMDS
		// does not get better at that by waiting.
		return retry.Permanent(fmt.Errorf("%s %s: unusable answer: %w", ex.method, ex.path, sdkErr))
	}
	return retry.Permanent(st)
}

// describeTransportErr shortens net/http's errors to the part that says
// what went wrong ("connect: connection refused"), without the URL.
func describeTransportErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out waiting for an answer"
	case errors.Is(err, context.Canceled):
		return "canceled"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed before an answer (" + err.Error() + ")"
	}
	return err.Error()
}
