package testbed

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// startIMDS starts an emulator for cfg and closes it when the test ends.
func startIMDS(t *testing.T, cfg IMDSConfig) (*IMDS, string) {
	t.Helper()
	m := NewIMDS(cfg)
	url, err := m.Start()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(url, "http://127.0.0.1:") {
		t.Fatalf("Start() = %q, want a 127.0.0.1 URL", url)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return m, url
}

// newHTTPClient has its own transport, so idle connections of one test
// never serve another, and a timeout so no request can hang a test.
func newHTTPClient(t *testing.T) *http.Client {
	t.Helper()
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 5 * time.Second}
}

type response struct {
	status int
	header http.Header
	body   string
}

func do(t *testing.T, c *http.Client, method, url string, hdr map[string]string) (response, error) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return response{}, err
	}
	return response{resp.StatusCode, resp.Header, string(b)}, nil
}

func mustDo(t *testing.T, c *http.Client, method, url string, hdr map[string]string) response {
	t.Helper()
	r, err := do(t, c, method, url, hdr)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return r
}

func token(t *testing.T, c *http.Client, base string, ttl string) string {
	t.Helper()
	r := mustDo(t, c, http.MethodPut, base+tokenPath, map[string]string{tokenTTLHeader: ttl})
	if r.status != http.StatusOK || r.body == "" {
		t.Fatalf("token PUT: status %d body %q", r.status, r.body)
	}
	return r.body
}

func TestTokenEndpoint(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		method string
		hdr    map[string]string
		want   int
	}{
		{"ttl 21600", http.MethodPut, map[string]string{tokenTTLHeader: "21600"}, 200},
		{"ttl 1", http.MethodPut, map[string]string{tokenTTLHeader: "1"}, 200},
		{"ttl missing", http.MethodPut, nil, 400},
		{"ttl 0", http.MethodPut, map[string]string{tokenTTLHeader: "0"}, 400},
		{"ttl too long", http.MethodPut, map[string]string{tokenTTLHeader: "21601"}, 400},
		{"ttl not a number", http.MethodPut, map[string]string{tokenTTLHeader: "six"}, 400},
		{"through a proxy", http.MethodPut, map[string]string{tokenTTLHeader: "60", "X-Forwarded-For": "10.0.0.9"}, 403},
		{"GET", http.MethodGet, map[string]string{tokenTTLHeader: "60"}, 405},
		{"POST", http.MethodPost, map[string]string{tokenTTLHeader: "60"}, 405},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, base := startIMDS(t, IMDSConfig{})
			c := newHTTPClient(t)
			r := mustDo(t, c, tc.method, base+tokenPath, tc.hdr)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d", r.status, tc.want)
			}
			if tc.want == 200 {
				if got := r.header.Get(tokenTTLHeader); got != tc.hdr[tokenTTLHeader] {
					t.Errorf("TTL header %q, want %q", got, tc.hdr[tokenTTLHeader])
				}
				if len(r.body) < 40 {
					t.Errorf("token %q is too short", r.body)
				}
				// The token works.
				got := mustDo(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", map[string]string{tokenHeader: r.body})
				if got.status != 200 || got.body != "i-0123456789abcdef0" {
					t.Errorf("GET with the token: %d %q", got.status, got.body)
				}
			}
		})
	}
}

func TestMetadataProtocol(t *testing.T) {
	t.Parallel()
	full := IMDSConfig{
		InstanceID: "i-0aaaabbbbccccdddd", Region: "us-east-1", InstanceType: "m5.large",
		LocalIPv4: "172.31.5.6", MAC: "0a:1b:2c:3d:4e:5f", AccountID: "210987654321",
		UserData: []byte("#cloud-config\n"),
		Role:     "boot-role",
		Credentials: Credentials{AccessKeyID: "ASIAFULL", SecretAccessKey: "s3cr3t", Token: "tok",
			Expiration: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)},
		Tags: map[string]string{"Name": "web-1", "env": "prod"},
	}
	enis := IMDSConfig{MAC: "0a:1b:2c:3d:4e:5f", ENIs: []ENI{
		{MAC: "0a:1b:2c:3d:4e:60", DeviceNumber: "1", LocalIPv4s: []string{"10.1.0.10", "10.1.0.11"}, Subnet: "10.1.0.0/24"},
	}}
	for _, tc := range []struct {
		name     string
		cfg      IMDSConfig
		method   string
		path     string
		tok      string // "valid", "bogus" or "" (none)
		want     int
		wantBody string // exact when not "", unless wantSub
		wantSub  []string
	}{
		{name: "no token, v2 required", path: "/latest/meta-data/instance-id", want: 401},
		{name: "unknown token", path: "/latest/meta-data/instance-id", tok: "bogus", want: 401},
		{name: "instance-id default", path: "/latest/meta-data/instance-id", tok: "valid", want: 200, wantBody: "i-0123456789abcdef0"},
		{name: "region default", path: "/latest/meta-data/placement/region", tok: "valid", want: 200, wantBody: "eu-west-1"},
		{name: "az default", path: "/latest/meta-data/placement/availability-zone", tok: "valid", want: 200, wantBody: "eu-west-1a"},
		{name: "hostname default", path: "/latest/meta-data/hostname", tok: "valid", want: 200, wantBody: "ip-10-0-1-23.eu-west-1.compute.internal"},
		{name: "us-east-1 hostname", cfg: full, path: "/latest/meta-data/local-hostname", tok: "valid", want: 200, wantBody: "ip-172-31-5-6.ec2.internal"},
		{name: "instance-type", cfg: full, path: "/latest/meta-data/instance-type", tok: "valid", want: 200, wantBody: "m5.large"},
		{name: "ami-id", path: "/latest/meta-data/ami-id", tok: "valid", want: 200, wantBody: "ami-0123456789abcdef0"},
		{name: "local-ipv4", cfg: full, path: "/latest/meta-data/local-ipv4", tok: "valid", want: 200, wantBody: "172.31.5.6"},
		{name: "mac", cfg: full, path: "/latest/meta-data/mac", tok: "valid", want: 200, wantBody: "0a:1b:2c:3d:4e:5f"},
		{name: "HEAD", method: http.MethodHead, path: "/latest/meta-data/instance-id", tok: "valid", want: 200, wantBody: ""},
		{name: "POST", method: http.MethodPost, path: "/latest/meta-data/instance-id", tok: "valid", want: 405},
		{name: "unknown path", path: "/latest/meta-data/nope", tok: "valid", want: 404},
		{name: "file with slash", path: "/latest/meta-data/instance-id/", tok: "valid", want: 404},
		{name: "listing", cfg: full, path: "/latest/meta-data/", tok: "valid", want: 200,
			wantSub: []string{"ami-id\n", "\niam/\n", "\ninstance-id\n", "\nnetwork/\n", "\nplacement/\n", "\ntags/"}},
		{name: "listing without slash", path: "/latest/meta-data/placement", tok: "valid", want: 200, wantBody: "availability-zone\nregion"},
		{name: "listing without role and tags", path: "/latest/meta-data/", tok: "valid", want: 200, wantSub: []string{"instance-id"}},
		{name: "latest", path: "/latest/", tok: "valid", want: 200, wantBody: "dynamic/\nmeta-data/"},
		{name: "latest with user-data", cfg: full, path: "/latest", tok: "valid", want: 200, wantBody: "dynamic/\nmeta-data/\nuser-data"},
		{name: "nic listing", cfg: full, path: "/latest/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f/", tok: "valid", want: 200,
			wantSub: []string{"device-number", "interface-id", "local-ipv4s", "subnet-id", "subnet-ipv4-cidr-block", "vpc-id"}},
		{name: "nic cidr", cfg: full, path: "/latest/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:5f/subnet-ipv4-cidr-block", tok: "valid", want: 200, wantBody: "172.31.5.0/24"},
		{name: "macs", cfg: full, path: "/latest/meta-data/network/interfaces/macs/", tok: "valid", want: 200, wantBody: "0a:1b:2c:3d:4e:5f/"},
		{name: "macs with an ENI", cfg: enis, path: "/latest/meta-data/network/interfaces/macs/", tok: "valid", want: 200, wantBody: "0a:1b:2c:3d:4e:5f/\n0a:1b:2c:3d:4e:60/"},
		{name: "ENI device-number", cfg: enis, path: "/latest/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:60/device-number", tok: "valid", want: 200, wantBody: "1"},
		{name: "ENI local-ipv4s", cfg: enis, path: "/latest/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:60/local-ipv4s", tok: "valid", want: 200, wantBody: "10.1.0.10\n10.1.0.11"},
		{name: "ENI subnet", cfg: enis, path: "/latest/meta-data/network/interfaces/macs/0a:1b:2c:3d:4e:60/subnet-ipv4-cidr-block", tok: "valid", want: 200, wantBody: "10.1.0.0/24"},
		{name: "no role: iam/info", path: "/latest/meta-data/iam/info", tok: "valid", want: 404},
		{name: "no role: role list", path: "/latest/meta-data/iam/security-credentials/", tok: "valid", want: 404},
		{name: "role list", cfg: full, path: "/latest/meta-data/iam/security-credentials/", tok: "valid", want: 200, wantBody: "boot-role"},
		{name: "iam listing", cfg: full, path: "/latest/meta-data/iam/", tok: "valid", want: 200, wantBody: "info\nsecurity-credentials/"},
		{name: "other role", cfg: full, path: "/latest/meta-data/iam/security-credentials/other", tok: "valid", want: 404},
		{name: "tags off", path: "/latest/meta-data/tags/instance/", tok: "valid", want: 404},
		{name: "tags list", cfg: full, path: "/latest/meta-data/tags/instance/", tok: "valid", want: 200, wantBody: "Name\nenv"},
		{name: "tag", cfg: full, path: "/latest/meta-data/tags/instance/Name", tok: "valid", want: 200, wantBody: "web-1"},
		{name: "empty tags", cfg: IMDSConfig{Tags: map[string]string{}}, path: "/latest/meta-data/tags/instance", tok: "valid", want: 200, wantBody: ""},
		{name: "no user-data", path: "/latest/user-data", tok: "valid", want: 404},
		{name: "user-data", cfg: full, path: "/latest/user-data", tok: "valid", want: 200, wantBody: "#cloud-config\n"},
		{name: "v1 allowed, no token", cfg: IMDSConfig{AllowV1: true}, path: "/latest/meta-data/instance-id", want: 200, wantBody: "i-0123456789abcdef0"},
		{name: "v1 allowed, bogus token", cfg: IMDSConfig{AllowV1: true}, path: "/latest/meta-data/instance-id", tok: "bogus", want: 401},
		{name: "v1 only, no token", cfg: IMDSConfig{V1Only: true}, path: "/latest/meta-data/instance-id", want: 200, wantBody: "i-0123456789abcdef0"},
		{name: "v1 only, token PUT", cfg: IMDSConfig{V1Only: true}, method: http.MethodPut, path: tokenPath, want: 404},
		{name: "dynamic listing", path: "/latest/dynamic/instance-identity/", tok: "valid", want: 200, wantBody: "document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, base := startIMDS(t, tc.cfg)
			c := newHTTPClient(t)
			hdr := map[string]string{}
			switch tc.tok {
			case "valid":
				hdr[tokenHeader] = token(t, c, base, "60")
			case "bogus":
				hdr[tokenHeader] = "AQAEAbogus"
			}
			if tc.method == http.MethodPut {
				hdr[tokenTTLHeader] = "60"
			}
			method := tc.method
			if method == "" {
				method = http.MethodGet
			}
			r := mustDo(t, c, method, base+tc.path, hdr)
			if r.status != tc.want {
				t.Fatalf("status %d, want %d (body %q)", r.status, tc.want, r.body)
			}
			if tc.want != 200 {
				return
			}
			if tc.wantSub != nil {
				for _, s := range tc.wantSub {
					if !strings.Contains(r.body, s) {
						t.Errorf("body %q lacks %q", r.body, s)
					}
				}
			} else if r.body != tc.wantBody {
				t.Errorf("body %q, want %q", r.body, tc.wantBody)
			}
		})
	}
}

func TestJSONDocuments(t *testing.T) {
	t.Parallel()
	exp := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	m, base := startIMDS(t, IMDSConfig{Role: "r", AccountID: "111122223333",
		Credentials: Credentials{AccessKeyID: "ASIAX", SecretAccessKey: "sk", Token: "st", Expiration: exp}})
	c := newHTTPClient(t)
	hdr := map[string]string{tokenHeader: token(t, c, base, "60")}

	var creds map[string]string
	r := mustDo(t, c, http.MethodGet, base+"/latest/meta-data/iam/security-credentials/r", hdr)
	if err := json.Unmarshal([]byte(r.body), &creds); err != nil {
		t.Fatalf("credentials: %v", err)
	}
	for k, want := range map[string]string{"Code": "Success", "Type": "AWS-HMAC", "AccessKeyId": "ASIAX",
		"SecretAccessKey": "sk", "Token": "st", "Expiration": "2030-01-02T03:04:05Z"} {
		if creds[k] != want {
			t.Errorf("credentials %s = %q, want %q", k, creds[k], want)
		}
	}
	if _, err := time.Parse(time.RFC3339, creds["LastUpdated"]); err != nil {
		t.Errorf("LastUpdated: %v", err)
	}

	var info map[string]string
	r = mustDo(t, c, http.MethodGet, base+"/latest/meta-data/iam/info", hdr)
	if err := json.Unmarshal([]byte(r.body), &info); err != nil {
		t.Fatalf("iam/info: %v", err)
	}
	if info["Code"] != "Success" || info["InstanceProfileArn"] != "arn:aws:iam::111122223333:instance-profile/r" || info["InstanceProfileId"] == "" {
		t.Errorf("iam/info = %v", info)
	}

	var doc map[string]any
	r = mustDo(t, c, http.MethodGet, base+"/latest/dynamic/instance-identity/document", hdr)
	if err := json.Unmarshal([]byte(r.body), &doc); err != nil {
		t.Fatalf("identity document: %v", err)
	}
	for k, want := range map[string]any{"accountId": "111122223333", "architecture": "x86_64",
		"availabilityZone": "eu-west-1a", "imageId": "ami-0123456789abcdef0", "instanceId": "i-0123456789abcdef0",
		"instanceType": "t3.micro", "privateIp": "10.0.1.23", "region": "eu-west-1", "version": "2017-09-30",
		"kernelId": nil, "billingProducts": nil} {
		if got, ok := doc[k]; !ok || got != want {
			t.Errorf("document %s = %v (present %v), want %v", k, got, ok, want)
		}
	}
	if _, err := time.Parse(time.RFC3339, doc["pendingTime"].(string)); err != nil {
		t.Errorf("pendingTime: %v", err)
	}

	// Setters take effect at once; the new LastUpdated is not older.
	m.SetCredentials(Credentials{AccessKeyID: "ASIANEW", SecretAccessKey: "sk2", Token: "st2", Expiration: exp})
	r = mustDo(t, c, http.MethodGet, base+"/latest/meta-data/iam/security-credentials/r", hdr)
	if !strings.Contains(r.body, `"AccessKeyId": "ASIANEW"`) {
		t.Errorf("after SetCredentials: %s", r.body)
	}
	m.SetUserData([]byte("v2"))
	if r = mustDo(t, c, http.MethodGet, base+"/latest/user-data", hdr); r.body != "v2" {
		t.Errorf("after SetUserData: %d %q", r.status, r.body)
	}
	m.SetUserData(nil)
	if r = mustDo(t, c, http.MethodGet, base+"/latest/user-data", hdr); r.status != 404 {
		t.Errorf("after SetUserData(nil): %d", r.status)
	}
}

func newSDKClient(url string, optFns ...func(*imds.Options)) *imds.Client {
	// The SDK's own retry policy without its backoff of up to 1 s, so the
	// tests stay fast. (imds.New replaces a Retryer's backoff unless
	// DisableDefaultMaxBackoff is set.)
	noBackoff := retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 0, nil })
	o := imds.Options{Endpoint: url, ClientEnableState: imds.ClientEnabled, EnableFallback: aws.FalseTernary,
		Retryer:                  retry.NewStandard(func(o *retry.StandardOptions) { o.Backoff = noBackoff }),
		DisableDefaultMaxBackoff: true}
	for _, f := range optFns {
		f(&o)
	}
	return imds.New(o)
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestSDKClient(t *testing.T) {
	t.Parallel()
	exp := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	m, base := startIMDS(t, IMDSConfig{Role: "boot", UserData: []byte("hello"),
		Credentials: Credentials{AccessKeyID: "ASIASDK", SecretAccessKey: "sk", Token: "st", Expiration: exp}})
	ctx := ctxT(t)
	c := newSDKClient(base)

	md, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(md.Content); string(b) != "i-0123456789abcdef0" {
		t.Errorf("instance-id %q", b)
	}
	if reg, err := c.GetRegion(ctx, nil); err != nil || reg.Region != "eu-west-1" {
		t.Errorf("GetRegion = %v, %v", reg, err)
	}
	doc, err := c.GetInstanceIdentityDocument(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if doc.InstanceID != "i-0123456789abcdef0" || doc.AccountID != "123456789012" || doc.PendingTime.IsZero() || doc.Version != "2017-09-30" {
		t.Errorf("identity document %+v", doc.InstanceIdentityDocument)
	}
	info, err := c.GetIAMInfo(ctx, nil)
	if err != nil || !strings.HasSuffix(info.InstanceProfileArn, ":instance-profile/boot") {
		t.Errorf("GetIAMInfo = %+v, %v", info, err)
	}
	ud, err := c.GetUserData(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := io.ReadAll(ud.Content); string(b) != "hello" {
		t.Errorf("user-data %q", b)
	}

	creds, err := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = c }).Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if creds.AccessKeyID != "ASIASDK" || creds.SecretAccessKey != "sk" || creds.SessionToken != "st" || !creds.Expires.Equal(exp) {
		t.Errorf("role credentials: %v %v", creds.AccessKeyID, creds.Expires)
	}

	// One token for all of it; every GET carried it.
	puts := 0
	for _, r := range m.Requests() {
		switch {
		case r.Method == http.MethodPut:
			puts++
		case !r.HadToken || r.Status != 200:
			t.Errorf("request %+v", r)
		}
	}
	if puts != 1 {
		t.Errorf("%d token PUTs, want 1", puts)
	}
	if m.RequestCount() != len(m.Requests()) {
		t.Errorf("RequestCount %d, log %d", m.RequestCount(), len(m.Requests()))
	}

	// ExpireTokens: the SDK gets a 401, fetches a new token and retries.
	m.ExpireTokens()
	if _, err := c.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"}); err != nil {
		t.Fatalf("after ExpireTokens: %v", err)
	}
	var tail []string
	for _, r := range m.Requests()[len(m.Requests())-3:] {
		tail = append(tail, r.Method+" "+http.StatusText(r.Status))
	}
	if want := "GET Unauthorized|PUT OK|GET OK"; strings.Join(tail, "|") != want {
		t.Errorf("after ExpireTokens: %v, want %s", tail, want)
	}
}

func TestTokenTTLIsReal(t *testing.T) {
	t.Parallel()
	_, base := startIMDS(t, IMDSConfig{})
	c := newHTTPClient(t)
	tok := token(t, c, base, "1")
	hdr := map[string]string{tokenHeader: tok}
	if r := mustDo(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", hdr); r.status != 200 {
		t.Fatalf("fresh token: %d", r.status)
	}
	time.Sleep(1100 * time.Millisecond)
	if r := mustDo(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", hdr); r.status != 401 {
		t.Fatalf("expired token: %d, want 401", r.status)
	}
}

func TestExpireTokens(t *testing.T) {
	t.Parallel()
	m, base := startIMDS(t, IMDSConfig{})
	c := newHTTPClient(t)
	old := token(t, c, base, "600")
	m.ExpireTokens()
	if r := mustDo(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", map[string]string{tokenHeader: old}); r.status != 401 {
		t.Fatalf("old token: %d, want 401", r.status)
	}
	fresh := token(t, c, base, "600")
	if r := mustDo(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", map[string]string{tokenHeader: fresh}); r.status != 200 {
		t.Fatalf("new token: %d, want 200", r.status)
	}
}

// waitUp polls until the endpoint answers again: at most 100 tries, 5 s.
func waitUp(t *testing.T, c *http.Client, url string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; i < 100 && time.Now().Before(deadline); i++ {
		if _, err := do(t, c, http.MethodPut, url, map[string]string{tokenTTLHeader: "60"}); err == nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("endpoint did not come back")
}

func TestDownFor(t *testing.T) {
	t.Parallel()
	m, base := startIMDS(t, IMDSConfig{AllowV1: true})
	c := newHTTPClient(t)
	// A kept-alive connection exists before the outage.
	mustDo(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", nil)
	before := m.RequestCount()

	m.DownFor(400 * time.Millisecond)
	start := time.Now()
	for i := 0; i < 3; i++ {
		if r, err := do(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", nil); err == nil {
			t.Fatalf("request %d while down got status %d, want a connection failure", i, r.status)
		}
	}
	if m.RequestCount() != before {
		t.Errorf("requests counted while down: %d → %d", before, m.RequestCount())
	}
	waitUp(t, c, base+tokenPath)
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("came back after %v, want about 400ms", el)
	}

	// The SDK sees a send failure, and a fresh client works afterwards.
	m.DownFor(300 * time.Millisecond)
	noRetry := func(o *imds.Options) { o.Retryer = aws.NopRetryer{} }
	_, err := newSDKClient(base, noRetry).GetMetadata(ctxT(t), &imds.GetMetadataInput{Path: "instance-id"})
	// With EnableFallback false the SDK wraps the token failure in a type
	// without Unwrap, so only the message tells it is a send failure.
	if err == nil || !strings.Contains(err.Error(), "request send failed") {
		t.Fatalf("SDK (no v1 fallback) error while down = %v, want a send failure", err)
	}
	_, err = newSDKClient(base, noRetry, func(o *imds.Options) { o.EnableFallback = aws.UnknownTernary }).
		GetMetadata(ctxT(t), &imds.GetMetadataInput{Path: "instance-id"})
	var sendErr *smithyhttp.RequestSendError
	if !errors.As(err, &sendErr) {
		t.Fatalf("SDK (default fallback) error while down = %v, want a RequestSendError", err)
	}
	waitUp(t, c, base+tokenPath)
	if _, err := newSDKClient(base).GetMetadata(ctxT(t), &imds.GetMetadataInput{Path: "instance-id"}); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

// DownFor also works through Handler() on any server, by aborting requests.
func TestDownForHandler(t *testing.T) {
	t.Parallel()
	m := NewIMDS(IMDSConfig{AllowV1: true})
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	defer m.Close()
	c := newHTTPClient(t)
	m.DownFor(time.Minute)
	if r, err := do(t, c, http.MethodGet, srv.URL+"/latest/meta-data/instance-id", nil); err == nil {
		t.Fatalf("got status %d while down", r.status)
	}
	m.DownFor(0)
	if r := mustDo(t, c, http.MethodGet, srv.URL+"/latest/meta-data/instance-id", nil); r.status != 200 {
		t.Fatalf("status %d after DownFor(0)", r.status)
	}
}

func TestThrottle(t *testing.T) {
	t.Parallel()
	m, base := startIMDS(t, IMDSConfig{})
	c := newHTTPClient(t)
	tok := token(t, c, base, "600")
	hdr := map[string]string{tokenHeader: tok}
	m.Throttle(2, http.StatusTooManyRequests)
	for i, want := range []int{429, 429, 200} {
		r := mustDo(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", hdr)
		if r.status != want {
			t.Fatalf("request %d: %d, want %d", i, r.status, want)
		}
		if want == 429 && r.body != "" {
			t.Errorf("throttled body %q, want empty", r.body)
		}
	}
	// The token PUT is throttled too.
	m.Throttle(1, http.StatusServiceUnavailable)
	if r := mustDo(t, c, http.MethodPut, base+tokenPath, map[string]string{tokenTTLHeader: "60"}); r.status != 503 {
		t.Errorf("throttled PUT: %d", r.status)
	}

	// The SDK fails at once on 429 and retries 503.
	sdk := newSDKClient(base)
	ctx := ctxT(t)
	if _, err := sdk.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"}); err != nil {
		t.Fatal(err)
	}
	m.Throttle(1, http.StatusTooManyRequests)
	var re interface{ HTTPStatusCode() int }
	if _, err := sdk.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"}); !errors.As(err, &re) || re.HTTPStatusCode() != 429 {
		t.Errorf("SDK on 429: %v", err)
	}
	m.Throttle(1, http.StatusServiceUnavailable)
	if _, err := sdk.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"}); err != nil {
		t.Errorf("SDK on one 503: %v", err)
	}
	reqs := m.Requests()
	if got := reqs[len(reqs)-2].Status; got != 503 {
		t.Errorf("next-to-last request status %d, want 503", got)
	}
}

func TestRoleMissingFor(t *testing.T) {
	t.Parallel()
	m, base := startIMDS(t, IMDSConfig{Role: "late"})
	c := newHTTPClient(t)
	hdr := map[string]string{tokenHeader: token(t, c, base, "600")}
	m.RoleMissingFor(300 * time.Millisecond)
	for _, p := range []string{"iam/security-credentials/", "iam/security-credentials/late"} {
		if r := mustDo(t, c, http.MethodGet, base+"/latest/meta-data/"+p, hdr); r.status != 404 {
			t.Errorf("%s while missing: %d, want 404", p, r.status)
		}
	}
	if r := mustDo(t, c, http.MethodGet, base+"/latest/meta-data/iam/info", hdr); r.status != 200 {
		t.Errorf("iam/info while missing: %d", r.status)
	}
	_, err := ec2rolecreds.New(func(o *ec2rolecreds.Options) { o.Client = newSDKClient(base) }).Retrieve(ctxT(t))
	if err == nil {
		t.Error("ec2rolecreds while missing: no error")
	}
	time.Sleep(350 * time.Millisecond)
	if r := mustDo(t, c, http.MethodGet, base+"/latest/meta-data/iam/security-credentials/", hdr); r.status != 200 || r.body != "late" {
		t.Errorf("after: %d %q", r.status, r.body)
	}
}

func TestSlowAndClose(t *testing.T) {
	t.Parallel()
	m, base := startIMDS(t, IMDSConfig{AllowV1: true})
	c := newHTTPClient(t)
	m.Slow(150 * time.Millisecond)
	start := time.Now()
	mustDo(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", nil)
	if el := time.Since(start); el < 150*time.Millisecond {
		t.Errorf("slow response after %v", el)
	}
	m.Slow(0)
	mustDo(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", nil)

	// Close ends requests stuck in a delay, at once.
	m.Slow(time.Hour)
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, err := do(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", nil)
		errc <- err
	}()
	// Wait (bounded: 400 × 5 ms) until the request is in its delay.
	for i := 0; i < 400 && m.delayed.Load() == 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if m.delayed.Load() == 0 {
		t.Fatal("the request never reached the delay")
	}
	closed := time.Now()
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if err := <-errc; err == nil {
		t.Error("request pending at Close succeeded")
	}
	if el := time.Since(closed); el > 2*time.Second {
		t.Errorf("Close and the pending request took %v", el)
	}
	if _, err := m.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}
	if _, err := do(t, c, http.MethodGet, base+"/latest/meta-data/instance-id", nil); err == nil {
		t.Error("request after Close succeeded")
	}
}

func TestCredentialsDoNotPrintSecrets(t *testing.T) {
	t.Parallel()
	c := Credentials{AccessKeyID: "ASIAVISIBLE", SecretAccessKey: "very-secret", Token: "session-secret"}
	for _, s := range []string{c.String(), c.GoString()} {
		if strings.Contains(s, "very-secret") || strings.Contains(s, "session-secret") || strings.Contains(s, "ASIAVISIBLE") {
			t.Errorf("leaks a secret: %s", s)
		}
	}
}
