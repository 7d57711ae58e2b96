package secret

import (
	"net/url"
	"strings"
)

// shownParams are the query parameters whose values a source may show: they
// say how a presigned URL was made, not what opens it. Every other value
// (X-Amz-Signature, X-Amz-Credential, X-Amz-Security-Token, a SAS sig, an
// access_token …) is replaced, so a source can be shown in plans, logs,
// errors and the journal.
var shownParams = map[string]bool{
	"x-amz-algorithm": true, "x-amz-date": true, "x-amz-expires": true,
	"x-amz-signedheaders": true, "versionid": true, "expires": true,
}

// Source is what may be shown of a source (s3://, https://, file:// or a
// path): URL query values other than shownParams, user info and fragment are
// replaced by REDACTED. s3:// sources are shown as they are: their keys may
// hold '?' and '#' literally, and they carry no credentials.
func Source(src string) string {
	if strings.HasPrefix(src, "s3://") || !strings.Contains(src, "://") {
		return src
	}
	u, err := url.Parse(src)
	if err != nil {
		scheme, _, _ := strings.Cut(src, "://")
		return scheme + "://(unparsable URL)"
	}
	if u.User == nil && u.RawQuery == "" && u.Fragment == "" && u.RawFragment == "" {
		return src // nothing to hide: shown as written
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.Fragment != "" || u.RawFragment != "" {
		u.Fragment, u.RawFragment = "REDACTED", ""
	}
	if u.RawQuery != "" {
		params := strings.Split(u.RawQuery, "&")
		for i, p := range params {
			k, _, hasValue := strings.Cut(p, "=")
			if name, err := url.QueryUnescape(k); hasValue && (err != nil || !shownParams[strings.ToLower(name)]) {
				params[i] = k + "=REDACTED"
			}
		}
		u.RawQuery = strings.Join(params, "&")
	}
	return u.String()
}

// minSourceSecret is the shortest query value AddSource registers: signatures,
// credentials and tokens are long, and a short value ("json", "1") would mask
// ordinary words everywhere.
const minSourceSecret = 16

// AddSource registers what a source hides from Source (query values, the
// password) so that a message that quotes the raw source anyway — an SDK's
// or a server's — is masked too.
func (r *Redactor) AddSource(srcs ...string) {
	if r == nil {
		return
	}
	var values []string
	for _, src := range srcs {
		if strings.HasPrefix(src, "s3://") || !strings.Contains(src, "://") {
			continue
		}
		u, err := url.Parse(src)
		if err != nil {
			continue
		}
		if pw, ok := u.User.Password(); ok {
			values = append(values, pw)
		}
		for name, vs := range u.Query() {
			if shownParams[strings.ToLower(name)] {
				continue
			}
			for _, v := range vs {
				if len(v) >= minSourceSecret {
					values = append(values, v)
				}
			}
		}
	}
	if len(values) > 0 {
		r.Add(values...)
	}
}
