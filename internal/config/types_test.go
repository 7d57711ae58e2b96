package config

import (
	"io/fs"
	"testing"
	"time"
)

func TestFileModeParse(t *testing.T) {
	tests := []struct {
		in   string
		want FileMode
		err  string
	}{
		{in: "0600", want: 0o600},
		{in: "600", want: 0o600},
		{in: "0o755", want: 0o755},
		{in: "0O755", want: 0o755},
		{in: "4755", want: 0o4755},
		{in: "07777", want: 0o7777},
		{in: "0000", want: 0},
		{in: "0", want: 0},
		{in: "00000644", want: 0o644},
		{in: "10000", err: `mode "10000" is above 07777`},
		{in: "0999", err: `want an octal mode like 0644, "0600" or 0o755, got "0999"`},
		{in: "0x1ff", err: `want an octal mode like 0644, "0600" or 0o755, got "0x1ff"`},
		{in: "-644", err: `want an octal mode like 0644, "0600" or 0o755, got "-644"`},
		{in: "", err: `want an octal mode like 0644, "0600" or 0o755, got ""`},
		{in: "0o", err: `want an octal mode like 0644, "0600" or 0o755, got "0o"`},
		{in: "rw-r--r--", err: `want an octal mode like 0644, "0600" or 0o755, got "rw-r--r--"`},
	}
	for _, tt := range tests {
		var m FileMode
		err := m.parseScalar(tt.in)
		switch {
		case tt.err != "":
			if err == nil || err.Error() != tt.err {
				t.Errorf("parse %q: error %v, want %q", tt.in, err, tt.err)
			}
		case err != nil:
			t.Errorf("parse %q: %v", tt.in, err)
		case m != tt.want:
			t.Errorf("parse %q = %o, want %o", tt.in, m, tt.want)
		}
	}
}

func TestFileModeForms(t *testing.T) {
	if got := FileMode(0o644).String(); got != "0644" {
		t.Errorf("String() = %q", got)
	}
	if got, want := FileMode(0o4755).FS(), fs.ModeSetuid|0o755; got != want {
		t.Errorf("FS() = %v, want %v", got, want)
	}
	if got, want := FileMode(0o3777).FS(), fs.ModeSetgid|fs.ModeSticky|0o777; got != want {
		t.Errorf("FS() = %v, want %v", got, want)
	}
}

func TestDurationParse(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		err  string
	}{
		{in: "90s", want: 90 * time.Second},
		{in: "2m", want: 2 * time.Minute},
		{in: "1h", want: time.Hour},
		{in: "90", want: 90 * time.Second},
		{in: "0", want: 0},
		{in: "1.5", err: `want a duration like 90s or 2m, or a whole number of seconds, got "1.5"`},
		{in: "soon", err: `want a duration like 90s or 2m, or a whole number of seconds, got "soon"`},
		{in: "99999999999999999999", err: `duration "99999999999999999999" is too large`},
	}
	for _, tt := range tests {
		var d Duration
		err := d.parseScalar(tt.in)
		switch {
		case tt.err != "":
			if err == nil || err.Error() != tt.err {
				t.Errorf("parse %q: error %v, want %q", tt.in, err, tt.err)
			}
		case err != nil:
			t.Errorf("parse %q: %v", tt.in, err)
		case d.Duration != tt.want:
			t.Errorf("parse %q = %v, want %v", tt.in, d.Duration, tt.want)
		}
	}
}

func TestFileBytes(t *testing.T) {
	s := func(v string) *string { return &v }
	tests := []struct {
		f    File
		want string
	}{
		{File{Content: s("hello\n")}, "hello\n"},
		{File{Content: s("aGVs\nbG8K\n"), Encoding: "base64"}, "hello\n"},
		{File{Content: s("aGVsbG8"), Encoding: "base64"}, "hello"},
		{File{Source: "s3://b/k"}, ""},
	}
	for _, tt := range tests {
		got, err := tt.f.Bytes()
		if err != nil || string(got) != tt.want {
			t.Errorf("Bytes() = %q, %v; want %q", got, err, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	known := []string{"allow_v1", "deadline", "tags"}
	tests := map[string]string{
		"alow_v1":  "allow_v1",
		"allow-v1": "allow_v1",
		"Deadline": "deadline",
		"dealdine": "deadline",
		"tag":      "tags",
		"tgs":      "tags",
		"xyz":      "",
		"timeout":  "",
	}
	for in, want := range tests {
		if got := suggest(in, known); got != want {
			t.Errorf("suggest(%q) = %q, want %q", in, got, want)
		}
	}
}
