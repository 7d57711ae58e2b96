// Package secret keeps secret values out of everything bootstrap prints.
//
// A run learns secrets as it goes (role credentials, user-data, file content
// marked secret, later validation keys and PSKs). Each is registered with the
// run's Redactor the moment it is known, and every output path — the log
// handler, streamed command output, plan text, error messages — passes through
// Redact. Redacting at the output is the one place that cannot be forgotten by a
// new call site.
package secret

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// Mask replaces every secret value in output.
const Mask = "[REDACTED]"

// shortLen: values shorter than this are masked only where they stand alone
// (see Add). Lines of a document shorter than this are not registered.
const shortLen = 8

// Redactor is safe for concurrent use. The zero value is ready; a nil
// *Redactor learns nothing and redacts nothing.
type Redactor struct {
	mu     sync.RWMutex
	values []value // longest first, so a secret containing another is masked whole
	seen   map[string]bool
	// byPrefix indexes the values by their first prefixLen bytes (short
	// holds the shorter ones), so that redacting a line costs the same for
	// ten secrets as for the hundred thousand lines of a large user-data.
	byPrefix map[string][]int
	short    []int
	// longestLine is the length of the longest value without a newline: the
	// most a secret can straddle a line writer's flush by.
	longestLine int
}

const prefixLen = 4

type value struct {
	s string
	// alone: a short value is masked only where it is not part of a longer
	// word, so "abc" masks "pw=abc" but leaves "abcdef" alone.
	alone bool
}

// Add registers values marked secret: credentials, keys, the content of
// secret files. Each is masked whole and trimmed of surrounding white space
// (a password file ends in a newline that output does not repeat), at any
// length; values shorter than 8 bytes only where they stand alone, not inside
// a longer run of letters and digits. Each line of a multi-line value (a PEM
// key) of 8 bytes or more is masked too, because output is often streamed line
// by line and a lone line of a key is as secret as the whole. So are the forms
// a value takes when something encodes it: JSON string escapes, URL escapes,
// base64.
func (r *Redactor) Add(values ...string) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		trimmed := strings.TrimSpace(v)
		if trimmed == "" {
			continue
		}
		r.add(v)
		r.add(trimmed)
		r.addLines(v)
		for _, enc := range encodings(trimmed) {
			r.add(enc)
		}
	}
	r.sort()
}

// AddDocument registers documents that hold secrets among ordinary text
// (user-data, a configuration layer): each whole, and each value of 4 bytes
// or more assigned to a name that says it is secret (DB_PASSWORD=…,
// export API_TOKEN="…", psk: …; see secretAssignment), because a program
// prints such a value alone. The document's other lines are not registered:
// "[Install]" or "WantedBy=multi-user.target" are no secrets, and masking
// them would garble plans. Scripts go to AddScript.
func (r *Redactor) AddDocument(docs ...string) { r.addDocuments(docs, false) }

// AddScript registers scripts (user-data shell scripts) as AddDocument does,
// and each of their lines of 8 bytes or more too, since `set -x` prints the
// lines it runs. Shorter lines ("fi", "done") are no secrets by themselves;
// any other short secret in a script is protected only as part of its line.
func (r *Redactor) AddScript(scripts ...string) { r.addDocuments(scripts, true) }

func (r *Redactor) addDocuments(docs []string, lines bool) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range docs {
		if strings.TrimSpace(d) == "" {
			continue
		}
		r.add(d)
		if lines {
			r.addLines(d)
		}
		for _, line := range strings.Split(d, "\n") {
			if m := secretAssignment.FindStringSubmatch(line); m != nil {
				if v := unquote(m[1]); len(v) >= 4 {
					r.add(v)
				}
			}
		}
	}
	r.sort()
}

// secretAssignment is a line that assigns a value to a name that says it is
// secret, as shell (NAME=value, export NAME=value), YAML (name: value) or
// JSON ("name": "value") write it.
var secretAssignment = regexp.MustCompile(`(?i)^\s*(?:export\s+|-\s+)?["']?[a-z0-9_.-]*(?:pass|secret|token|key|cred|psk|auth)[a-z0-9_.-]*["']?\s*(?:=|:)\s*(.*?)\s*,?\s*$`)

func unquote(v string) string {
	if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1 : len(v)-1]
	}
	return v
}

func (r *Redactor) addLines(v string) {
	if !strings.Contains(v, "\n") {
		return
	}
	for _, line := range strings.Split(v, "\n") {
		if line = strings.TrimSpace(line); len(line) >= shortLen {
			r.add(line)
		}
	}
}

func (r *Redactor) add(v string) {
	if strings.TrimSpace(v) == "" || r.seen[v] {
		return
	}
	if r.seen == nil {
		r.seen = map[string]bool{}
	}
	r.seen[v] = true
	r.values = append(r.values, value{s: v, alone: len(v) < shortLen})
	if !strings.Contains(v, "\n") {
		r.longestLine = max(r.longestLine, len(v))
	}
}

// sort orders the values longest first and rebuilds the index.
func (r *Redactor) sort() {
	sort.SliceStable(r.values, func(i, j int) bool { return len(r.values[i].s) > len(r.values[j].s) })
	r.byPrefix = make(map[string][]int, len(r.values))
	r.short = r.short[:0]
	for i, v := range r.values {
		if len(v.s) < prefixLen {
			r.short = append(r.short, i)
		} else {
			k := v.s[:prefixLen]
			r.byPrefix[k] = append(r.byPrefix[k], i)
		}
	}
}

// at calls fn with each value that occurs in s at i (longest first) and may
// be masked there, until fn returns false.
func (r *Redactor) at(s string, i int, fn func(v string) bool) {
	try := func(k int) bool {
		v := r.values[k]
		if !strings.HasPrefix(s[i:], v.s) || v.alone && glued(s, i, i+len(v.s)) {
			return true
		}
		return fn(v.s)
	}
	if i+prefixLen <= len(s) {
		for _, k := range r.byPrefix[s[i:i+prefixLen]] {
			if !try(k) {
				return
			}
		}
	}
	for _, k := range r.short {
		if !try(k) {
			return
		}
	}
}

// glued reports whether s[start:end] continues a run of letters and digits
// on either side.
func glued(s string, start, end int) bool {
	return (start > 0 && isWord(s[start-1]) && isWord(s[start])) ||
		(end < len(s) && isWord(s[end]) && isWord(s[end-1]))
}

// encodings are the forms of v that differ from it when it is written into
// JSON (with and without HTML escaping), a URL query or path, or base64 and
// base64url (of v and of v with the newline `echo` adds).
func encodings(v string) []string {
	var out []string
	for _, html := range []bool{true, false} {
		var b bytes.Buffer
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(html)
		if enc.Encode(v) == nil {
			out = append(out, strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(b.String(), `"`), "\n"), `"`))
		}
	}
	out = append(out, url.QueryEscape(v), url.PathEscape(v))
	// Unpadded base64 also matches the padded form, of which it is the start.
	for _, b := range []string{v, v + "\n"} {
		out = append(out, base64.RawStdEncoding.EncodeToString([]byte(b)), base64.RawURLEncoding.EncodeToString([]byte(b)))
	}
	kept := out[:0]
	for _, e := range out {
		if e != v {
			kept = append(kept, e)
		}
	}
	return kept
}

// Redact returns s with every registered value, and every credential in the
// shapes tools print them (see credentialShapes), replaced by Mask.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	return maskCredentialShapes(r.redact(s))
}

// redact masks, left to right, the longest value that occurs at each place.
func (r *Redactor) redact(s string) string {
	var b *strings.Builder
	last := 0
	for i := 0; i < len(s); {
		n := 0
		r.at(s, i, func(v string) bool { n = len(v); return false })
		if n == 0 {
			i++
			continue
		}
		if b == nil {
			b = &strings.Builder{}
			b.Grow(len(s))
		}
		b.WriteString(s[last:i])
		b.WriteString(Mask)
		i += n
		last = i
	}
	if b == nil {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// isWord: ASCII letters and digits, and every byte of a multi-byte rune (a
// letter of another script).
func isWord(c byte) bool {
	return c >= 0x80 || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

// credentialShapes find AWS credentials the run never learned: IMDS may hand
// a script a rotated set while it runs. They match the JSON that IMDS, STS
// and `aws configure export-credentials` print, the variables and ini keys
// the SDKs read, and access key ids.
var credentialShapes = []struct {
	re *regexp.Regexp
	// may is a cheap test that s could match, so most lines skip the regexp.
	may func(s string) bool
}{
	{regexp.MustCompile(`("(?:AccessKeyId|SecretAccessKey|SessionToken|Token)"\s*:\s*")([^"\\]+)`),
		func(s string) bool { return strings.Contains(s, "Key") || strings.Contains(s, "Token") }},
	{regexp.MustCompile(`(?i)(aws_(?:access_key_id|secret_access_key|session_token|security_token)["']?\s*[=:]\s*["']?)([A-Za-z0-9/+=]+)`),
		hasAWSPrefix},
	{regexp.MustCompile(`()\b(?:AKIA|ASIA)[A-Z0-9]{16}\b`),
		func(s string) bool { return strings.Contains(s, "AKIA") || strings.Contains(s, "ASIA") }},
}

func maskCredentialShapes(s string) string {
	for _, c := range credentialShapes {
		if c.may(s) {
			s = c.re.ReplaceAllString(s, "${1}"+Mask)
		}
	}
	return s
}

// hasAWSPrefix reports whether s holds "aws_" in any case.
func hasAWSPrefix(s string) bool {
	for i := strings.IndexByte(s, '_'); i >= 0; {
		if i >= 3 && strings.EqualFold(s[i-3:i], "aws") {
			return true
		}
		j := strings.IndexByte(s[i+1:], '_')
		if j < 0 {
			break
		}
		i += 1 + j
	}
	return false
}

// Error wraps err so that its message is redacted; errors.Is/As still see the
// original through Unwrap.
func (r *Redactor) Error(err error) error {
	if err == nil {
		return nil
	}
	return &redactedError{msg: r.Redact(err.Error()), err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }
func (e *redactedError) Unwrap() error { return e.err }

// LineWriter returns a writer that redacts complete lines and hands each to
// emit (without the newline). Close flushes a final partial line. Buffering by
// line means a secret split across two writes is still caught.
func (r *Redactor) LineWriter(emit func(line string)) io.WriteCloser {
	return &lineWriter{r: r, emit: emit, limit: maxLine}
}

type lineWriter struct {
	r     *Redactor
	emit  func(string)
	limit int // maxLine; tests make it small
	mu    sync.Mutex
	buf   bytes.Buffer
}

// maxLine bounds the buffer for output that never prints a newline: such a
// line is emitted in pieces of about this size.
const maxLine = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			if w.buf.Len() > w.limit {
				if cut := w.r.safeCut(w.buf.String()); cut > 0 {
					w.emit(w.r.Redact(string(w.buf.Next(cut))))
				}
			}
			return len(p), nil
		}
		line := string(w.buf.Next(i + 1))
		w.emit(w.r.Redact(strings.TrimRight(line, "\r\n")))
	}
}

// safeCut is where a long line s may be cut into an emitted piece and a kept
// tail: the tail is at least as long as any secret's possible beginning, and
// the cut is not inside an occurrence of a secret. Only when every possible
// cut is inside an occurrence (secrets that overlap themselves, repeated) is
// the cut made anyway, at the nearest place.
func (r *Redactor) safeCut(s string) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	longest := r.longestLine
	hi := len(s) - max(longest-1, 0) // the tail holds any unfinished secret
	if hi <= 0 {
		return 0 // a secret is longer than the buffer: keep buffering
	}
	lo := max(hi-longest, 1)
	// unsafe[p-lo] is set when some occurrence starts before p and ends after it.
	unsafe := make([]bool, hi-lo+1)
	for start := max(lo-longest, 0); start < hi; start++ {
		r.at(s, start, func(v string) bool {
			for p := max(start+1, lo); p < start+len(v) && p <= hi; p++ {
				unsafe[p-lo] = true
			}
			return true
		})
	}
	for p := hi; p >= lo; p-- {
		if !unsafe[p-lo] {
			return p
		}
	}
	if lo == 1 {
		return 0 // inside a secret back to the start: keep buffering
	}
	return hi
}

func (w *lineWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.buf.Len() > 0 {
		w.emit(w.r.Redact(w.buf.String()))
		w.buf.Reset()
	}
	return nil
}

// Handler wraps h so that the message and every attribute value are redacted
// before h formats them.
func (r *Redactor) Handler(h slog.Handler) slog.Handler { return &handler{r: r, h: h} }

type handler struct {
	r *Redactor
	h slog.Handler
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.h.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, rec slog.Record) error {
	out := slog.NewRecord(rec.Time, rec.Level, h.r.Redact(rec.Message), rec.PC)
	rec.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.h.Handle(ctx, out)
}

func (h *handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.r.Redact(v.String()))
	case slog.KindGroup:
		attrs := v.Group()
		red := make([]any, len(attrs))
		for i, ga := range attrs {
			red[i] = h.attr(ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return slog.String(a.Key, h.r.Redact(err.Error()))
		}
		return slog.String(a.Key, h.r.Redact(v.String()))
	default:
		return slog.Attr{Key: a.Key, Value: v}
	}
}

func (h *handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = h.attr(a)
	}
	return &handler{r: h.r, h: h.h.WithAttrs(red)}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{r: h.r, h: h.h.WithGroup(name)}
}
