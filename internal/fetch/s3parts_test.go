package fetch

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opsboot/bootstrap/internal/testbed"
)

// rangedS3 serves one object as S3 does: Range (206 + Content-Range),
// ETag, If-Match (412), 416 for a range of an empty object. It records
// the requests and the most served at once.
type rangedS3 struct {
	mu        sync.Mutex
	obj       []byte
	etag      string
	ignore    bool                                       // answer every GET with the whole object
	dropParts bool                                       // ... every GET but of the first range
	inject    func(n int, r *http.Request) (int, string) // status, S3 code; 0: serve
	after     func(n int, s *rangedS3)                   // after request n was answered
	n         atomic.Int64
	inflight  atomic.Int64
	maxFlight atomic.Int64
	noIfMatch atomic.Int64 // ranged GETs past the first without If-Match
}

func (s *rangedS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := int(s.n.Add(1) - 1)
	cur := s.inflight.Add(1)
	defer s.inflight.Add(-1)
	for m := s.maxFlight.Load(); cur > m && !s.maxFlight.CompareAndSwap(m, cur); m = s.maxFlight.Load() {
	}
	time.Sleep(2 * time.Millisecond) // let the parts overlap
	s.mu.Lock()
	obj, etag := s.obj, s.etag
	s.mu.Unlock()
	defer func() {
		if s.after != nil {
			s.after(n, s)
		}
	}()
	if s.inject != nil {
		if status, code := s.inject(n, r); status != 0 {
			s3Error(w, status, code, "injected")
			return
		}
	}
	rng := r.Header.Get("Range")
	if rng != "" && !strings.HasPrefix(rng, "bytes=0-") && r.Header.Get("If-Match") == "" {
		s.noIfMatch.Add(1)
	}
	if im := r.Header.Get("If-Match"); im != "" && im != etag {
		s3Error(w, http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
		return
	}
	w.Header().Set("ETag", etag)
	if rng == "" || s.ignore || s.dropParts && !strings.HasPrefix(rng, "bytes=0-") {
		serve(w, obj)
		return
	}
	var from, to int64
	if _, err := fmt.Sscanf(rng, "bytes=%d-%d", &from, &to); err != nil {
		s3Error(w, 400, "InvalidArgument", "bad range")
		return
	}
	if from >= int64(len(obj)) {
		s3Error(w, http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
		return
	}
	to = min(to, int64(len(obj))-1)
	w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", from, to, len(obj)))
	w.Header().Set("Content-Length", strconv.FormatInt(to-from+1, 10))
	w.WriteHeader(http.StatusPartialContent)
	w.Write(obj[from : to+1])
}

func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// TestS3Parts: a large object comes as the first range plus parallel
// ranged GETs pinned to its ETag, in order, within the memory bound; small
// ones, empty ones and servers that ignore Range cost one stream.
func TestS3Parts(t *testing.T) {
	// Every stream counts as slow: parts.
	tune := partTuning{threshold: 64 << 10, size: 16 << 10, streams: 3, probe: 16 << 10, fast: math.Inf(1)}
	big := randomBytes(int(tune.threshold+10*tune.size+123), 1)
	bigParts := int64(1 + 11) // the first range, then 11 parts (the last short)
	tests := []struct {
		name      string
		obj       []byte
		ignore    bool
		inject    func(n int, r *http.Request) (int, string)
		after     func(n int, s *rangedS3)
		wantObj   []byte // default obj
		wantCalls int64
		moreCalls int64 // more requests than this (a retried download)
		fast      bool  // the first range counts as fast
	}{
		{name: "large object in parts", obj: big, wantCalls: bigParts},
		{name: "large object, fast stream: the rest in one more", obj: big, fast: true, wantCalls: 2},
		{
			name: "fast stream, object replaced: the download starts over", obj: big, fast: true,
			after: func(n int, s *rangedS3) {
				if n == 0 {
					s.mu.Lock()
					s.obj, s.etag = bytes.Repeat([]byte("new"), len(big)/3), `"v2"`
					s.mu.Unlock()
				}
			},
			wantObj:   bytes.Repeat([]byte("new"), len(big)/3),
			wantCalls: 4,
		},
		{name: "exactly the threshold: one request", obj: big[:tune.threshold], wantCalls: 1},
		{name: "small object: one request", obj: big[:1000], wantCalls: 1},
		{name: "empty object", obj: []byte{}, wantCalls: 2},
		{name: "server ignores Range", obj: big, ignore: true, wantCalls: 1},
		{
			name: "a part failing once is retried alone", obj: big, wantCalls: bigParts + 1,
			inject: func(n int, r *http.Request) (int, string) {
				if n == 3 {
					return 503, "SlowDown"
				}
				return 0, ""
			},
		},
		{
			name: "object replaced mid-download: the download starts over", obj: big,
			after: func(n int, s *rangedS3) {
				if n == 0 {
					s.mu.Lock()
					s.obj, s.etag = bytes.Repeat([]byte("new"), len(big)/3), `"v2"`
					s.mu.Unlock()
				}
			},
			wantObj:   bytes.Repeat([]byte("new"), len(big)/3),
			moreCalls: bigParts,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateAWSEnv(t)
			in := newInstance(t, testbed.IMDSConfig{Role: "web"}, 3*time.Second)
			srv := &rangedS3{obj: tt.obj, etag: `"v1"`, ignore: tt.ignore, inject: tt.inject, after: tt.after}
			hs := httptest.NewServer(srv)
			defer hs.Close()
			f := newTest(Options{Region: "eu-west-1", S3Endpoint: hs.URL, S3PathStyle: true,
				IMDS: in.ds.CredentialsClient(), Role: in.ds.Role}, nil)
			f.parts = tune
			if tt.fast {
				f.parts.fast = 0
			}
			want := tt.obj
			if tt.wantObj != nil {
				want = tt.wantObj
			}
			blob, err := f.File(context.Background(), "s3://config/big.bin", digest(want), t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(blob.Path)
			if err != nil || !bytes.Equal(got, want) || blob.Size != int64(len(want)) {
				t.Fatalf("content differs: %d bytes, want %d (%v)", len(got), len(want), err)
			}
			if tt.wantCalls > 0 && srv.n.Load() != tt.wantCalls {
				t.Errorf("%d requests, want %d", srv.n.Load(), tt.wantCalls)
			}
			if srv.n.Load() <= tt.moreCalls {
				t.Errorf("%d requests, want more than %d", srv.n.Load(), tt.moreCalls)
			}
			if m := srv.maxFlight.Load(); m > int64(tune.streams)+1 {
				t.Errorf("%d requests at once, want at most %d parts and the first range", m, tune.streams)
			}
			if srv.noIfMatch.Load() != 0 && !tt.ignore {
				t.Errorf("%d part requests without If-Match", srv.noIfMatch.Load())
			}
		})
	}
}

// TestS3PartsWrongRange: a part answered with other bytes than asked for
// (a proxy that drops Range) fails the download instead of corrupting it.
func TestS3PartsWrongRange(t *testing.T) {
	for _, fast := range []float64{math.Inf(1), 0} {
		isolateAWSEnv(t)
		in := newInstance(t, testbed.IMDSConfig{Role: "web"}, 3*time.Second)
		tune := partTuning{threshold: 64 << 10, size: 16 << 10, streams: 3, probe: 16 << 10, fast: fast}
		srv := &rangedS3{obj: randomBytes(int(tune.threshold+5*tune.size), 5), etag: `"v1"`, dropParts: true}
		hs := httptest.NewServer(srv)
		f := newTest(Options{Region: "eu-west-1", S3Endpoint: hs.URL, S3PathStyle: true,
			IMDS: in.ds.CredentialsClient(), Role: in.ds.Role, Deadline: 300 * time.Millisecond}, nil)
		f.parts = tune
		_, err := f.File(context.Background(), "s3://config/big.bin", "", t.TempDir())
		hs.Close()
		if err == nil || !strings.Contains(err.Error(), "bytes 65536-") || !strings.Contains(err.Error(), "Content-Range is none") {
			t.Fatalf("fast=%v: err = %v, want the part's wrong answer named", fast, err)
		}
	}
}

// TestS3PartsCancel: a download stopped mid-way stops its part fetches
// (no goroutine left writing into a buffer) and reports the cancellation.
func TestS3PartsCancel(t *testing.T) {
	isolateAWSEnv(t)
	in := newInstance(t, testbed.IMDSConfig{Role: "web"}, 3*time.Second)
	tune := partTuning{threshold: 64 << 10, size: 16 << 10, streams: 3, probe: 16 << 10, fast: math.Inf(1)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := &rangedS3{obj: randomBytes(int(tune.threshold+50*tune.size), 2), etag: `"v1"`,
		inject: func(n int, r *http.Request) (int, string) {
			if n == 4 {
				cancel()
			}
			return 0, ""
		}}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	f := newTest(Options{Region: "eu-west-1", S3Endpoint: hs.URL, S3PathStyle: true,
		IMDS: in.ds.CredentialsClient(), Role: in.ds.Role}, nil)
	f.parts = tune
	dir := t.TempDir()
	_, err := f.File(ctx, "s3://config/big.bin", "", dir)
	if err == nil || !strings.Contains(err.Error(), "canceled") {
		t.Fatalf("err = %v, want canceled", err)
	}
	time.Sleep(50 * time.Millisecond)
	if n := srv.n.Load(); n > 4+int64(tune.streams)+1 {
		t.Errorf("%d requests: parts kept being fetched after the cancel", n)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("temp file left behind: %v", entries)
	}
}

// cappedStreams serves like h, each response at most rate bytes/s: S3 as
// seen from an instance, where one stream tops out near 100 MB/s.
type cappedStreams struct {
	h    http.Handler
	rate float64
}

type cappedWriter struct {
	http.ResponseWriter
	rate  float64
	began time.Time
	n     int
}

func (c *cappedWriter) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		k := min(len(p), 64<<10)
		n, err := c.ResponseWriter.Write(p[:k])
		written += n
		c.n += n
		if err != nil {
			return written, err
		}
		p = p[k:]
		if ahead := time.Duration(float64(c.n)/c.rate*float64(time.Second)) - time.Since(c.began); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return written, nil
}

func (c cappedStreams) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.h.ServeHTTP(&cappedWriter{ResponseWriter: w, rate: c.rate, began: time.Now()}, r)
}

// BenchmarkS3PartsCappedStreams: with every stream capped (50 MB/s here,
// scaled down from S3's ~100 MB/s with a smaller object), the rest of an
// object as 3 parallel parts against one more stream.
func BenchmarkS3PartsCappedStreams(b *testing.B) {
	isolateAWSEnv(b)
	in := newInstance(b, testbed.IMDSConfig{Role: "web"}, 3*time.Second)
	obj := randomBytes(64<<20, 4)
	hs := httptest.NewServer(cappedStreams{h: &rangedS3{obj: obj, etag: `"v1"`}, rate: 50e6})
	defer hs.Close()
	for _, mode := range []struct {
		name string
		fast float64
	}{{"parts", math.Inf(1)}, {"one-stream", 0}} {
		b.Run(mode.name, func(b *testing.B) {
			f := New(Options{Region: "eu-west-1", S3Endpoint: hs.URL, S3PathStyle: true,
				IMDS: in.ds.CredentialsClient(), Role: in.ds.Role})
			f.parts = partTuning{threshold: 8 << 20, size: 4 << 20, streams: 3, probe: 2 << 20, fast: mode.fast}
			dir := b.TempDir()
			b.SetBytes(int64(len(obj)))
			for b.Loop() {
				blob, err := f.File(context.Background(), "s3://config/big.bin", "", dir)
				if err != nil {
					b.Fatal(err)
				}
				os.Remove(blob.Path)
			}
		})
	}
}
