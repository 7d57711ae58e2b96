package testbed

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ObjectStore is a tiny read-only S3 stand-in (path-style GET and HEAD) for
// the offline demo only. It checks NO signature, session token or policy:
// any credentials are accepted. Tests of the credential path must use a
// real MinIO (package internal/testbed/minio) instead.
type ObjectStore struct {
	mu      sync.RWMutex
	buckets map[string]map[string]object
	reqID   atomic.Uint64
}

type object struct {
	body    []byte
	etag    string
	modTime time.Time
}

// NewObjectStore returns an empty store.
func NewObjectStore() *ObjectStore {
	return &ObjectStore{buckets: make(map[string]map[string]object)}
}

// Put stores a copy of body at bucket/key, creating the bucket if needed.
func (s *ObjectStore) Put(bucket, key string, body []byte) {
	sum := md5.Sum(body)
	o := object{
		body:    append([]byte{}, body...),
		etag:    `"` + hex.EncodeToString(sum[:]) + `"`,
		modTime: time.Now().UTC().Truncate(time.Second),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.buckets[bucket]
	if b == nil {
		b = make(map[string]object)
		s.buckets[bucket] = b
	}
	b[key] = o
}

// Handler serves GET and HEAD /bucket/key (and HEAD /bucket) with S3-style
// XML errors: NoSuchBucket and NoSuchKey (404), MethodNotAllowed (405),
// NotImplemented (501) for bucket listings.
func (s *ObjectStore) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

func (s *ObjectStore) serveHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := strconv.FormatUint(s.reqID.Add(1), 16)
	w.Header().Set("x-amz-request-id", reqID)
	w.Header().Set("Server", "bootstrap-testbed")
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		kind := "OBJECT"
		if key == "" {
			kind = "BUCKET"
		}
		w.Header().Set("Allow", "GET, HEAD")
		s3Error(w, r, reqID, http.StatusMethodNotAllowed, "MethodNotAllowed",
			"The specified method is not allowed against this resource.", bucket, key,
			xmlField{"Method", r.Method}, xmlField{"ResourceType", kind})
		return
	}
	if bucket == "" {
		s3Error(w, r, reqID, http.StatusNotImplemented, "NotImplemented",
			"A header you provided implies functionality that is not implemented.", "", "")
		return
	}
	s.mu.RLock()
	objs, bucketOK := s.buckets[bucket]
	o, keyOK := objs[key]
	s.mu.RUnlock()
	switch {
	case !bucketOK:
		s3Error(w, r, reqID, http.StatusNotFound, "NoSuchBucket",
			"The specified bucket does not exist", bucket, key)
	case key == "" && r.Method == http.MethodHead: // HeadBucket
		w.WriteHeader(http.StatusOK)
	case key == "":
		s3Error(w, r, reqID, http.StatusNotImplemented, "NotImplemented",
			"A header you provided implies functionality that is not implemented.", bucket, "")
	case !keyOK:
		s3Error(w, r, reqID, http.StatusNotFound, "NoSuchKey",
			"The specified key does not exist.", bucket, key)
	default:
		// ServeContent gives Content-Length, Last-Modified, ranges and
		// conditional requests (If-None-Match against the ETag).
		w.Header().Set("ETag", o.etag)
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Accept-Ranges", "bytes")
		http.ServeContent(w, r, "", o.modTime, bytes.NewReader(o.body))
	}
}

type xmlField struct{ name, value string }

// s3Error writes the S3 XML error document; HEAD answers carry no body,
// as with S3 (clients then only see the status).
func s3Error(w http.ResponseWriter, r *http.Request, reqID string, status int, code, msg, bucket, key string, extra ...xmlField) {
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<Error>")
	field := func(name, value string) {
		b.WriteString("<" + name + ">")
		_ = xml.EscapeText(&b, []byte(value))
		b.WriteString("</" + name + ">")
	}
	field("Code", code)
	field("Message", msg)
	if bucket != "" {
		field("BucketName", bucket)
	}
	if key != "" {
		field("Key", key)
	}
	for _, f := range extra {
		field(f.name, f.value)
	}
	field("Resource", r.URL.Path)
	field("RequestId", reqID)
	b.WriteString("</Error>")
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("Content-Length", strconv.Itoa(b.Len()))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(b.Bytes())
	}
}
