package fetch

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// readyAfter answers 503 to each path until d after that path was first
// asked for, then the payload: a source that is not ready for a while.
// d < 0: never ready.
func readyAfter(d time.Duration) http.Handler {
	var mu sync.Mutex
	first := map[string]time.Time{}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		t, ok := first[r.URL.Path]
		if !ok {
			t = time.Now()
			first[r.URL.Path] = t
		}
		mu.Unlock()
		if d < 0 || time.Since(t) < d {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		serve(w, payload)
	})
}

// TestDeadlineIsRunWide: the deadline is one budget for all fetches of a
// run, not one per fetch; a fetch that starts with the budget spent gets
// one attempt.
func TestDeadlineIsRunWide(t *testing.T) {
	tests := []struct {
		name     string
		ready    time.Duration // each source's not-ready time; < 0 never
		deadline time.Duration
		sources  int
		wantOK   int           // fetches that succeed, in order
		maxTook  time.Duration // for all of them
	}{
		// Per-fetch deadlines waited 3 × 600ms.
		{name: "stuck sources share one deadline", ready: -1, deadline: 600 * time.Millisecond, sources: 3,
			wantOK: 0, maxTook: 1300 * time.Millisecond},
		// Per-fetch deadlines let all three succeed after 3 × 800ms.
		{name: "slow sources use up the deadline", ready: 800 * time.Millisecond, deadline: 2 * time.Second, sources: 3,
			wantOK: 2, maxTook: 2500 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTLSServer(readyAfter(tt.ready))
			defer srv.Close()
			f := newTest(Options{HTTPClient: srv.Client(), Deadline: tt.deadline}, nil)
			start := time.Now()
			ok := 0
			for i := range tt.sources {
				src := srv.URL + "/layer" + string(rune('a'+i))
				fetchStart := time.Now()
				_, err := f.Bytes(context.Background(), src, "", 0)
				if err == nil {
					if ok != i {
						t.Errorf("source %d succeeded after an earlier one failed", i)
					}
					ok++
					continue
				}
				var fe *Error
				if !errors.As(err, &fe) || fe.Code != "HTTP503" || fe.Final || fe.Deadline != tt.deadline {
					t.Fatalf("source %d: err = %v (%+v), want HTTP503 after the deadline", i, err, fe)
				}
				if i > ok && fe.Attempts != 1 {
					t.Errorf("source %d after the deadline: %d attempts, want 1", i, fe.Attempts)
				}
				if i > ok && time.Since(fetchStart) > 300*time.Millisecond {
					t.Errorf("source %d after the deadline took %v", i, time.Since(fetchStart))
				}
			}
			took := time.Since(start)
			if ok != tt.wantOK {
				t.Errorf("%d sources fetched, want %d", ok, tt.wantOK)
			}
			if took > tt.maxTook {
				t.Errorf("took %v, want at most %v: the deadline is per fetch", took, tt.maxTook)
			}
		})
	}
}

// TestTransferIsNotWaiting: time spent receiving a body does not use up
// the budget, so a big file does not starve the sources after it.
func TestTransferIsNotWaiting(t *testing.T) {
	const chunks = 8
	after := readyAfter(100 * time.Millisecond)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/big") {
			after.ServeHTTP(w, r)
			return
		}
		// 8 × 100ms: longer than the deadline, never stalled.
		for i := range chunks {
			w.Write(payload[i*len(payload)/chunks : (i+1)*len(payload)/chunks])
			w.(http.Flusher).Flush()
			time.Sleep(100 * time.Millisecond)
		}
	})
	srv := newTLSServer(slow)
	defer srv.Close()
	f := newTest(Options{HTTPClient: srv.Client(), Deadline: 500 * time.Millisecond}, nil)
	if _, err := f.Bytes(context.Background(), srv.URL+"/big", digest(payload), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Bytes(context.Background(), srv.URL+"/after", "", 0); err != nil {
		t.Fatalf("a source after a long transfer: %v", err)
	}
}
