package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opsboot/bootstrap/internal/testbed"
)

// A failed run logs what it really did: the requests sent before the
// failure and the instance it was working on.
func TestFailedRunLogsItsRequestsAndInstance(t *testing.T) {
	b := newEC2Bed(t, testbed.IMDSConfig{InstanceID: "i-0fa11ed000000001"})
	b.store.Put("cfg", "bad.yaml", []byte("files:\n  - path: /etc/x\n    mode: rw-r--r--\n    content: x\n"))
	b.imds.SetUserData([]byte("#bootstrap-config\n" + b.awsSection() + "include:\n  - s3://cfg/bad.yaml\n"))
	code, _, errs := runCLI(t, "", b.args("run")...)
	if code != 2 {
		t.Fatalf("run: exit %d, want 2:\n%s", code, errs)
	}
	rec := logRecord(t, errs, "run failed")
	if n, _ := rec["imds_requests"].(float64); n < 5 {
		t.Errorf("imds_requests = %v, want the ≥5 requests made", rec["imds_requests"])
	}
	if n, _ := rec["requests"].(float64); n < 1 {
		t.Errorf("requests = %v, want the S3 request made", rec["requests"])
	}
	if rec["instance"] != "i-0fa11ed000000001" {
		t.Errorf("instance = %v", rec["instance"])
	}
	code, out, _ := runCLI(t, "", "status", "--state-dir", b.state)
	if code != 1 || !strings.Contains(out, "instance: i-0fa11ed000000001") || !strings.Contains(out, "state: failed") {
		t.Errorf("status: exit %d\n%s", code, out)
	}
}

// Tag facts: ${tag:Key} in values and in include:, so a layer can be chosen
// by tag. An unknown tag is an error, never an empty string: an include of
// roles/.yaml or a file naming no role is not what anyone meant.
func TestTagFacts(t *testing.T) {
	b := newEC2Bed(t, testbed.IMDSConfig{Tags: map[string]string{"Role": "web", "aws:autoscaling:groupName": "web-asg"}})
	b.store.Put("cfg", "roles/web.yaml", []byte("files:\n  - path: /etc/role\n    content: \"role=${tag:Role} group=${tag:aws:autoscaling:groupName}\\n\"\n"))
	local := filepath.Join(t.TempDir(), "local.yaml")
	writeFile(t, local, "imds:\n  tags: true\n"+b.awsSection()+"include:\n  - s3://cfg/roles/${tag:Role}.yaml\n")
	code, _, errs := runCLI(t, "", b.args("run", "--config", local)...)
	if code != 0 {
		t.Fatalf("run: exit %d\n%s", code, errs)
	}
	if got, _ := os.ReadFile(filepath.Join(b.root, "etc/role")); string(got) != "role=web group=web-asg\n" {
		t.Fatalf("etc/role = %q", got)
	}

	tests := []struct {
		name, config string
		want         []string
	}{
		{"unknown tag", "imds:\n  tags: true\nfiles:\n  - path: /etc/${tag:Team}\n    content: x\n",
			[]string{"unknown tag ${tag:Team}", "the instance's tags: tag:Role"}},
		{"tags not read", "files:\n  - path: /etc/${tag:Role}\n    content: x\n",
			[]string{"unknown tag ${tag:Role}", "imds.tags: true"}},
		// In content, which may be secret, the name is not repeated.
		{"unknown tag in content", "imds:\n  tags: true\nfiles:\n  - path: /etc/x\n    content: \"${tag:Team}\"\n",
			[]string{"unknown tag at byte 0", "tag:Role"}},
		{"unknown tag in include", "imds:\n  tags: true\n" + b.awsSection() + "include:\n  - s3://cfg/roles/${tag:Team}.yaml\n",
			[]string{"${tag:Team}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeFile(t, local, tt.config)
			code, _, errs := runCLI(t, "", b.args("plan", "--config", local)...)
			if code != 2 {
				t.Fatalf("plan: exit %d, want 2\n%s", code, errs)
			}
			for _, w := range tt.want {
				if !strings.Contains(errs, w) {
					t.Errorf("message lacks %q:\n%s", w, errs)
				}
			}
		})
	}
}
