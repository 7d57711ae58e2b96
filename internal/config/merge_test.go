package config

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

func mustLayer(t *testing.T, source, src string) *Layer {
	t.Helper()
	l, err := ParseLayer(source, []byte(src))
	if err != nil {
		t.Fatalf("ParseLayer(%s): %v", source, err)
	}
	return l
}

// rawLayer skips the schema check, to build layers that a later schema
// could allow (a key that is a scalar in one and a mapping in another).
func rawLayer(t *testing.T, source, src string) *Layer {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
		t.Fatal(err)
	}
	return &Layer{Source: source, Root: doc.Content[0]}
}

func mergeDecode(t *testing.T, layers ...*Layer) (*Merged, *Config) {
	t.Helper()
	m, err := Merge(layers)
	if err != nil {
		t.Fatalf("Merge: %v", err)
	}
	cfg, err := m.Decode(testFacts)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	return m, cfg
}

func TestMergeMappingsMergeKeyByKey(t *testing.T) {
	base := mustLayer(t, "base.yaml", "imds:\n  tags: true\n  deadline: 30s\naws:\n  s3:\n    endpoint: http://127.0.0.1:9000\n")
	over := mustLayer(t, "over.yaml", "imds:\n  allow_v1: true\naws:\n  s3:\n    path_style: true\n")
	m, cfg := mergeDecode(t, base, over)
	want := IMDS{AllowV1: true, Tags: true, Deadline: Duration{30 * time.Second}}
	if cfg.IMDS != want {
		t.Errorf("imds = %+v, want %+v", cfg.IMDS, want)
	}
	if cfg.AWS.S3 != (S3{Endpoint: "http://127.0.0.1:9000", PathStyle: true}) {
		t.Errorf("aws.s3 = %+v", cfg.AWS.S3)
	}
	for path, want := range map[string]string{
		"imds.tags":          "base.yaml:2:9",
		"imds.allow_v1":      "over.yaml:2:13",
		"aws.s3.endpoint":    "base.yaml:6:15",
		"aws.s3.path_style":  "over.yaml:5:17",
		"aws.region":         ":0:0",
		"files[0]":           ":0:0",
		"imds.deadline.oops": ":0:0",
	} {
		src, line, col := m.Origin(path)
		if got := fmt.Sprintf("%s:%d:%d", src, line, col); got != want {
			t.Errorf("Origin(%s) = %s, want %s", path, got, want)
		}
	}
}

func TestMergeFilesByPath(t *testing.T) {
	base := "files:\n  - path: /etc/a\n    content: a\n  - path: /etc/b\n    content: b\n  - path: /etc/c\n    content: c\n"
	cases := []struct {
		name  string
		over  string
		want  []string // path=content, in order
		error string
	}{
		{"a later entry replaces in place, new ones are appended",
			"files:\n  - path: /etc/d\n    content: d\n  - path: /etc/b\n    content: B\n",
			[]string{"/etc/a=a", "/etc/b=B", "/etc/c=c", "/etc/d=d"}, ""},
		{"remove: true deletes the inherited entry",
			"files:\n  - path: /etc/a\n    remove: true\n  - path: /etc/c\n    content: C\n",
			[]string{"/etc/b=b", "/etc/c=C"}, ""},
		{"removing what no layer has is an error",
			"files:\n  - path: /etc/zz\n    remove: true\n",
			nil, `over.yaml:2:5: files[0]: remove: no earlier layer has an entry with path "/etc/zz"`},
		{"two entries with one path in a layer are still duplicates",
			"files:\n  - path: /etc/a\n    content: 1\n  - path: /etc/a\n    content: 2\n",
			nil, "duplicate path"},
		{"an empty list keeps what is inherited",
			"files: []\n",
			[]string{"/etc/a=a", "/etc/b=b", "/etc/c=c"}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m, err := Merge([]*Layer{mustLayer(t, "base.yaml", base), mustLayer(t, "over.yaml", c.over)})
			var cfg *Config
			if err == nil {
				cfg, err = m.Decode(map[string]string{})
			}
			if c.error != "" {
				if err == nil || !strings.Contains(err.Error(), c.error) {
					t.Fatalf("err = %v, want %q", err, c.error)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range cfg.Files {
				got = append(got, f.Path+"="+*f.Content)
			}
			if strings.Join(got, " ") != strings.Join(c.want, " ") {
				t.Errorf("files = %v, want %v", got, c.want)
			}
		})
	}
}

func TestMergeByKeyKeepsPositions(t *testing.T) {
	base := mustLayer(t, "base.yaml", "files:\n  - path: /etc/a\n    content: a\n  - path: /etc/b\n    content: b\n")
	over := mustLayer(t, "over.yaml", "files:\n  - path: /etc/b\n    content: c\n")
	m, cfg := mergeDecode(t, base, over)
	if len(cfg.Files) != 2 {
		t.Fatalf("files = %+v", cfg.Files)
	}
	for path, want := range map[string]string{"files[0].path": "base.yaml:2:11", "files[1].content": "over.yaml:3:14"} {
		if src, line, col := m.Origin(path); fmt.Sprintf("%s:%d:%d", src, line, col) != want {
			t.Errorf("Origin(%s) = %s:%d:%d, want %s", path, src, line, col, want)
		}
	}
}

func TestRemoveEntryIsChecked(t *testing.T) {
	for doc, want := range map[string]string{
		"files:\n  - path: /etc/a\n    remove: true\n    content: x\n": "files[0].content: an entry with remove: true takes only path",
		"files:\n  - remove: true\n":                                   "files[0].remove: say which entry to remove: give its path",
		"files:\n  - path: /etc/a\n    remove: nope\n":                 "files[0].remove: want true",
		"imds:\n  remove: true\n":                                      `unknown key "remove"`,
	} {
		_, err := ParseLayer("l.yaml", []byte(doc))
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want %q", doc, err, want)
		}
	}
}

func TestMergeNullResets(t *testing.T) {
	base := mustLayer(t, "base.yaml", "imds:\n  deadline: 30s\n  tags: true\nfiles:\n  - path: /etc/a\n    content: a\n")
	reset := mustLayer(t, "reset.yaml", "imds:\n  deadline: ~\nfiles:\n")
	m, cfg := mergeDecode(t, base, reset)
	if cfg.IMDS.Deadline.Duration != DefaultDeadline || !cfg.IMDS.Tags {
		t.Errorf("imds = %+v, want the default deadline and tags kept", cfg.IMDS)
	}
	if len(cfg.Files) != 0 {
		t.Errorf("files = %+v, want none", cfg.Files)
	}
	if src, line, _ := m.Origin("imds.deadline"); src != "reset.yaml" || line != 2 {
		t.Errorf("Origin(imds.deadline) = %s:%d, want the reset", src, line)
	}

	// After a reset a later layer may set the key again, even as another kind.
	again := rawLayer(t, "again.yaml", "imds:\n  deadline: 45s\n")
	_, cfg = mergeDecode(t, base, reset, again)
	if cfg.IMDS.Deadline.Duration != 45*time.Second {
		t.Errorf("deadline = %v, want 45s", cfg.IMDS.Deadline)
	}
	l1 := rawLayer(t, "one.yaml", "imds: x\n")
	l2 := rawLayer(t, "two.yaml", "imds: ~\n")
	l3 := rawLayer(t, "three.yaml", "imds:\n  tags: true\n")
	if _, cfg = mergeDecode(t, l1, l2, l3); !cfg.IMDS.Tags {
		t.Errorf("imds = %+v", cfg.IMDS)
	}
}

func TestMergeKindChange(t *testing.T) {
	tests := []struct {
		name       string
		base, over string
		want       string
	}{
		{
			name: "mapping to list",
			base: "aws:\n  region: us-east-1\n",
			over: "aws: [a]\n",
			want: "over.yaml:1:6: aws: a list here cannot replace a mapping set at base.yaml:2:3; a later layer may not change a key's kind",
		},
		{
			name: "scalar to mapping",
			base: "aws:\n  region: us-east-1\n",
			over: "aws:\n  region:\n    name: x\n",
			want: "over.yaml:3:5: aws.region: a mapping here cannot replace a scalar set at base.yaml:2:11; a later layer may not change a key's kind",
		},
		{
			name: "list to scalar",
			base: "files: []\n",
			over: "files: none\n",
			want: "over.yaml:1:8: files: a scalar here cannot replace a list set at base.yaml:1:8; a later layer may not change a key's kind",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Merge([]*Layer{rawLayer(t, "base.yaml", tt.base), rawLayer(t, "over.yaml", tt.over)})
			if err == nil || err.Error() != tt.want {
				t.Errorf("Merge error:\n%v\nwant:\n%s", err, tt.want)
			}
		})
	}
}

func TestMergeSkipsInclude(t *testing.T) {
	base := mustLayer(t, "base.yaml", "include:\n  - s3://b/k\nimds:\n  tags: true\n")
	over := mustLayer(t, "over.yaml", "include: [s3://b/other]\n")
	m, cfg := mergeDecode(t, base, over)
	if len(cfg.Include) != 0 {
		t.Errorf("include = %+v, want none after merging", cfg.Include)
	}
	if src, _, _ := m.Origin("include"); src != "" {
		t.Errorf("include came from %q, want no origin", src)
	}
}

func TestMergeLeavesLayersAlone(t *testing.T) {
	base := mustLayer(t, "base.yaml", "imds:\n  tags: true\n")
	over := mustLayer(t, "over.yaml", "imds:\n  allow_v1: true\n")
	before, _ := yaml.Marshal(base.Root)
	mergeDecode(t, base, over)
	_, cfg := mergeDecode(t, base)
	after, _ := yaml.Marshal(base.Root)
	if string(before) != string(after) || cfg.IMDS.AllowV1 {
		t.Errorf("merging changed a layer:\n%s\n→\n%s", before, after)
	}
}

func TestMergeEmpty(t *testing.T) {
	_, cfg := mergeDecode(t)
	if cfg.AWS.Deadline.Duration != DefaultDeadline || cfg.IMDS.Deadline.Duration != DefaultDeadline {
		t.Errorf("defaults not applied: %+v", cfg)
	}
	_, cfg = mergeDecode(t, nil, mustLayer(t, "empty.yaml", ""))
	if len(cfg.Files) != 0 {
		t.Errorf("got %+v", cfg)
	}
}

func TestDecodeErrorsSortedByLayer(t *testing.T) {
	base := mustLayer(t, "base.yaml", "\n\n\nfiles:\n  - path: /x\n    content: ${nope}\n")
	over := mustLayer(t, "over.yaml", "aws:\n  region: ${nope}\n")
	m, err := Merge([]*Layer{base, over})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Decode(map[string]string{"region": "x"})
	want := "base.yaml:6:14: files[0].content: unknown fact at byte 0 (name not shown: the value may be secret); known facts: region\n" +
		"over.yaml:2:11: aws.region: unknown fact ${nope} at byte 0; known facts: region"
	if err == nil || err.Error() != want {
		t.Errorf("errors:\n%v\nwant:\n%s", err, want)
	}
}

func TestConfigErrorfIsPositioned(t *testing.T) {
	base := mustLayer(t, "base.yaml", "files:\n  - path: /etc/a\n    content: a\n    owner: nginx\n")
	_, cfg := mergeDecode(t, base)
	got := cfg.Errorf("files[0].owner", "no user %q in the target root", "nginx").Error()
	if want := `base.yaml:4:12: files[0].owner: no user "nginx" in the target root`; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	var none *Config
	if got := none.Errorf("files", "x").Error(); got != "files: x" {
		t.Errorf("nil config: %s", got)
	}
}

func TestMergeByNameForPackagesAndCommands(t *testing.T) {
	base := mustLayer(t, "base.yaml", `packages:
  install: [hello, curl=7.88, jq]
commands:
  - {name: swap, argv: [swapon, -a]}
  - {name: motd, shell: "echo hi > /etc/motd"}
`)
	over := mustLayer(t, "over.yaml", `packages:
  install:
    - {name: curl, version: "8.0"}
    - {name: jq, remove: true}
    - tree
commands:
  - {name: motd, remove: true}
  - {name: swap, argv: [swapon, --all]}
`)
	_, cfg := mergeDecode(t, base, over)
	var pkgs []string
	for _, p := range cfg.Packages.Install {
		pkgs = append(pkgs, p.Name+"="+p.Version)
	}
	if got := strings.Join(pkgs, " "); got != "hello= curl=8.0 tree=" {
		t.Errorf("packages.install = %s", got)
	}
	if len(cfg.Commands) != 1 || strings.Join(cfg.Commands[0].Argv, " ") != "swapon --all" {
		t.Errorf("commands = %+v", cfg.Commands)
	}
}
