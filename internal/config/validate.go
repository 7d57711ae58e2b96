package config

import (
	"fmt"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults, in one place so docs and code agree.
const (
	DefaultOwner      = "root"
	DefaultGroup      = "root"
	DefaultMode       = FileMode(0o644)
	DefaultSecretMode = FileMode(0o600)
	DefaultDeadline   = 120 * time.Second
	MaxDeadline       = time.Hour
)

// DefaultIAMPropagation: IAM changes reach S3 within seconds, rarely more;
// an AccessDenied that outlasts this is a real denial.
const DefaultIAMPropagation = 30 * time.Second

// checker applies defaults and validates a decoded Config, placing each
// problem at the value that causes it.
type checker struct {
	m      *Merged
	set    map[string]bool // paths the layers gave a non-null value
	failed ErrorList       // decode errors: values there are missing, not wrong
	errs   ErrorList
}

// checkable is a schema type with defaults or rules beyond its fields'
// types. The walk calls check on a value before its fields.
type checkable interface {
	check(c *checker, path string)
}

func (c *checker) errorf(path, format string, args ...any) {
	// A value that failed to decode is zero here; complaining about it
	// (or about its entry as a whole) would only repeat the decode error.
	for _, e := range c.failed {
		if within(e.Path, path) || within(path, e.Path) {
			return
		}
	}
	src, line, col := c.m.locate(path)
	c.errs.Add(&Error{Source: src, Line: line, Column: col, Path: path, Msg: fmt.Sprintf(format, args...)})
}

// within reports whether path is inner or the same as outer.
func within(path, outer string) bool {
	if outer == "" || path == outer {
		return true
	}
	return strings.HasPrefix(path, outer) && (path[len(outer)] == '.' || path[len(outer)] == '[')
}

// walk visits every struct and list element of the config, so a new
// section with a check method is validated without further wiring.
func (c *checker) walk(v reflect.Value, p string) {
	if v.CanAddr() {
		if ck, ok := v.Addr().Interface().(checkable); ok {
			ck.check(c, p)
		}
		if _, ok := v.Addr().Interface().(scalarType); ok {
			return
		}
	}
	switch v.Kind() {
	case reflect.Struct:
		si := schemaOf(v.Type())
		for _, name := range si.names {
			c.walk(v.Field(si.fields[name].index), joinKey(p, name))
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			c.walk(v.Index(i), p+"["+strconv.Itoa(i)+"]")
		}
	case reflect.Pointer:
		if !v.IsNil() {
			c.walk(v.Elem(), p)
		}
	}
}

// deadline applies a default to an unset duration and checks a set one.
func (c *checker) deadline(p string, d *Duration, def time.Duration) {
	switch {
	case !c.set[p]:
		d.Duration = def
	case d.Duration <= 0:
		c.errorf(p, "must be more than 0s, got %s", d)
	case d.Duration > MaxDeadline:
		c.errorf(p, "must be at most %s, got %s", Duration{MaxDeadline}, d)
	}
}

// autoOr lower-cases *v and checks it is "auto" (the default when empty)
// or one of known; what names the kind of value in the message.
func (c *checker) autoOr(p string, v *string, known []string, what string) {
	switch *v = strings.ToLower(*v); {
	case *v == "":
		*v = "auto"
	case *v == "auto" || slices.Contains(known, *v):
	default:
		c.errorf(p, "unknown %s %s; want auto, %s", what, quoteShort(*v), strings.Join(known, ", "))
	}
}

func (cfg *Config) check(c *checker, p string) {
	if c.set[joinKey(p, "version")] && cfg.Version != 1 {
		c.errorf(joinKey(p, "version"), "only version 1 is supported, got %d", cfg.Version)
	}
	first := map[string]int{}
	for i, f := range cfg.Files {
		if f.Path == "" {
			continue
		}
		if j, dup := first[f.Path]; dup {
			src, line, col := c.m.locate(fmt.Sprintf("files[%d].path", j))
			c.errorf(fmt.Sprintf("files[%d].path", i), "duplicate path %s: files[%d] at %s:%d:%d writes it too",
				quoteShort(f.Path), j, src, line, col)
			continue
		}
		first[f.Path] = i
	}
}

func (i *IMDS) check(c *checker, p string) {
	c.deadline(joinKey(p, "deadline"), &i.Deadline, DefaultDeadline)
	switch strings.ToLower(i.EndpointMode) {
	case "", "ipv4", "ipv6":
		i.EndpointMode = strings.ToLower(i.EndpointMode)
	default:
		c.errorf(joinKey(p, "endpoint_mode"), "want ipv4 or ipv6, got %s", quoteShort(i.EndpointMode))
	}
}

// regionRE matches AWS region names such as us-east-1 or us-gov-west-1.
var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]+$`)

func (a *AWS) check(c *checker, p string) {
	c.deadline(joinKey(p, "deadline"), &a.Deadline, DefaultDeadline)
	c.deadline(joinKey(p, "iam_propagation"), &a.IAMPropagation, DefaultIAMPropagation)
	if a.Region != "" && !regionRE.MatchString(a.Region) {
		c.errorf(joinKey(p, "region"), "%s is not an AWS region name like us-east-1", quoteShort(a.Region))
	}
}

func (s *S3) check(c *checker, p string) {
	if s.Endpoint == "" {
		return
	}
	u, err := url.Parse(s.Endpoint)
	switch {
	case err != nil:
		c.errorf(joinKey(p, "endpoint"), "not a valid URL; want http(s)://host[:port]")
	case u.Scheme != "http" && u.Scheme != "https":
		c.errorf(joinKey(p, "endpoint"), "want an http:// or https:// URL, got scheme %s", quoteShort(u.Scheme))
	case u.Host == "":
		c.errorf(joinKey(p, "endpoint"), "the URL has no host; want http(s)://host[:port]")
	}
}

func (f *File) check(c *checker, p string) {
	at := func(key string) string { return joinKey(p, key) }
	// An append keeps the existing file's owner, group and mode unless they
	// are given: appending a line to /etc/sudoers must not make it 0644.
	if f.Owner == "" && !f.Append {
		f.Owner = DefaultOwner
	}
	if f.Group == "" && !f.Append {
		f.Group = DefaultGroup
	}
	if !c.set[at("mode")] && !f.Append {
		f.Mode = DefaultMode
		if f.Secret {
			f.Mode = DefaultSecretMode
		}
	}

	if msg := checkFilePath(f.Path); msg != "" {
		c.errorf(at("path"), "%s", msg)
	}
	switch {
	case f.Content != nil && f.Source != "":
		c.errorf(p, "set content or source, not both")
	case f.Content == nil && f.Source == "":
		c.errorf(p, "set content (the text to write) or source (an s3://, https:// or file:// URL to copy)")
	}
	switch {
	case f.Encoding != "" && f.Encoding != "base64":
		c.errorf(at("encoding"), "want base64 or no encoding, got %s", quoteShort(f.Encoding))
	case f.Encoding != "" && f.Content == nil:
		c.errorf(at("encoding"), "encoding applies to content only; a source is copied as it is")
	case f.Encoding == "base64":
		if _, err := decodeBase64(*f.Content); err != nil {
			c.errorf(at("content"), "not valid base64, as encoding: base64 says")
		}
	}
	if msg := checkSHA256(f.SHA256); msg != "" {
		c.errorf(at("sha256"), "%s", msg)
	}
	f.SHA256 = strings.ToLower(f.SHA256)
	if f.Source != "" {
		if msg := checkSource(f.Source); msg != "" {
			c.errorf(at("source"), "%s", msg)
		}
	}
	if f.Mode > 0o7777 {
		c.errorf(at("mode"), "mode %s is above 07777", f.Mode)
	}
	if msg := checkAccount(f.Owner, "group"); msg != "" {
		c.errorf(at("owner"), "%s", msg)
	}
	if msg := checkAccount(f.Group, ""); msg != "" {
		c.errorf(at("group"), "%s", msg)
	}
}

// checkFilePath says what is wrong with a file's target path. Paths are not
// secret, so the message may quote them.
func checkFilePath(p string) string {
	switch {
	case p == "":
		return "required: the absolute path of the file on the target, e.g. /etc/app.conf"
	case strings.ContainsRune(p, 0):
		return "must not contain a NUL byte"
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("must be absolute (start with /), got %s", quoteShort(p))
	case p == "/":
		return "must name a file, not /"
	case strings.Contains("/"+p+"/", "/../"):
		return fmt.Sprintf("must not contain .., got %s", quoteShort(p))
	case path.Clean(p) != p:
		return fmt.Sprintf("must be clean: write %s, not %s", quoteShort(path.Clean(p)), quoteShort(p))
	}
	return ""
}

// checkAccount accepts a user or group name, or a numeric id. next names
// the field for the other half when someone writes "user:group".
func checkAccount(s, next string) string {
	if strings.Contains(s, ":") && next != "" {
		return fmt.Sprintf("want one user name or id, got %s; put the group in %s:", quoteShort(s), next)
	}
	if len(s) > 64 || strings.ContainsAny(s, ": \t\r\n/\x00") {
		return fmt.Sprintf("want a name or a numeric id, got %s", quoteShort(s))
	}
	return ""
}

// checkSHA256 says what is wrong with a sha256 digest; it quotes only the
// length.
func checkSHA256(s string) string {
	if s == "" {
		return ""
	}
	if len(s) != 64 || strings.Trim(strings.ToLower(s), "0123456789abcdef") != "" {
		return fmt.Sprintf("want 64 hex digits (as sha256sum prints), got %d characters", len(s))
	}
	return ""
}

// checkSource says what is wrong with a resource source. It never repeats
// the source: a URL may carry a token in its query.
func checkSource(s string) string {
	const want = "want s3://bucket/key, https://host/path or file:///absolute/path"
	if s == "" {
		return "empty; " + want
	}
	u, err := url.Parse(s)
	if err != nil {
		return "not a valid URL; " + want
	}
	switch u.Scheme {
	case "s3":
		switch {
		case u.Host == "":
			return "no bucket; want s3://bucket/key"
		case strings.TrimPrefix(u.Path, "/") == "":
			return "no key after the bucket; want s3://bucket/key"
		case u.User != nil:
			return "credentials do not go in an s3:// URL; the instance role is used"
		}
	case "https":
		if u.Host == "" {
			return "no host; want https://host/path"
		}
	case "file":
		switch {
		case u.Host != "" && u.Host != "localhost":
			return "file URLs need an absolute path after file:// (three slashes: file:///etc/x)"
		case !strings.HasPrefix(u.Path, "/"):
			return "file URLs need an absolute path: file:///etc/x"
		}
	case "http":
		return "plain http is not allowed; use https"
	case "":
		return "no scheme; " + want
	default:
		return fmt.Sprintf("unsupported scheme %s; %s", quoteShort(u.Scheme), want)
	}
	return ""
}
