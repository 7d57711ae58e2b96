package secret

import (
	"bytes"
	"errors"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	var r Redactor
	r.Add("AKIASECRETKEYID", "abc", "tok-123-long", "-----BEGIN KEY-----\nMIIEpAIBAAKCAQEAsecretline\n-----END KEY-----")
	tests := []struct{ in, want string }{
		{"key=AKIASECRETKEYID", "key=" + Mask},
		{"abc stands alone, abcdef does not", Mask + " stands alone, abcdef does not"},
		{"tok-123-long tok-123-long", Mask + " " + Mask},
		{"line: MIIEpAIBAAKCAQEAsecretline", "line: " + Mask},
		{"nothing here", "nothing here"},
	}
	for _, tt := range tests {
		if got := r.Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestRedactLongestFirst(t *testing.T) {
	var r Redactor
	r.Add("secret", "secret-and-more")
	if got := r.Redact("x secret-and-more y"); got != "x "+Mask+" y" {
		t.Fatalf("got %q", got)
	}
}

func TestLineWriterCatchesSecretSplitAcrossWrites(t *testing.T) {
	var r Redactor
	r.Add("hunter2-password")
	var lines []string
	w := r.LineWriter(func(l string) { lines = append(lines, l) })
	for _, chunk := range []string{"pass is hun", "ter2-pass", "word\nsecond", " line"} {
		if _, err := w.Write([]byte(chunk)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	want := []string{"pass is " + Mask, "second line"}
	if strings.Join(lines, "|") != strings.Join(want, "|") {
		t.Fatalf("lines = %q, want %q", lines, want)
	}
}

func TestHandlerRedactsMessageAttrsAndErrors(t *testing.T) {
	var r Redactor
	var buf bytes.Buffer
	log := slog.New(r.Handler(slog.NewJSONHandler(&buf, nil)))
	r.Add("s3cr3t-value")
	err := &fs.PathError{Op: "open", Path: "s3cr3t-value", Err: errors.New("boom")}
	log.Info("saw s3cr3t-value", "attr", "x s3cr3t-value", "err", err, slog.Group("g", "inner", "s3cr3t-value"))
	out := buf.String()
	if strings.Contains(out, "s3cr3t-value") {
		t.Fatalf("secret leaked: %s", out)
	}
	if strings.Count(out, Mask) != 4 {
		t.Fatalf("want 4 masks in %s", out)
	}
}

func TestErrorKeepsChain(t *testing.T) {
	var r Redactor
	r.Add("token-abcdef")
	base := fs.ErrNotExist
	err := r.Error(errors.Join(base, errors.New("with token-abcdef")))
	if strings.Contains(err.Error(), "token-abcdef") || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}
