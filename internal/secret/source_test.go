package secret

import (
	"strings"
	"testing"
)

const presigned = "https://cfg.s3.eu-west-1.amazonaws.com/web.yaml?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
	"&X-Amz-Credential=ASIAEXAMPLEKEYID0000%2F20261202%2Feu-west-1%2Fs3%2Faws4_request" +
	"&X-Amz-Date=20261202T170000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host" +
	"&X-Amz-Security-Token=IQoJb3JpZ2luX2VjEXAMPLETOKENvalue%2F%2B%3D" +
	"&X-Amz-Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestSource(t *testing.T) {
	tests := []struct{ in, want string }{
		{presigned, "https://cfg.s3.eu-west-1.amazonaws.com/web.yaml?X-Amz-Algorithm=AWS4-HMAC-SHA256" +
			"&X-Amz-Credential=REDACTED&X-Amz-Date=20261202T170000Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host" +
			"&X-Amz-Security-Token=REDACTED&X-Amz-Signature=REDACTED"},
		{"https://blob.example.net/c/x.yaml?sv=2022-11-02&sig=abc%2Bdef&se=2026", "https://blob.example.net/c/x.yaml?sv=REDACTED&sig=REDACTED&se=REDACTED"},
		{"https://user:pa55@example.com/x#access_token=t0k", "https://REDACTED@example.com/x#REDACTED"},
		{"https://example.com/x.yaml", "https://example.com/x.yaml"},
		{"https://example.com/x.yaml?versionId=3", "https://example.com/x.yaml?versionId=3"},
		{"http://example.com/x?flag", "http://example.com/x?flag"},
		{"s3://bucket/odd?key#name", "s3://bucket/odd?key#name"},
		{"file:///etc/x.yaml", "file:///etc/x.yaml"},
		{"user-data[2](setup.sh)", "user-data[2](setup.sh)"},
		{"/etc/bootstrap.yaml", "/etc/bootstrap.yaml"},
		{"http://deb.debian.org/debian bookworm/main", "http://deb.debian.org/debian bookworm/main"},
		{"https://exa mple.com/%zz?sig=secret", "https://(unparsable URL)"},
	}
	for _, tt := range tests {
		if got := Source(tt.in); got != tt.want {
			t.Errorf("Source(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

func TestAddSourceMasksTheRawURL(t *testing.T) {
	var r Redactor
	r.AddSource(presigned, "https://user:a-long-password-here@example.com/x?format=json")
	msg := r.Redact("GET " + presigned + ": 403 for https://user:a-long-password-here@example.com/x?format=json")
	for _, s := range []string{"0123456789abcdef0123456789abcdef", "IQoJb3JpZ2luX2VjEXAMPLETOKENvalue", "ASIAEXAMPLEKEYID0000", "a-long-password-here"} {
		if strings.Contains(msg, s) {
			t.Errorf("%q shown in %s", s, msg)
		}
	}
	if !strings.Contains(msg, "format=json") {
		t.Errorf("a short, ordinary query value was masked: %s", msg)
	}
}
