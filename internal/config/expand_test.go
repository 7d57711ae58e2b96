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
		{in: "${Region}", err: "malformed ${ at byte 0: write ${name} with a name of a-z, 0-9 and _, or ${tag:Key}, or $${ for a literal ${"},
		{in: "ab${region", err: "malformed ${ at byte 2: write ${name} with a name of a-z, 0-9 and _, or ${tag:Key}, or $${ for a literal ${"},
		{in: "${}", err: "malformed ${ at byte 0: write ${name} with a name of a-z, 0-9 and _, or ${tag:Key}, or $${ for a literal ${"},
		{in: "${", err: "malformed ${ at byte 0: write ${name} with a name of a-z, 0-9 and _, or ${tag:Key}, or $${ for a literal ${"},
	}
	for _, tt := range tests {
		got, err := Expand(tt.in, testFacts)
		check(t, tt.in, got, tt.want, err, tt.err)
	}
}

func check(t *testing.T, in, got, want string, err error, wantErr string) {
	t.Helper()
	switch {
	case wantErr != "":
		if err == nil || err.Error() != wantErr {
			t.Errorf("Expand(%q) error = %v, want %q", in, err, wantErr)
		}
	case err != nil:
		t.Errorf("Expand(%q): %v", in, err)
	case got != want:
		t.Errorf("Expand(%q) = %q, want %q", in, got, want)
	}
}

// Tags are facts named tag:<key>, with the key characters EC2 allows.
func TestExpandTags(t *testing.T) {
	facts := map[string]string{"region": "eu-west-1", "tag:Role": "web", "tag:aws:autoscaling:groupName": "web-asg", "tag:a+b=c.d,e_f@g-h": "odd"}
	const malformed = "malformed ${ at byte 0: write ${name} with a name of a-z, 0-9 and _, or ${tag:Key}, or $${ for a literal ${"
	tests := []struct {
		in, want, err string
		facts         map[string]string
	}{
		{in: "s3://cfg/roles/${tag:Role}.yaml", want: "s3://cfg/roles/web.yaml"},
		{in: "${tag:aws:autoscaling:groupName}/${region}", want: "web-asg/eu-west-1"},
		{in: "${tag:a+b=c.d,e_f@g-h}", want: "odd"},
		{in: "$${tag:Role}", want: "${tag:Role}"},
		{in: "${tag:Team}", err: "unknown tag ${tag:Team} at byte 0; the instance's tags: tag:Role, tag:a+b=c.d,e_f@g-h, tag:aws:autoscaling:groupName"},
		{in: "${tag:Role}", facts: map[string]string{"region": "x"}, err: "unknown tag ${tag:Role} at byte 0; no instance tags were read: tags are facts only under the ec2 datasource with imds.tags: true in a local --config, and \"Allow tags in instance metadata\" on the instance"},
		{in: "${nope}", err: "unknown fact ${nope} at byte 0; known facts: region, and 3 instance tags as ${tag:Key}"},
		{in: "${tag:}", err: malformed},
		{in: "${tag:Ro le}", err: malformed},
		{in: "${tag:a/b}", err: malformed},
		{in: "${tag:Role", err: malformed},
		{in: "${tag}", err: "unknown fact ${tag} at byte 0; known facts: region, and 3 instance tags as ${tag:Key}"},
	}
	for _, tt := range tests {
		f := facts
		if tt.facts != nil {
			f = tt.facts
		}
		got, err := Expand(tt.in, f)
		check(t, tt.in, got, tt.want, err, tt.err)
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
	for _, s := range []string{"", "${region}", "$${x}", "$$${x}", "a$", "${", "${a", "echo ${HOME:-/root} $1", "$$$$", "${tag:Role}", "${tag:}", "${tag:a:b@c}"} {
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
