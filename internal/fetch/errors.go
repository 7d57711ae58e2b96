package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/opsboot/bootstrap/internal/retry"
)

// Codes of our own in Error.Code, beside S3's (AccessDenied, NoSuchKey, …)
// and "HTTP<status>" for https:// sources.
const (
	CodeSHA256Mismatch = "SHA256Mismatch"
	CodeTooLarge       = "TooLarge"
	CodeNoCredentials  = "NoCredentials"
	CodeConnection     = "ConnectionError"
	CodeTransfer       = "TransferError"
	CodeLocal          = "LocalError"
	CodeConfig         = "Config"
	CodeTLS            = "TLS"
)

// Error is a failed fetch. Its message names the source, bucket, key and
// role and says what to check; it never holds credentials or content.
type Error struct {
	Source, Bucket, Key, Role, Code string
	// Attempts made, and the time they took.
	Attempts int
	Elapsed  time.Duration
	// Deadline is set when the deadline ran out while the error was still
	// worth waiting for (AccessDenied, 503, no credentials yet …).
	Deadline time.Duration
	// Final is true when the error was known at once to be permanent
	// (NoSuchKey, a sha256 mismatch, a 404 …): waiting could not help.
	Final bool
	// Propagation is set when S3 still said AccessDenied this long after
	// the credentials appeared: longer than IAM takes to propagate.
	Propagation time.Duration
	// Err is the underlying error, for errors.As (smithy.APIError, …).
	Err error

	detail string // what went wrong, short and scrubbed
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	b.WriteString(": ")
	b.WriteString(e.detail)
	if e.Role != "" && roleMatters(e.Code) {
		fmt.Fprintf(&b, " for role %q", e.Role)
	}
	switch {
	case e.Propagation > 0:
		fmt.Fprintf(&b, " after %s, still denied %s after the credentials appeared (longer than IAM propagation)", attempts(e.Attempts), e.Propagation)
	case e.Deadline > 0:
		fmt.Fprintf(&b, " after %s in %s", attempts(e.Attempts), e.Deadline)
	case e.Attempts > 1:
		fmt.Fprintf(&b, " after %s", attempts(e.Attempts))
	}
	if h := e.hint(); h != "" {
		b.WriteString("; ")
		b.WriteString(h)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

func attempts(n int) string { return retry.Attempts(n) }

func roleMatters(code string) bool {
	return code == "AccessDenied" || code == CodeNoCredentials || credentialCodes[code]
}

// hint says what to check.
func (e *Error) hint() string {
	who := "the role's"
	if e.Role == "" {
		who = "the credentials'"
	}
	switch e.Code {
	case "AccessDenied":
		return fmt.Sprintf("check %s policy allows s3:GetObject on arn:aws:s3:::%s/%s (and the bucket policy and KMS key, if any)", who, e.Bucket, e.Key)
	case "NoSuchKey":
		return "check the key, and that the object was uploaded"
	case "NoSuchBucket", "InvalidBucketName":
		return "check the bucket name and the S3 endpoint"
	case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
		return "the bucket is in another region: set the region the bucket is in"
	case "RequestTimeTooSkewed":
		return "the machine's clock is off: check NTP"
	case CodeSHA256Mismatch:
		return "the object changed, or the sha256 in the config is wrong"
	case CodeTooLarge:
		return "fetch it as a file, or raise the limit"
	case CodeNoCredentials:
		if e.Attempts == 0 {
			return "" // the role lookup's message says what to do
		}
		return "check that an instance profile is attached and IMDS is reachable"
	case CodeConnection:
		return "check the network, DNS and the endpoint"
	case CodeTLS:
		return "check the URL and that the server's certificate is trusted here"
	}
	if credentialCodes[e.Code] {
		return "the instance's credentials were refused: check the instance profile and the clock"
	}
	return ""
}

// credentialCodes are S3's answers to credentials that expired or were
// replaced: the cache is dropped and the next attempt gets new ones.
var credentialCodes = map[string]bool{
	"ExpiredToken": true, "InvalidAccessKeyId": true, "InvalidToken": true,
	"InvalidTokenId": true, "TokenRefreshRequired": true, "SignatureDoesNotMatch": true,
}

// waitCodes are S3 answers worth waiting for at boot.
var waitCodes = map[string]bool{
	"AccessDenied": true, // IAM propagation after the role was attached
	"SlowDown":     true, "ServiceUnavailable": true, "InternalError": true,
	"RequestTimeout": true, "RequestTimeTooSkewed": true, "OperationAborted": true,
	"Throttling": true, "ThrottlingException": true, "RequestLimitExceeded": true,
}

// attemptError is one failed attempt, described without secrets.
type attemptError struct {
	code      string
	status    int
	msg       string // the server's message (S3's <Message>)
	err       error
	limit     int64
	want, got string
	secret    bool // the content is secret: show no digest
	// propagation: AccessDenied outlasted this IAM propagation window.
	propagation time.Duration
}

func (a *attemptError) Error() string { return a.summary() }
func (a *attemptError) Unwrap() error { return a.err }

func (a *attemptError) summary() string {
	switch a.code {
	case "AccessDenied":
		return "access denied (AccessDenied)"
	case "NoSuchKey":
		return "no such key (NoSuchKey)"
	case "NoSuchBucket":
		return "no such bucket (NoSuchBucket)"
	case CodeSHA256Mismatch:
		if a.secret {
			return "sha256 mismatch: the content's digest differs from the sha256 in the config (digests of secret content are not shown)"
		}
		return fmt.Sprintf("sha256 mismatch: expected %s, got %s", a.want, a.got)
	case CodeTooLarge:
		return fmt.Sprintf("larger than the limit of %d bytes", a.limit)
	case CodeNoCredentials:
		return "no AWS credentials yet: " + describeErr(a.err)
	case CodeConnection:
		return "no answer: " + describeErr(a.err)
	case CodeTransfer:
		return "transfer failed: " + describeErr(a.err)
	case CodeLocal:
		return describeErr(a.err)
	case CodeTLS:
		return "TLS verification failed: " + describeErr(a.err)
	}
	if a.status != 0 && strings.HasPrefix(a.code, "HTTP") {
		return fmt.Sprintf("HTTP %d %s", a.status, http.StatusText(a.status))
	}
	if a.code != "" && (a.status != 0 || a.msg != "") {
		s := a.code
		if a.status != 0 {
			s += fmt.Sprintf(" (HTTP %d)", a.status)
		}
		if a.msg != "" {
			s += ": " + a.msg
		}
		return s
	}
	return describeErr(a.err)
}

// describeErr shortens transport errors to the cause, without the URL.
func describeErr(err error) string {
	if err == nil {
		return "unknown error"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var se *smithyhttp.RequestSendError
	if errors.As(err, &se) && se.Err != nil {
		err = se.Err
		if errors.As(err, &ue) {
			err = ue.Err
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "connection closed early (" + err.Error() + ")"
	}
	return err.Error()
}

// classifyS3 turns a GetObject error into an attemptError, marked
// Permanent unless waiting can help. Credential errors drop the cache.
func (f *Fetcher) classifyS3(err error) error {
	ae := &attemptError{err: err}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		ae.status = re.HTTPStatusCode()
	}
	var api smithy.APIError
	if errors.As(err, &api) {
		ae.code, ae.msg = api.ErrorCode(), api.ErrorMessage()
	}
	if ae.status == http.StatusForbidden && ae.code == "" {
		ae.code = "AccessDenied"
	}
	switch {
	case credentialCodes[ae.code]:
		f.invalidate()
		return ae
	case ae.code == "AccessDenied" && !f.propagating():
		ae.propagation = f.o.IAMPropagation
		return retry.Permanent(ae)
	case waitCodes[ae.code]:
		return ae
	case ae.status == 0:
		// No answer: connection refused, reset, DNS, timeout.
		ae.code = CodeConnection
		return ae
	case ae.status == http.StatusTooManyRequests || ae.status >= 500:
		return ae
	case ae.status == http.StatusNotFound && ae.code == "":
		ae.code = "NoSuchKey"
	case ae.code == "":
		ae.code = fmt.Sprintf("HTTP%d", ae.status)
	}
	return retry.Permanent(ae)
}
