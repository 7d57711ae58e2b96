package config

import (
	"strings"
	"testing"
)

var testFacts = map[string]string{
	"instance_id":       "i-0123456789abcdef0",
	"region":            "eu-west-1",
	"availability_zone": "eu-west-1a",
	"instance_type":     "t3.micro",
	"ami_id":            "ami-0abc",
	"local_ipv4":        "10.0.0.12",
	"mac":               "0a:1b:2c:3d:4e:5f",
	"account_id":        "123456789012",
	"role":              "web",
	"hostname":          "ip-10-0-0-12",
}

func TestExpand(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: "", want: ""},
		{in: "plain", want: "plain"},
		{in: "${region}", want: "eu-west-1"},
		{in: "s3://cfg-${account_id}/${role}/${instance_id}.yaml", want: "s3://cfg-123456789012/web/i-0123456789abcdef0.yaml"},
		{in: "$${region}", want: "${region}"},
		{in: "$$${region}", want: "$${region}"},
		{in: "cost $5", want: "cost $5"},
		{in: "$", want: "$"},
		{in: "$$", want: "$$"},
		{in: "a$b$", want: "a$b$"},
		{in: "echo $HOME", want: "echo $HOME"},
		{in: "${region}${role}", want: "eu-west-1web"},
		{in: "x ${nope} y", err: "unknown fact ${nope} at byte 2; known facts: account_id, ami_id, availability_zone, hostname, instance_id, instance_type, local_ipv4, mac, region, role"},
		{in: "${Region}", err: "malformed ${ at byte 0: write ${name} with a name of a-z, 0-9 and _, or $${ for a literal ${"},
		{in: "ab${region", err: "malformed ${ at byte 2: write ${name} with a name of a-z, 0-9 and _, or $${ for a literal ${"},
		{in: "${}", err: "malformed ${ at byte 0: write ${name} with a name of a-z, 0-9 and _, or $${ for a literal ${"},
		{in: "${", err: "malformed ${ at byte 0: write ${name} with a name of a-z, 0-9 and _, or $${ for a literal ${"},
	}
	for _, tt := range tests {
		got, err := Expand(tt.in, testFacts)
		switch {
		case tt.err != "":
			if err == nil || err.Error() != tt.err {
				t.Errorf("Expand(%q) error = %v, want %q", tt.in, err, tt.err)
			}
		case err != nil:
			t.Errorf("Expand(%q): %v", tt.in, err)
		case got != tt.want:
			t.Errorf("Expand(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExpandNoFacts(t *testing.T) {
	_, err := Expand("${region}", nil)
	if err == nil || !strings.Contains(err.Error(), "no facts are available here") {
		t.Errorf("got %v", err)
	}
}

// FuzzExpand checks that Expand terminates, and that escaping every ${ as
// $${ makes any text come back unchanged (what userdata relies on for
// cloud-config content).
func FuzzExpand(f *testing.F) {
	for _, s := range []string{"", "${region}", "$${x}", "$$${x}", "a$", "${", "${a", "echo ${HOME:-/root} $1", "$$$$"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, _ = Expand(s, testFacts)
		escaped := strings.ReplaceAll(s, "${", "$${")
		got, err := Expand(escaped, nil)
		if err != nil || got != s {
			t.Fatalf("Expand(escape(%q)) = %q, %v", s, got, err)
		}
	})
}
