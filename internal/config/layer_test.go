package config

import (
	"fmt"
	"strings"
	"testing"
)

// errLines parses src as one layer and returns its error lines ("" when
// it parses).
func errLines(t *testing.T, src string) []string {
	t.Helper()
	_, err := ParseLayer("base.yaml", []byte(src))
	if err == nil {
		return nil
	}
	if _, ok := err.(ErrorList); !ok {
		t.Fatalf("ParseLayer returned %T, want ErrorList", err)
	}
	return strings.Split(err.Error(), "\n")
}

func TestParseLayerErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{
			name: "unknown key with suggestion",
			src:  "imds:\n  alow_v1: true\n",
			want: []string{`base.yaml:2:3: imds: unknown key "alow_v1" (did you mean "allow_v1"?)`},
		},
		{
			name: "unknown key swapped letters",
			src:  "aws:\n  regoin: us-east-1\n",
			want: []string{`base.yaml:2:3: aws: unknown key "regoin" (did you mean "region"?)`},
		},
		{
			name: "unknown key lists known keys",
			src:  "saltstack:\n  run_list: []\n",
			want: []string{`base.yaml:1:1: unknown key "saltstack"; known keys: aws, chef, commands, files, imds, include, network, packages, puppet, services, version`},
		},
		{
			name: "cloud-config key gets a hint",
			src:  "write_files: []\n",
			want: []string{`base.yaml:1:1: unknown key "write_files": this looks like cloud-config; start the user-data with #cloud-config (files go under files:)`},
		},
		{
			name: "mapping wanted, list given",
			src:  "aws:\n  s3: [a]\n",
			want: []string{`base.yaml:2:7: aws.s3: want a mapping with keys endpoint, path_style, got a list`},
		},
		{
			name: "list wanted, mapping given",
			src:  "files:\n  path: /etc/x\n",
			want: []string{`base.yaml:2:3: files: want a list, got a mapping; start each entry with "- "`},
		},
		{
			name: "scalar wanted, mapping given",
			src:  "aws:\n  region: {a: b}\n",
			want: []string{`base.yaml:2:11: aws.region: want a string, got a mapping`},
		},
		{
			name: "bool",
			src:  "imds:\n  tags: yes\n",
			want: []string{`base.yaml:2:9: imds.tags: want true or false, got "yes"`},
		},
		{
			name: "int",
			src:  "version: one\n",
			want: []string{`base.yaml:1:10: version: want a whole number, got "one"`},
		},
		{
			name: "duration",
			src:  "aws:\n  deadline: soon\n",
			want: []string{`base.yaml:2:13: aws.deadline: want a duration like 90s or 2m, or a whole number of seconds, got "soon"`},
		},
		{
			name: "mode not octal",
			src:  "files:\n  - path: /x\n    content: x\n    mode: 0999\n",
			want: []string{`base.yaml:4:11: files[0].mode: want an octal mode like 0644, "0600" or 0o755, got "0999"`},
		},
		{
			name: "mode too large",
			src:  "files:\n  - path: /x\n    content: x\n    mode: 017777\n",
			want: []string{`base.yaml:4:11: files[0].mode: mode "017777" is above 07777`},
		},
		{
			name: "duplicate key",
			src:  "imds:\n  tags: true\n  tags: false\n",
			want: []string{`base.yaml:3:3: imds.tags: duplicate key; it is already set at line 2:3`},
		},
		{
			name: "binary tag",
			src:  "files:\n  - path: /x\n    content: !!binary aGk=\n",
			want: []string{`base.yaml:3:14: files[0].content: binary values (!!binary) are not supported; write the base64 text and set encoding: base64`},
		},
		{
			name: "merge key",
			src:  "imds: &i {tags: true}\naws:\n  <<: *i\n",
			want: []string{`base.yaml:3:3: aws: merge keys (<<) are not supported; repeat the keys instead`},
		},
		{
			name: "include item of the wrong kind",
			src:  "include:\n  - [a]\n",
			want: []string{`base.yaml:2:5: include[0]: want a source (s3://, https://, file://) or a mapping with source and sha256, got a list`},
		},
		{
			name: "all problems, sorted by position",
			src:  "version: x\nimds:\n  deadline: [1]\n  tag: true\nfiles:\n  - path: /x\n    mode: rw\n",
			want: []string{
				`base.yaml:1:10: version: want a whole number, got "x"`,
				`base.yaml:3:13: imds.deadline: want a duration like 90s or 2m, or a whole number of seconds, got a list`,
				`base.yaml:4:3: imds: unknown key "tag" (did you mean "tags"?)`,
				`base.yaml:7:11: files[0].mode: want an octal mode like 0644, "0600" or 0o755, got "rw"`,
			},
		},
		{
			name: "syntax error",
			src:  "imds:\n  tags: true\n aws: x\n",
			want: []string{`base.yaml:3: YAML syntax: did not find expected key (on this line or in the block or list that starts on it)`},
		},
		{
			name: "scanner error",
			src:  "imds:\n  tags: true\naws: x: y\n",
			want: []string{`base.yaml:3: YAML syntax: mapping values are not allowed in this context`},
		},
		{
			name: "tab in the indentation of line 3",
			src:  "files:\n  - path: /x\n\tcontent: x\n",
			want: []string{`base.yaml:3:1: YAML syntax: found a tab character that violates indentation (indent with spaces: YAML does not allow tabs there)`},
		},
		{
			name: "tab after spaces, lines after a mapping",
			src:  "imds:\n  tags: true\n\n  \taws: x\n",
			want: []string{`base.yaml:4:3: YAML syntax: found a tab character that violates indentation (indent with spaces: YAML does not allow tabs there)`},
		},
		{
			name: "tab starting a token is on its own line already",
			src:  "a: 1\nb:\n\t- x\n",
			want: []string{`base.yaml:3: YAML syntax: found character that cannot start any token`},
		},
		{
			name: "two documents",
			src:  "imds: {}\n---\naws: {}\n",
			want: []string{`base.yaml:2:1: a second YAML document (after ---); a layer is one document: put the other in a layer of its own`},
		},
		{
			name: "top is not a mapping",
			src:  "- a\n",
			want: []string{`base.yaml:1:1: want a mapping of keys at the top of the document, got a list`},
		},
		{
			name: "malformed reference",
			src:  "aws:\n  region: ${Region}\n",
			want: []string{`base.yaml:2:11: aws.region: malformed ${ at byte 0: write ${name} with a name of a-z, 0-9 and _, or ${tag:Key}, or $${ for a literal ${`},
		},
		{
			name: "reference in a bool is checked later",
			src:  "imds:\n  tags: ${tags}\n",
		},
		{
			name: "nulls are fine anywhere",
			src:  "imds: ~\naws:\n  s3:\nfiles:\n  - path: /x\n    content:\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := errLines(t, tt.src)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestParseLayerEmpty(t *testing.T) {
	for _, src := range []string{"", "\n\n", "# only a comment\n", "---\n", "~\n", "#bootstrap-config\n"} {
		l, err := ParseLayer("empty.yaml", []byte(src))
		if err != nil {
			t.Errorf("ParseLayer(%q): %v", src, err)
			continue
		}
		if l.Root == nil || len(l.Root.Content) != 0 {
			t.Errorf("ParseLayer(%q): want an empty mapping, got %+v", src, l.Root)
		}
	}
}

func TestAliasBombs(t *testing.T) {
	// Many small copies: ten aliases of ten aliases, five levels deep.
	nested := "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
	prev := "a"
	for _, n := range []string{"b", "c", "d", "e", "f"} {
		nested += n + ": &" + n + " [" + strings.Repeat("*"+prev+", ", 9) + "*" + prev + "]\n"
		prev = n
	}
	// A large anchor repeated: few nodes, many bytes (the 970 KB
	// document that drove plan to 1.8 GB).
	repeated := func(anchor, aliases int) string {
		var b strings.Builder
		b.WriteString("files:\n  - path: /etc/a\n    content: &big " + strings.Repeat("x", anchor) + "\n")
		for i := range aliases {
			fmt.Fprintf(&b, "  - path: /etc/f%d\n    content: *big\n", i)
		}
		return b.String()
	}
	tests := []struct {
		name, src string
		want      string // "" when the document must parse
	}{
		{"nested aliases", nested, `bomb.yaml:4:36: YAML aliases expand to more than 10000 values; write the values out`},
		{"a 900 KB anchor twice", repeated(900_000, 2), `bomb.yaml:7:14: YAML aliases expand to more than 1024 KiB of values (this alias repeats the anchor at line 3); write the values out or repeat less`},
		{"a 900 KB anchor 2,000 times", repeated(900_000, 2000), `bomb.yaml:7:14: YAML aliases expand to more than 1024 KiB of values (this alias repeats the anchor at line 3); write the values out or repeat less`},
		{"a 900 KB anchor once", repeated(900_000, 1), ""},
		{"a 500 byte anchor 2,000 times", repeated(500, 2000), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseDocument("bomb.yaml", []byte(tt.src))
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tt.want {
				t.Errorf("got error %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestAliasesExpand(t *testing.T) {
	src := "imds: &i\n  tags: true\nfiles:\n  - &f\n    path: /a\n    content: x\n"
	l, err := ParseLayer("a.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	m, err := Merge([]*Layer{l})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := m.Decode(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.IMDS.Tags || len(cfg.Files) != 1 {
		t.Errorf("got %+v", cfg)
	}
}

func TestIncludes(t *testing.T) {
	const sum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF"
	tests := []struct {
		name string
		src  string
		want []Include
		err  []string
	}{
		{name: "none", src: "imds: {}\n"},
		{
			name: "scalar and mapping forms, expanded",
			src:  "include:\n  - s3://cfg-${region}/base.yaml\n  - source: https://example.com/x.yaml\n    sha256: " + sum + "\n  - file:///etc/bootstrap/local.yaml\n",
			want: []Include{
				{Source: "s3://cfg-eu-west-1/base.yaml"},
				{Source: "https://example.com/x.yaml", SHA256: strings.ToLower(sum)},
				{Source: "file:///etc/bootstrap/local.yaml"},
			},
		},
		{
			name: "bad entries",
			src:  "include:\n  - s3://bucket\n  - source: http://example.com/x\n    sha256: abc\n  - file://etc/x\n  - ${nope}\n",
			err: []string{
				`base.yaml:2:5: include[0].source: no key after the bucket; want s3://bucket/key`,
				`base.yaml:3:13: include[1].source: plain http is not allowed; use https`,
				`base.yaml:4:13: include[1].sha256: want 64 hex digits (as sha256sum prints), got 3 characters`,
				`base.yaml:5:5: include[2].source: file URLs need an absolute path after file:// (three slashes: file:///etc/x)`,
				`base.yaml:6:5: include[3]: unknown fact ${nope} at byte 0; known facts: region`,
			},
		},
	}
	facts := map[string]string{"region": "eu-west-1"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := ParseLayer("base.yaml", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			got, err := l.Includes(func(s string) (string, error) { return Expand(s, facts) })
			if tt.err != nil {
				if err == nil || err.Error() != strings.Join(tt.err, "\n") {
					t.Fatalf("errors:\n%v\nwant:\n%s", err, strings.Join(tt.err, "\n"))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("include[%d] = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		e    Error
		want string
	}{
		{Error{Source: "a.yaml", Line: 3, Column: 5, Path: "files[2].mode", Msg: "bad"}, "a.yaml:3:5: files[2].mode: bad"},
		{Error{Source: "a.yaml", Line: 3, Msg: "bad"}, "a.yaml:3: bad"},
		{Error{Source: "a.yaml", Msg: "bad"}, "a.yaml: bad"},
		{Error{Path: "aws", Msg: "bad"}, "aws: bad"},
	}
	for _, tt := range tests {
		if got := tt.e.Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
	list := ErrorList{&tests[0].e, &tests[1].e}
	if got, want := list.Error(), "a.yaml:3:5: files[2].mode: bad\na.yaml:3: bad"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
