package datasource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Transport timeouts for IMDS. It is one hop away and answers in
// milliseconds when it is there; waiting longer per request only delays the
// next attempt, and the overall wait is the retry deadline's job.
const (
	imdsDialTimeout           = time.Second
	imdsResponseHeaderTimeout = 2 * time.Second
	imdsAttemptTimeout        = 5 * time.Second
)

// newIMDSHTTPClient is the HTTP client under every imds.Client we build.
func newIMDSHTTPClient() *http.Client {
	return &http.Client{
		Transport: &http.Transport{
			// IMDS is link-local: it must never be reached through an
			// HTTP_PROXY (IMDS refuses proxied token requests anyway).
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: imdsDialTimeout, KeepAlive: 30 * time.Second}).DialContext,
			ResponseHeaderTimeout: imdsResponseHeaderTimeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       30 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// countingClient implements imds.HTTPClient. It counts every request that
// goes out (token PUTs, GETs, the credentials provider's calls, across all
// the imds.Clients built over it) and tells the observer in the request's
// context, if any, what happened: the SDK hides the token PUT's status
// behind an error type that does not unwrap, and we need it to decide what
// is worth waiting for.
type countingClient struct {
	hc *http.Client
	n  *atomic.Int64
}

func (c *countingClient) Do(req *http.Request) (*http.Response, error) {
	c.n.Add(1)
	resp, err := c.hc.Do(req)
	if err == nil {
		// The SDK reads every answer whole into memory: bound it here.
		limit := int64(maxMetaData)
		if req.URL.Path == userDataPath {
			limit = MaxUserData
		}
		resp.Body = &cappedBody{ReadCloser: resp.Body, left: limit, limit: limit}
	}
	ob, _ := req.Context().Value(observerKey{}).(*observer)
	if ob == nil {
		return resp, err
	}
	ex := &exchange{method: req.Method, path: req.URL.Path, err: err}
	if err == nil {
		ex.status = resp.StatusCode
		resp.Body = &watchedBody{ReadCloser: resp.Body, ob: ob, ex: ex}
	}
	ob.add(ex)
	return resp, err
}

// exchange is one HTTP request to IMDS and how it ended.
type exchange struct {
	method, path string
	status       int   // 0 when there was no answer
	err          error // the transport error when there was no answer
	bodyErr      error // reading the answer's body failed
}

type observerKey struct{}

// observer collects the exchanges of one attempt.
type observer struct {
	mu sync.Mutex
	ex []*exchange
}

func withObserver(ctx context.Context, ob *observer) context.Context {
	return context.WithValue(ctx, observerKey{}, ob)
}

func (o *observer) add(e *exchange) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.ex = append(o.ex, e)
}

// last returns a copy of the attempt's last exchange, or nil when nothing
// was sent.
func (o *observer) last() *exchange {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.ex) == 0 {
		return nil
	}
	e := *o.ex[len(o.ex)-1]
	return &e
}

// watchedBody records a failed body read (a connection dropped mid-answer),
// which the SDK reports only as a generic deserialization error.
type watchedBody struct {
	io.ReadCloser
	ob *observer
	ex *exchange
}

func (b *watchedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		b.ob.mu.Lock()
		if b.ex.bodyErr == nil {
			b.ex.bodyErr = err
		}
		b.ob.mu.Unlock()
	}
	return n, err
}

// errAnswerTooLarge is a body read past its cap.
var errAnswerTooLarge = errors.New("answer too large")

// cappedBody fails a read past limit bytes instead of returning them.
type cappedBody struct {
	io.ReadCloser
	left, limit int64
}

func (b *cappedBody) Read(p []byte) (int, error) {
	if b.left < 0 {
		return 0, fmt.Errorf("%w: more than %d bytes", errAnswerTooLarge, b.limit)
	}
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return 0, fmt.Errorf("%w: more than %d bytes", errAnswerTooLarge, b.limit)
	}
	return n, err
}
