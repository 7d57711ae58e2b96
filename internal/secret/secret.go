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
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
)

// Mask replaces every secret value in output.
const Mask = "[REDACTED]"

// minLen is the shortest value worth redacting: shorter ones ("1", "on")
// would mangle ordinary output and are no secret anyway.
const minLen = 4

// Redactor is safe for concurrent use. The zero value is ready.
type Redactor struct {
	mu     sync.RWMutex
	values []string // longest first, so a secret containing another is masked whole
}

// Add registers secret values. Multi-line values (PEM keys, scripts) also
// register each of their longer lines, because output is often streamed line by
// line and a lone line of a key is as secret as the whole.
func (r *Redactor) Add(values ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, v := range values {
		r.add(v)
		if strings.Contains(v, "\n") {
			for _, line := range strings.Split(v, "\n") {
				if line = strings.TrimSpace(line); len(line) >= 8 {
					r.add(line)
				}
			}
		}
	}
	sort.Slice(r.values, func(i, j int) bool { return len(r.values[i]) > len(r.values[j]) })
}

func (r *Redactor) add(v string) {
	if len(v) < minLen {
		return
	}
	for _, have := range r.values {
		if have == v {
			return
		}
	}
	r.values = append(r.values, v)
}

// Redact returns s with every registered value replaced by Mask.
func (r *Redactor) Redact(s string) string {
	if r == nil {
		return s
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, v := range r.values {
		if strings.Contains(s, v) {
			s = strings.ReplaceAll(s, v, Mask)
		}
	}
	return s
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
	return &lineWriter{r: r, emit: emit}
}

type lineWriter struct {
	r    *Redactor
	emit func(string)
	mu   sync.Mutex
	buf  bytes.Buffer
}

// maxLine bounds the buffer for output that never prints a newline.
const maxLine = 64 << 10

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		i := bytes.IndexByte(w.buf.Bytes(), '\n')
		if i < 0 {
			if w.buf.Len() > maxLine {
				w.emit(w.r.Redact(w.buf.String()))
				w.buf.Reset()
			}
			return len(p), nil
		}
		line := string(w.buf.Next(i + 1))
		w.emit(w.r.Redact(strings.TrimRight(line, "\r\n")))
	}
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
