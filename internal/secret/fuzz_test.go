package secret

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzLineWriterNeverCutsASecret streams one long line holding a secret, in
// writes of arbitrary sizes, through a line writer with a tiny buffer: the
// pieces it emits, put together, are the whole line redacted, so no secret
// was cut in two at a flush.
func FuzzLineWriterNeverCutsASecret(f *testing.F) {
	f.Add("hunter2-password", "some output before ", " and after", []byte{3, 9, 1, 40})
	f.Add("abcdefgh", strings.Repeat("x", 50), strings.Repeat("y", 50), []byte{31, 1, 1, 1, 32})
	f.Add("0123456789", "0123", "456789 0123456789", []byte{5, 5, 5})
	f.Fuzz(func(t *testing.T, secret, before, after string, sizes []byte) {
		clean := func(s string) string { return strings.Map(keepLower, s) }
		secret, before, after = clean(secret), clean(before), clean(after)
		if len(secret) < shortLen || len(secret) > 64 || selfOverlaps(secret) {
			return
		}
		var r Redactor
		r.Add(secret)
		line := before + secret + after
		var got strings.Builder
		w := &lineWriter{r: &r, emit: func(piece string) { got.WriteString(piece) }, limit: 16}
		rest := line
		for i := 0; len(rest) > 0; i++ {
			n := len(rest)
			if i < len(sizes) && int(sizes[i]) < n {
				n = max(1, int(sizes[i]))
			}
			w.Write([]byte(rest[:n]))
			rest = rest[n:]
		}
		w.Close()
		if want := r.Redact(line); got.String() != want {
			t.Fatalf("pieces put together:\n%q\nwant the line redacted:\n%q", got.String(), want)
		}
	})
}

// keepLower keeps the fuzzed text to lower-case letters and digits, so it can
// neither hold a newline nor spell part of Mask.
func keepLower(c rune) rune {
	if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' {
		return c
	}
	return -1
}

// selfOverlaps: a secret whose beginning is also its end can overlap itself,
// the one case where a line writer may have to cut through an occurrence.
func selfOverlaps(s string) bool {
	for k := 1; k < len(s); k++ {
		if s[:k] == s[len(s)-k:] {
			return true
		}
	}
	return false
}

// FuzzSource: any text is shown without a panic, and a query value of a
// parameter not known to be harmless never shows, whatever its name.
func FuzzSource(f *testing.F) {
	f.Add("https://h.example/p?x=1", "X-Amz-Signature", "0123456789abcdef")
	f.Add("s3://b/k?x", "sig", "abcdefgh12")
	f.Add("https://u:p@h/%zz", "X-Amz-Expires", "3600")
	f.Fuzz(func(t *testing.T, any, name, value string) {
		_ = Source(any)
		value = strings.Map(keepLower, value)
		if len(value) < shortLen || shownParams[strings.ToLower(name)] || strings.ContainsAny(name, "&=#") ||
			strings.Contains(url.QueryEscape(name)+"h.example/x.yaml", value) {
			return
		}
		src := "https://h.example/x.yaml?" + url.QueryEscape(name) + "=" + value + "&X-Amz-Expires=60"
		if got := Source(src); strings.Contains(got, value) {
			t.Fatalf("Source(%q) = %q shows the value", src, got)
		}
	})
}
