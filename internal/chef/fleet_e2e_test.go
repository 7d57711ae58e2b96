//go:build e2e

package chef

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// flaky answers the first client creation of each node with a 503, and
// records when each node's retry came.
type flaky struct {
	mu      sync.Mutex
	first   map[string]time.Time
	retried map[string]time.Duration
}

func (f *flaky) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/clients") {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		name := strings.SplitN(strings.SplitN(string(body), `"name":"`, 2)[1], `"`, 2)[0]
		f.mu.Lock()
		t0, seen := f.first[name]
		if !seen {
			f.first[name] = time.Now()
			f.mu.Unlock()
			return &http.Response{StatusCode: 503, Status: "503 Service Unavailable", Body: io.NopCloser(strings.NewReader(`{"error":["starting"]}`)),
				Header: http.Header{}, Request: r}, nil
		}
		if _, ok := f.retried[name]; !ok {
			f.retried[name] = time.Since(t0)
		}
		f.mu.Unlock()
	}
	return http.DefaultTransport.RoundTrip(r)
}

// TestE2EFleet: 50 instances register at once against one goiardi, each
// getting a 503 first: all succeed, and their retries are spread (jitter),
// not in lock-step.
func TestE2EFleet(t *testing.T) {
	needGoiardi(t)
	const n = 50
	validatorPEM, err := os.ReadFile(filepath.Join(goiardi.Dir, "chef-validator.pem"))
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{first: map[string]time.Time{}, retried: map[string]time.Duration{}}
	bin, _ := standIn(t)
	c := Capability{Transport: f, ChefClient: bin, PackageManager: installed()}
	cfgText := "chef:\n  server_url: " + goiardi.URL + "\n  validation_key_source: s3://chef/validator.pem\n" +
		"  run_list: ['role[web]']\n  chef_license: accept\n  interval: 0\n"
	fetcher := &mapFetcher{objects: map[string][]byte{"s3://chef/validator.pem": validatorPEM}}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	prefix := fmt.Sprintf("i-fleet%x-", time.Now().UnixNano()&0xffffff)
	insts := make([]*instance, n)
	for i := range insts {
		insts[i] = newInstanceRoot(t, fmt.Sprintf("%s%02d", prefix, i))
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	var mu sync.Mutex
	start := time.Now()
	for i := range insts {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			// mapFetcher is not safe for concurrent use: one per instance.
			mu.Lock()
			fi := &mapFetcher{objects: fetcher.objects}
			mu.Unlock()
			_, errs[i] = insts[i].run(t, ctx, cfgText, fi, c)
		}(i)
	}
	wg.Wait()
	wall := time.Since(start)
	failed := 0
	for i, err := range errs {
		if err != nil {
			failed++
			t.Errorf("instance %d: %v", i, err)
		}
	}
	var delays []time.Duration
	for _, d := range f.retried {
		delays = append(delays, d)
	}
	sort.Slice(delays, func(i, j int) bool { return delays[i] < delays[j] })
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	t.Logf("%d instances registered at once in %s, %d failures; retry delays after the 503 from %s to %s; peak RSS of the test process %d MiB",
		n, wall.Round(time.Millisecond), failed, delays[0].Round(time.Millisecond), delays[len(delays)-1].Round(time.Millisecond), ru.Maxrss/1024)
	if len(delays) != n {
		t.Fatalf("%d retries recorded, want %d", len(delays), n)
	}
	if spread := delays[len(delays)-1] - delays[0]; spread < 50*time.Millisecond {
		t.Errorf("retries in lock-step: all within %s", spread)
	}
}
