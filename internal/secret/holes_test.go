package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

// Every short secret is masked where it stands alone, in text and JSON logs,
// also when registered with the newline a file or `echo` leaves behind.
func TestShortSecretsAreMasked(t *testing.T) {
	for _, s := range []string{"x", "ab", "q1w", "p4ss", "pa55w", "hunter", "Zx9!kq#"} {
		t.Run(s, func(t *testing.T) {
			var r Redactor
			r.Add(s + "\n")
			var lines []string
			w := r.LineWriter(func(l string) { lines = append(lines, l) })
			w.Write([]byte("the secret is\n" + s + "\npassword=" + s + "\n"))
			w.Close()
			want := "the secret is|" + Mask + "|password=" + Mask
			if got := strings.Join(lines, "|"); got != want {
				t.Errorf("lines = %q, want %q", got, want)
			}
			var buf bytes.Buffer
			log := slog.New(r.Handler(slog.NewJSONHandler(&buf, nil)))
			log.Info(s, "value", s, "line", "token: "+s)
			if strings.Contains(strings.ReplaceAll(buf.String(), `"msg"`, ""), `"`+s+`"`) || strings.Contains(buf.String(), " "+s+`"`) {
				t.Errorf("JSON log shows the secret: %s", buf.String())
			}
			if n := strings.Count(buf.String(), Mask); n != 3 {
				t.Errorf("want 3 masks in the JSON log, got %d: %s", n, buf.String())
			}
		})
	}
}

// A short secret is not masked inside a longer word: that would mangle
// ordinary output without protecting anything.
func TestShortSecretInsideAWordIsLeftAlone(t *testing.T) {
	var r Redactor
	r.Add("abc")
	for in, want := range map[string]string{
		"abcdef":      "abcdef",
		"xabc":        "xabc",
		"abc":         Mask,
		"(abc)":       "(" + Mask + ")",
		"a=abc b=abc": "a=" + Mask + " b=" + Mask,
		"abc_abc":     Mask + "_" + Mask,
	} {
		if got := r.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// A secret shows up encoded as often as plain: in JSON (escaped quotes,
// backslashes, HTML characters), in URL queries and in base64.
func TestEncodedSecretsAreMasked(t *testing.T) {
	secret := `p"a\ss<w>&rd/+ 1`
	var r Redactor
	r.Add(secret)
	htmlJSON, _ := json.Marshal(map[string]string{"password": secret})
	var plain bytes.Buffer
	enc := json.NewEncoder(&plain)
	enc.SetEscapeHTML(false)
	enc.Encode(map[string]string{"password": secret})
	for _, out := range []string{
		string(htmlJSON),
		plain.String(),
		"https://example.com/?password=" + url.QueryEscape(secret),
		"https://example.com/" + url.PathEscape(secret),
		"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(secret)),
		"echo | base64: " + base64.StdEncoding.EncodeToString([]byte(secret+"\n")),
		"jwt-ish: " + base64.RawURLEncoding.EncodeToString([]byte(secret)) + ".x",
	} {
		got := r.Redact(out)
		if !strings.Contains(got, Mask) {
			t.Errorf("not masked: %s", got)
		}
	}
}

// A line longer than the line writer's buffer is emitted in pieces; a secret
// that straddles a piece boundary is still masked.
func TestLineWriterMasksSecretAcrossFlush(t *testing.T) {
	secret := "straddling-secret-value-0123456789"
	var r Redactor
	r.Add(secret)
	for _, offset := range []int{1, len(secret) / 2, len(secret) - 1} {
		var out strings.Builder
		w := r.LineWriter(func(l string) { out.WriteString(l) })
		// The first write fills the buffer past its limit with the secret's
		// first offset bytes; the rest comes with the next write.
		pad := strings.Repeat("x", maxLine+1-offset)
		w.Write([]byte(pad + secret[:offset]))
		w.Write([]byte(secret[offset:] + strings.Repeat("y", 10)))
		w.Close()
		got := out.String()
		if strings.Contains(got, secret[:offset]+"yyy") || !strings.Contains(got, Mask) || strings.Contains(got, secret) {
			t.Errorf("offset %d: secret not masked across the flush (%d masks)", offset, strings.Count(got, Mask))
		}
		if want := pad + Mask + strings.Repeat("y", 10); got != want {
			t.Errorf("offset %d: output differs: %d bytes, want %d", offset, len(got), len(want))
		}
	}
}

// A line writer fed a never-ending line keeps its memory bounded.
func TestLineWriterBoundedWithoutNewline(t *testing.T) {
	var r Redactor
	r.Add("some-secret-value")
	total := 0
	w := r.LineWriter(func(l string) { total += len(l) })
	chunk := bytes.Repeat([]byte("z"), 4096)
	lw := w.(*lineWriter)
	for i := 0; i < 200; i++ {
		w.Write(chunk)
		if lw.buf.Len() > maxLine+4096+len("some-secret-value") {
			t.Fatalf("buffer grew to %d bytes", lw.buf.Len())
		}
	}
	w.Close()
	if total != 200*4096 {
		t.Fatalf("emitted %d bytes, want %d", total, 200*4096)
	}
}

// Role credentials in the shapes tools print them (IMDS and STS JSON, the
// AWS CLI's env export) are masked even when the run never learned them:
// IMDS may rotate them while a script runs.
func TestCredentialShapesAreMasked(t *testing.T) {
	var r Redactor
	imds := `{
  "Code" : "Success",
  "Type" : "AWS-HMAC",
  "AccessKeyId" : "ASIAUNKNOWNEXAMPLE12",
  "SecretAccessKey" : "unknown/secret+KEY/example0123456789abcdEF",
  "Token" : "IQoJb3JpZ2luX2VjEXAMPLEunknownTOKEN==",
  "Expiration" : "2026-12-02T23:00:00Z"
}`
	for _, line := range append(strings.Split(imds, "\n"),
		`{"AccessKeyId":"ASIAUNKNOWNEXAMPLE12","SecretAccessKey":"unknown/secret+KEY/example0123456789abcdEF","SessionToken":"IQoJb3JpZ2luX2VjEXAMPLEunknownTOKEN=="}`,
		"export AWS_SECRET_ACCESS_KEY=unknown/secret+KEY/example0123456789abcdEF",
		"AWS_SESSION_TOKEN='IQoJb3JpZ2luX2VjEXAMPLEunknownTOKEN=='",
		"aws_secret_access_key = unknown/secret+KEY/example0123456789abcdEF",
		"key id ASIAUNKNOWNEXAMPLE12 in use",
	) {
		got := r.Redact(line)
		for _, s := range []string{"ASIAUNKNOWNEXAMPLE12", "unknown/secret+KEY/example0123456789abcdEF", "IQoJb3JpZ2luX2VjEXAMPLEunknownTOKEN=="} {
			if strings.Contains(got, s) {
				t.Errorf("Redact(%q) = %q: credential shown", line, got)
			}
		}
	}
	if got := r.Redact(`"Code" : "Success",`); got != `"Code" : "Success",` {
		t.Errorf("ordinary field changed: %q", got)
	}
}

// A script masks its long lines (set -x prints them), not its short ones:
// "fi" and "done" are no secrets. A configuration document masks neither:
// its lines are structure ("[Install]"), and its secrets are assignments.
func TestDocumentLines(t *testing.T) {
	var doc Redactor
	doc.AddDocument("#cloud-config\nwrite_files:\n  - content: |\n      [Install]\n      WantedBy=multi-user.target\n")
	for _, line := range []string{"[Install]", "WantedBy=multi-user.target"} {
		if got := doc.Redact(line); got != line {
			t.Errorf("a configuration line is masked: %q", got)
		}
	}
	var r Redactor
	r.AddScript("#!/bin/sh\nif true; then\n  DB_PASSWORD=correct-horse-battery\nfi\n")
	if got := r.Redact("+ DB_PASSWORD=correct-horse-battery"); got != "+ "+Mask {
		t.Errorf("long line not masked: %q", got)
	}
	if got := r.Redact("fi"); got != "fi" {
		t.Errorf("short line of a document masked: %q", got)
	}
}

// A script prints a secret it assigned alone (echo "$DB_PASSWORD"), or
// set -x prints the assignment without its quotes.
func TestDocumentSecretAssignments(t *testing.T) {
	var r Redactor
	r.AddDocument(`#!/bin/sh
DB_PASSWORD='s3cr3t-pw'
export API_TOKEN="tok-12345"
psk: vpnkey1
"client_secret": "abcd",
path: /etc/app/instance.conf
name=web
`)
	for in, want := range map[string]string{
		"s3cr3t-pw":                    Mask,
		"+ DB_PASSWORD=s3cr3t-pw":      "+ DB_PASSWORD=" + Mask,
		"+ export API_TOKEN=tok-12345": "+ export API_TOKEN=" + Mask,
		"psk is vpnkey1":               "psk is " + Mask,
		"abcd":                         Mask,
		"wrote /etc/app/instance.conf": "wrote /etc/app/instance.conf",
		"web is not said to be secret": "web is not said to be secret",
	} {
		if got := r.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q, want %q", in, got, want)
		}
	}
}

// A secret longer than the line writer's buffer, streamed in small writes
// without a newline, is held until it can be masked whole.
func TestLineWriterMasksSecretLongerThanBuffer(t *testing.T) {
	long := strings.Repeat("0123456789abcdef", (maxLine+maxLine/2)/16)
	var r Redactor
	r.Add(long)
	var out strings.Builder
	w := r.LineWriter(func(l string) { out.WriteString(l) })
	in := "head " + long + " tail"
	for i := 0; i < len(in); i += 4096 {
		w.Write([]byte(in[i:min(len(in), i+4096)]))
	}
	w.Close()
	if got := out.String(); got != "head "+Mask+" tail" {
		t.Fatalf("got %d bytes with %d masks", len(got), strings.Count(got, Mask))
	}
}

// Output made only of a secret that overlaps itself leaves no safe place to
// cut; the writer still emits (bounded memory) and masks what it can.
func TestLineWriterSelfOverlappingSecret(t *testing.T) {
	var r Redactor
	r.Add("aaaaaaaaaa")
	total := 0
	w := r.LineWriter(func(l string) {
		total++
		if strings.Contains(l, "aaaaaaaaaa") {
			t.Errorf("a whole secret was emitted")
		}
	})
	for i := 0; i < 64; i++ {
		w.Write(bytes.Repeat([]byte("a"), 4096))
	}
	w.Close()
	if total < 3 {
		t.Fatalf("emitted %d pieces for 256 KiB", total)
	}
}
