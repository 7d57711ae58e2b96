package datasource

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/testbed"
)

// IMDS lookalikes answer 200 with whatever they have (AWS's mock serves
// "network/" for a path it lacks): a fact that does not have its shape is
// dropped with a warning naming it, never used in a path or a file.
func TestEC2FactsWithoutTheirShapeAreDropped(t *testing.T) {
	tests := []struct {
		name  string
		cfg   testbed.IMDSConfig
		fact  string // the fact that must be dropped
		field func(*Metadata) string
	}{
		{"mac listing", testbed.IMDSConfig{MAC: "network/"}, "mac", func(m *Metadata) string { return m.MAC }},
		{"mac short", testbed.IMDSConfig{MAC: "0e:00:00:00:01"}, "mac", func(m *Metadata) string { return m.MAC }},
		{"hostname listing", testbed.IMDSConfig{Hostname: "network/"}, "hostname", func(m *Metadata) string { return m.Hostname }},
		{"hostname html", testbed.IMDSConfig{Hostname: "<html><body>hi</body></html>"}, "hostname", func(m *Metadata) string { return m.Hostname }},
		{"region", testbed.IMDSConfig{Region: "Europe (Ireland)", AvailabilityZone: "eu-west-1a"}, "region", func(m *Metadata) string { return m.Region }},
		{"availability zone", testbed.IMDSConfig{AvailabilityZone: "zone a"}, "availability_zone", func(m *Metadata) string { return m.AvailabilityZone }},
		{"local ipv4", testbed.IMDSConfig{LocalIPv4: "10.0.1.999"}, "local_ipv4", func(m *Metadata) string { return m.LocalIPv4 }},
		{"local ipv6 as ipv4", testbed.IMDSConfig{LocalIPv4: "fd00::1"}, "local_ipv4", func(m *Metadata) string { return m.LocalIPv4 }},
		{"account", testbed.IMDSConfig{AccountID: "12345"}, "account_id", func(m *Metadata) string { return m.AccountID }},
		{"ami", testbed.IMDSConfig{AMIID: "../ami"}, "ami_id", func(m *Metadata) string { return m.AMIID }},
		{"instance type", testbed.IMDSConfig{InstanceType: "t3 micro"}, "instance_type", func(m *Metadata) string { return m.InstanceType }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, u := startIMDS(t, tt.cfg)
			var logs bytes.Buffer
			md, err := newTestEC2(EC2Options{Endpoint: u}, &logs).Fetch(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := tt.field(md); got != "" {
				t.Errorf("%s = %q, want it dropped", tt.fact, got)
			}
			if got := md.Facts()[tt.fact]; got != "" {
				t.Errorf("fact %s = %q", tt.fact, got)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "fact="+tt.fact) {
				t.Errorf("no warning naming %s:\n%s", tt.fact, logs.String())
			}
			if md.InstanceID == "" {
				t.Error("the other facts were lost")
			}
		})
	}
}

// Real shapes, including the rarer ones, are kept without a warning.
func TestEC2FactsWithTheirShapeAreKept(t *testing.T) {
	tests := []testbed.IMDSConfig{
		{},
		{InstanceID: "i-0aaaabbbbccccdddd", Region: "us-gov-west-1", AvailabilityZone: "us-gov-west-1b", Hostname: "ip-10-0-1-23.us-gov-west-1.compute.internal", InstanceType: "u-6tb1.metal"},
		{InstanceID: "i-1234abcd", Region: "us-west-2", AvailabilityZone: "us-west-2-lax-1a", Hostname: "i-1234abcd.us-west-2.compute.internal", MAC: "0A:1B:2C:3D:4E:5F"},
		{Region: "us-east-1", AvailabilityZone: "us-east-1-wl1-bos-wlz-1", Hostname: "ip-10-0-1-23.ec2.internal"},
		{Region: "cn-north-1", AvailabilityZone: "cn-north-1a", InstanceType: "mac2-m2pro.metal"},
		{Region: "us-isob-east-1", AvailabilityZone: "us-isob-east-1a"},
	}
	// Several domain names in the DHCP option set: several host names.
	_, u := startIMDS(t, testbed.IMDSConfig{Hostname: "ip-10-0-1-23.ec2.internal ip-10-0-1-23.corp.example.com"})
	md, err := newTestEC2(EC2Options{Endpoint: u}, nil).Fetch(context.Background())
	if err != nil || md.Hostname != "ip-10-0-1-23.ec2.internal" {
		t.Errorf("hostname with two names = %q, %v; want the first", md.Hostname, err)
	}
	for _, cfg := range tests {
		m, u := startIMDS(t, cfg)
		var logs bytes.Buffer
		md, err := newTestEC2(EC2Options{Endpoint: u}, &logs).Fetch(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		want := m.Config()
		got := []string{md.InstanceID, md.Region, md.AvailabilityZone, md.Hostname, md.MAC, md.InstanceType, md.LocalIPv4, md.AccountID, md.AMIID}
		exp := []string{want.InstanceID, want.Region, want.AvailabilityZone, want.Hostname, want.MAC, want.InstanceType, want.LocalIPv4, want.AccountID, want.AMIID}
		for i := range got {
			if got[i] != exp[i] {
				t.Errorf("%+v: fact %d = %q, want %q", cfg, i, got[i], exp[i])
			}
		}
		if strings.Contains(logs.String(), "level=WARN") {
			t.Errorf("%+v: warnings:\n%s", cfg, logs.String())
		}
	}
}

// The instance id keys the per-instance records: one that is not an EC2
// instance id means this is not IMDS, and nothing can safely go on.
func TestEC2InstanceIDWithoutItsShapeFails(t *testing.T) {
	for _, id := range []string{"network/", "abc", "i-", "i-../../x", strings.Repeat("i-0", 40)} {
		_, u := startIMDS(t, testbed.IMDSConfig{InstanceID: id})
		_, err := newTestEC2(EC2Options{Endpoint: u}, nil).Fetch(context.Background())
		if err == nil || !strings.Contains(err.Error(), "not an EC2 instance id") {
			t.Errorf("instance id %q: err %v", id, err)
		}
	}
}
