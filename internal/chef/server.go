package chef

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/opsboot/bootstrap/internal/retry"
)

// maxResponse bounds what is read of a server answer.
const maxResponse = 1 << 20

// Server is a Chef server's API as one client sees it.
type Server struct {
	// URL is chef_server_url: https://host[/organizations/ORG].
	URL  *url.URL
	HTTP *http.Client
	// Deadline bounds the retries of transient errors (5xx, 429,
	// connection refused while the server comes up) of one request.
	Deadline time.Duration
	// Requests counts the requests sent, for tests and logs.
	Requests atomic.Int64
	// version is the signing version in use: 1.3 until the server
	// refuses it, then 1.0 for the rest of the run.
	version atomic.Value
}

// APIError is a non-2xx answer from the server.
type APIError struct {
	Method, URL string
	Status      int
	Msg         string // the server's own words, {"error": [...]}
}

func (e *APIError) Error() string {
	msg := e.Msg
	if msg == "" {
		msg = http.StatusText(e.Status)
	}
	return fmt.Sprintf("%s %s: %d %s", e.Method, e.URL, e.Status, msg)
}

// StatusOf is the HTTP status of an *APIError in err, or 0.
func StatusOf(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

func (s *Server) signVersion() string {
	if v, ok := s.version.Load().(string); ok {
		return v
	}
	return Sign13
}

// endpoint is the full URL and the path that is signed for an API path.
func (s *Server) endpoint(p string) (string, string) {
	u := *s.URL
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	return u.String(), u.Path
}

// Do sends one signed request as who (key in memory) and decodes a JSON
// answer into out (if not nil). Transient failures are retried with jitter
// within the deadline; a 401 to a 1.3 signature is retried once as 1.0.
func (s *Server) Do(ctx context.Context, who Signer, method, p string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	full, signed := s.endpoint(p)
	pol := retry.Policy{Initial: 200 * time.Millisecond, Max: 5 * time.Second, Deadline: s.Deadline}
	return retry.Do(ctx, pol, func(ctx context.Context) error {
		err := s.once(ctx, who, method, full, signed, body, out)
		if StatusOf(err) == http.StatusUnauthorized && s.signVersion() == Sign13 {
			// Servers before Chef 12.4 (goiardi among them, in some
			// versions) know only 1.0/1.1.
			s.version.Store(Sign10)
			err = s.once(ctx, who, method, full, signed, body, out)
		}
		switch st := StatusOf(err); {
		case err == nil:
			return nil
		case st >= 500, st == http.StatusTooManyRequests, st == http.StatusRequestTimeout:
			return err
		case st != 0:
			return retry.Permanent(err)
		case ctx.Err() != nil:
			return err
		default: // connection refused, reset, timeout: the server coming up
			return err
		}
	})
}

func (s *Server) once(ctx context.Context, who Signer, method, full, signed string, body []byte, out any) error {
	who.Version = s.signVersion()
	h, err := who.Headers(method, signed, body, time.Now())
	if err != nil {
		return retry.Permanent(err)
	}
	actx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, method, full, bytes.NewReader(body))
	if err != nil {
		return retry.Permanent(err)
	}
	req.Header = h
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	s.Requests.Add(1)
	resp, err := s.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, full, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%s %s: read answer: %w", method, full, err)
	}
	if resp.StatusCode/100 != 2 {
		return &APIError{Method: method, URL: full, Status: resp.StatusCode, Msg: serverMessage(data)}
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return retry.Permanent(fmt.Errorf("%s %s: answer is not the JSON expected: %v", method, full, err))
		}
	}
	return nil
}

// serverMessage is the server's {"error": ["…"]} text, bounded.
func serverMessage(data []byte) string {
	var e struct {
		Error any `json:"error"`
	}
	if json.Unmarshal(data, &e) != nil || e.Error == nil {
		return ""
	}
	var msg string
	switch v := e.Error.(type) {
	case []any:
		var parts []string
		for _, p := range v {
			parts = append(parts, fmt.Sprint(p))
		}
		msg = strings.Join(parts, "; ")
	default:
		msg = fmt.Sprint(v)
	}
	if len(msg) > 300 {
		msg = msg[:300] + "…"
	}
	return msg
}
