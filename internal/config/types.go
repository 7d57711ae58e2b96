package config

import (
	"encoding/base64"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"
)

// Config is one machine's configuration: the merge of all its layers.
type Config struct {
	Version int       `yaml:"version"` // optional; only 1 is accepted
	Include []Include `yaml:"include"` // per layer only: empty after Merge (see the merge rule)
	IMDS    IMDS      `yaml:"imds"`
	AWS     AWS       `yaml:"aws"`
	Files   []File    `yaml:"files"`
	// Packages is in packages.go.
	Packages Packages `yaml:"packages"`
	// Commands are operators' commands (commands.go).
	Commands Commands `yaml:"commands"`
	// Services are systemd units (services.go).
	Services Services `yaml:"services"`
	// Network is hostname and Vagrant-style adapters (network.go).
	Network Network `yaml:"network,omitempty"`
	// Puppet is the Puppet agent (puppet.go).
	// nil when the section is absent.
	Puppet *Puppet `yaml:"puppet,omitempty"`
	// Chef registers the node with a Chef server (chef.go); nil when absent.
	Chef *Chef `yaml:"chef,omitempty"`

	// merged places errors found after validation (plan time: an owner
	// missing from the target root) where the operator wrote the value.
	merged *Merged
}

// Errorf returns an error positioned at the value at path (files[2].owner),
// as the schema's own errors are. Capabilities use it for problems they can
// only see at plan time; wrap it with badinput.Wrap.
func (c *Config) Errorf(path, format string, args ...any) *Error {
	e := &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
	if c != nil && c.merged != nil {
		e.Source, e.Line, e.Column = c.merged.locate(path)
	}
	return e
}

// Include names another layer to fetch and merge before the one that lists
// it. It may be written as just its source string.
type Include struct {
	Source string `yaml:"source"` // s3://bucket/key, https://…, file:///abs/path
	SHA256 string `yaml:"sha256"` // optional; verified by the fetcher
}

func (i *Include) fromScalar(text string) { i.Source = text }

func (*Include) describe() string {
	return "a source (s3://, https://, file://) or a mapping with source and sha256"
}

// IMDS says how the instance metadata service is used.
type IMDS struct {
	AllowV1  bool     `yaml:"allow_v1"` // fall back to IMDSv1 when the token call fails
	Deadline Duration `yaml:"deadline"` // how long to wait for IMDS at boot; default 120s
	Tags     bool     `yaml:"tags"`     // read instance tags from IMDS
	// EndpointMode picks IMDS's IPv4 or IPv6 address ("" → env
	// AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE, else ipv4). IPv6-only
	// subnets reach IMDS only at [fd00:ec2::254].
	EndpointMode string `yaml:"endpoint_mode"`
}

// AWS holds the settings for S3 and https fetches.
type AWS struct {
	Region   string   `yaml:"region"`
	S3       S3       `yaml:"s3"`
	Deadline Duration `yaml:"deadline"` // how long S3/https fetches are retried, run-wide; default 120s
	// IAMPropagation is how long after the role's credentials first appear
	// S3's AccessDenied is waited out (IAM propagation); default 30s.
	IAMPropagation Duration `yaml:"iam_propagation"`
}

// S3 points the S3 client elsewhere, e.g. at MinIO in tests.
type S3 struct {
	Endpoint  string `yaml:"endpoint"`
	PathStyle bool   `yaml:"path_style"`
}

// File is one file written under --root.
type File struct {
	Path     string   `yaml:"path" config:"key"`          // absolute and clean; the identity across layers
	Content  *string  `yaml:"content" config:"sensitive"` // exactly one of content / source
	Encoding string   `yaml:"encoding"`                   // "" or "base64" (for content)
	Source   string   `yaml:"source"`                     // s3://, https://, file://
	SHA256   string   `yaml:"sha256"`                     // hex, optional, verified
	Owner    string   `yaml:"owner"`                      // name or numeric id; default root
	Group    string   `yaml:"group"`                      // name or numeric id; default root
	Mode     FileMode `yaml:"mode"`                       // default 0644, or 0600 when secret
	Secret   bool     `yaml:"secret"`                     // content never shown in plans or logs
	// Append adds the content to the end of the file (creating it if
	// missing) once per instance, instead of replacing the file.
	Append bool `yaml:"append"`
	// Defer writes the file after packages are installed, so its owner may
	// be a user a package creates (cloud-init's defer: true).
	Defer bool `yaml:"defer"`
}

// Bytes returns the inline content, decoded when encoding is base64; nil
// when the file comes from a source.
func (f *File) Bytes() ([]byte, error) {
	if f.Content == nil {
		return nil, nil
	}
	if f.Encoding != "base64" {
		return []byte(*f.Content), nil
	}
	return decodeBase64(*f.Content)
}

// decodeBase64 accepts standard base64 with or without padding, and
// ignores line breaks and spaces so block scalars can wrap it.
func decodeBase64(s string) ([]byte, error) {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\n', '\r':
			return -1
		}
		return r
	}, s)
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		var err2 error
		if b, err2 = base64.RawStdEncoding.DecodeString(s); err2 != nil {
			// The error names a byte offset only, never the content.
			return nil, err
		}
	}
	return b, nil
}

// Duration is a time span written as "90s" or "2m", or as a whole number
// of seconds.
type Duration struct{ time.Duration }

func (d *Duration) parseScalar(text string) error {
	if text != "" && strings.Trim(text, "0123456789") == "" {
		n, err := strconv.ParseInt(text, 10, 64)
		if err != nil || n > int64(365*24*time.Hour/time.Second) {
			return fmt.Errorf("duration %s is too large", quoteShort(text))
		}
		d.Duration = time.Duration(n) * time.Second
		return nil
	}
	v, err := time.ParseDuration(text)
	if err != nil {
		return fmt.Errorf("want %s, got %s", d.describe(), quoteShort(text))
	}
	d.Duration = v
	return nil
}

func (*Duration) describe() string {
	return "a duration like 90s or 2m, or a whole number of seconds"
}

// String writes the duration as an operator would: 2m, 1h30m, 90ms.
func (d Duration) String() string {
	s := d.Duration.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// MarshalText writes the duration in a form that reads back the same.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// FileMode is a Unix mode, always read as octal from the text of the value:
// YAML's 0600 means 0600 here, not 384 as a YAML integer would.
type FileMode uint32

func (m *FileMode) parseScalar(text string) error {
	digits := text
	if strings.HasPrefix(digits, "0o") || strings.HasPrefix(digits, "0O") {
		digits = digits[2:]
	}
	if digits == "" || strings.Trim(digits, "01234567") != "" {
		return fmt.Errorf("want %s, got %s", m.describe(), quoteShort(text))
	}
	if len(strings.TrimLeft(digits, "0")) > 4 {
		return fmt.Errorf("mode %s is above 07777", quoteShort(text))
	}
	v, err := strconv.ParseUint(digits, 8, 32)
	if err != nil || v > 0o7777 {
		return fmt.Errorf("mode %s is above 07777", quoteShort(text))
	}
	*m = FileMode(v)
	return nil
}

func (*FileMode) describe() string { return "an octal mode like 0644, \"0600\" or 0o755" }

// String writes the mode as four octal digits, as chmod takes it.
func (m FileMode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// MarshalText writes the mode in octal so plans and JSON show 0644, not 420.
func (m FileMode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// FS converts the mode to io/fs form, moving setuid, setgid and sticky into
// Go's flag bits, which is what os.Chmod expects.
func (m FileMode) FS() fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
