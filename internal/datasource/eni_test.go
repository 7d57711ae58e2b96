package datasource

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/testbed"
)

// TestFetchENIsEmulator: the facts published for two secondary ENIs and
// what they cost in requests (1 list + 1 device-number each + 2 per
// secondary), on top of Fetch's.
func TestFetchENIsEmulator(t *testing.T) {
	_, u := startIMDS(t, testbed.IMDSConfig{MAC: "0e:00:00:00:00:01", ENIs: []testbed.ENI{
		{MAC: "0E:00:00:00:00:02", DeviceNumber: "1", LocalIPv4s: []string{"10.1.0.10", "10.1.0.11"}, Subnet: "10.1.0.0/24"},
		{MAC: "0e:00:00:00:00:03", DeviceNumber: "2", LocalIPv4s: []string{"10.2.0.10"}, Subnet: "10.2.0.0/24"},
	}})
	e := newTestEC2(EC2Options{Endpoint: u}, nil)
	md, err := e.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if f := md.Facts(); f["eni_macs"] != "" || len(f) != 9 {
		t.Fatalf("before FetchENIs the facts have ENIs: %v", f)
	}
	spine := e.Requests()
	if err := e.FetchENIs(context.Background(), md); err != nil {
		t.Fatal(err)
	}
	if got, want := e.Requests()-spine, int64(1+3+2*2); got != want {
		t.Errorf("FetchENIs made %d requests, want %d", got, want)
	}
	f := md.Facts()
	want := map[string]string{
		"eni_macs":                                "0e0000000001 0e0000000002 0e0000000003",
		"eni_0e0000000001_device_number":          "0",
		"eni_0e0000000002_device_number":          "1",
		"eni_0e0000000002_local_ipv4s":            "10.1.0.10 10.1.0.11",
		"eni_0e0000000002_subnet_ipv4_cidr_block": "10.1.0.0/24",
		"eni_0e0000000003_device_number":          "2",
		"eni_0e0000000003_local_ipv4s":            "10.2.0.10",
		"eni_0e0000000003_subnet_ipv4_cidr_block": "10.2.0.0/24",
	}
	got := map[string]string{}
	for k, v := range f {
		if strings.HasPrefix(k, "eni_") {
			got[k] = v
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ENI facts:\n got %v\nwant %v", got, want)
	}
}

// TestFetchENIsShapes: an answer without its shape drops that ENI (with a
// warning naming it and the field); the others are kept.
func TestFetchENIsShapes(t *testing.T) {
	good := map[string]string{"device-number": "1", "local-ipv4s": "10.1.0.10", "subnet-ipv4-cidr-block": "10.1.0.0/24"}
	tests := []struct {
		name     string
		list     string
		override map[string]string // path under the second MAC → body
		wantMACs string
		warn     string
	}{
		{"all good", "0e:00:00:00:00:01/\n0e:00:00:00:00:02/", nil, "0e0000000001 0e0000000002", ""},
		{"not a MAC in the list", "0e:00:00:00:00:01/\nnetwork/\n0e:00:00:00:00:02/", nil, "0e0000000001 0e0000000002", `eni=network field=mac`},
		{"device-number not a number", "0e:00:00:00:00:01/\n0e:00:00:00:00:02/", map[string]string{"device-number": "<html>"}, "0e0000000001", "field=device-number"},
		{"device-number out of range", "0e:00:00:00:00:01/\n0e:00:00:00:00:02/", map[string]string{"device-number": "300"}, "0e0000000001", "field=device-number"},
		{"bad address", "0e:00:00:00:00:01/\n0e:00:00:00:00:02/", map[string]string{"local-ipv4s": "10.1.0.10\nnetwork/"}, "0e0000000001", "field=local-ipv4s"},
		{"IPv6 subnet", "0e:00:00:00:00:01/\n0e:00:00:00:00:02/", map[string]string{"subnet-ipv4-cidr-block": "2001:db8::/64"}, "0e0000000001", "field=subnet-ipv4-cidr-block"},
		{"detached meanwhile (404)", "0e:00:00:00:00:01/\n0e:00:00:00:00:02/", map[string]string{"device-number": "404"}, "0e0000000001", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == tokenPath {
					w.Header().Set("X-Aws-Ec2-Metadata-Token-Ttl-Seconds", "300")
					fmt.Fprint(w, "tok")
					return
				}
				rest, ok := strings.CutPrefix(r.URL.Path, macsPath)
				if !ok {
					http.NotFound(w, r)
					return
				}
				if rest == "" {
					fmt.Fprint(w, tt.list)
					return
				}
				mac, field, _ := strings.Cut(rest, "/")
				body := good[field]
				if mac == "0e:00:00:00:00:01" && field == "device-number" {
					body = "0"
				} else if v, ok := tt.override[field]; ok && mac == "0e:00:00:00:00:02" {
					body = v
				}
				if body == "404" {
					http.NotFound(w, r)
					return
				}
				fmt.Fprint(w, body)
			}))
			defer srv.Close()
			var log bytes.Buffer
			e := newTestEC2(EC2Options{Endpoint: srv.URL}, &log)
			md := &Metadata{}
			if err := e.FetchENIs(context.Background(), md); err != nil {
				t.Fatal(err)
			}
			if got := md.Facts()["eni_macs"]; got != tt.wantMACs {
				t.Errorf("eni_macs = %q, want %q", got, tt.wantMACs)
			}
			if tt.warn != "" && !strings.Contains(log.String(), tt.warn) {
				t.Errorf("log lacks %q:\n%s", tt.warn, log.String())
			}
			if tt.warn == "" && strings.Contains(log.String(), "level=WARN") {
				t.Errorf("unexpected warning:\n%s", log.String())
			}
		})
	}
}
