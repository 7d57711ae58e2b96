package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestServicesValidation(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{name: "full text", src: "services:\n  - name: app.service\n    content: |\n      [Unit]\n      Description=App\n      [Service]\n      ExecStart=/bin/true\n      [Install]\n      WantedBy=multi-user.target\n    enabled: true\n    started: true\n"},
		{name: "sections and a drop-in", src: "services:\n  - name: app.timer\n    sections:\n      - section: Timer\n        options: [OnCalendar=daily, Persistent=true]\n      - section: Install\n        options: [WantedBy=timers.target]\n    dropins:\n      - name: 10-x.conf\n        content: \"[Timer]\\nRandomizedDelaySec=5m\\n\"\n    enabled: true\n"},
		{name: "enable a packaged unit", src: "services:\n  - name: ssh.service\n    enabled: true\n    started: true\n"},
		{name: "mask", src: "services:\n  - name: apt-daily.timer\n    masked: true\n"},
		{name: "install only in a drop-in", src: "services:\n  - name: a.service\n    content: \"[Service]\\nExecStart=/bin/true\\n\"\n    dropins:\n      - name: i.conf\n        content: \"[Install]\\nWantedBy=x.target\\n\"\n    enabled: true\n"},
		{
			name: "no suffix",
			src:  "services:\n  - name: app\n    enabled: true\n",
			want: []string{`c.yaml:2:11: services[0].name: "app" has no unit type suffix; want one of .service, .socket, .device, .mount, .automount, .swap, .target, .path, .timer, .slice, .scope`},
		},
		{
			name: "bad characters and missing name",
			src:  "services:\n  - name: 'my app.service'\n    enabled: true\n  - enabled: true\n",
			want: []string{
				`c.yaml:2:11: services[0].name: "my app.service" is not a valid unit name: letters, digits and :_.\- only, with at most one @ (a template)`,
				`c.yaml:4:5: services[1].name: required: the unit's name with its type, e.g. app.service or app.timer`,
			},
		},
		{
			name: "option before a section, named by its line in the unit",
			src:  "services:\n  - name: a.service\n    content: |\n      # comment\n      ExecStart=/bin/true\n",
			want: []string{`c.yaml:3:14: services[0].content: line 2 of the unit: an option before the first [Section] header`},
		},
		{
			name: "a line that is not an option",
			src:  "services:\n  - name: a.service\n    content: \"[Service]\\nExecStart /bin/true\\n\"\n",
			want: []string{`c.yaml:3:14: services[0].content: line 2 of the unit: want Key=value, a [Section] header or a # comment`},
		},
		{
			name: "content and sections, nothing to do",
			src:  "services:\n  - name: a.service\n    content: \"[Service]\\n\"\n    sections: []\n  - name: b.service\n",
			want: []string{
				`c.yaml:2:5: services[0]: set content or sections, not both`,
				`c.yaml:5:5: services[1]: nothing to do: set content or sections (the unit), dropins, enabled, started or masked`,
			},
		},
		{
			name: "bad structured options",
			src:  "services:\n  - name: a.service\n    sections:\n      - section: 'Ser vice'\n        options: [ExecStart, 'Exec Start=x', \"A=b\\nc\"]\n",
			want: []string{
				`c.yaml:4:18: services[0].sections[0].section: want a section name like Unit, Service or Install, got "Ser vice"`,
				`c.yaml:5:19: services[0].sections[0].options[0]: want Key=value`,
				`c.yaml:5:30: services[0].sections[0].options[1]: the key before = must be letters, digits, _ or -`,
				`c.yaml:5:46: services[0].sections[0].options[2]: the value must be one line; repeat the key for more values`,
			},
		},
		{
			name: "a value ending in a backslash would swallow the next option",
			src:  "services:\n  - name: a.service\n    sections:\n      - section: Service\n        options: ['ExecStart=/bin/echo \\', ExecStartPost=/bin/true]\n",
			want: []string{`c.yaml:5:19: services[0].sections[0].options[0]: the value must not end in \: systemd would continue it onto the next option`},
		},
		{
			name: "enabled without [Install]",
			src:  "services:\n  - name: a.service\n    content: \"[Service]\\nExecStart=/bin/true\\n\"\n    enabled: true\n",
			want: []string{`c.yaml:4:14: services[0].enabled: the unit has no [Install] section with WantedBy=, RequiredBy=, Alias= or Also=, so enabling it would do nothing`},
		},
		{
			name: "masked with content, start a template",
			src:  "services:\n  - name: a.service\n    content: \"[Service]\\n\"\n    masked: true\n  - name: t@.service\n    started: true\n",
			want: []string{
				`c.yaml:4:13: services[0].masked: a masked unit is a link to /dev/null: drop content, sections and dropins, or masked`,
				`c.yaml:6:14: services[1].started: "t@.service" is a template; start an instance of it, e.g. t@name.service`,
			},
		},
		{
			name: "drop-ins",
			src:  "services:\n  - name: a.service\n    dropins:\n      - name: x.txt\n        content: \"[Service]\\n\"\n      - name: y.conf\n      - name: y.conf\n        content: \"[Service]\\n\"\n",
			want: []string{
				`c.yaml:4:15: services[0].dropins[0].name: want a file name ending in .conf (letters, digits, :_.@- only), got "x.txt"`,
				`c.yaml:6:9: services[0].dropins[1]: set content (the drop-in's text) or sections`,
				`c.yaml:7:15: services[0].dropins[2].name: duplicate drop-in "y.conf": dropins[1] writes it too`,
			},
		},
		{
			name: "duplicate unit",
			src:  "services:\n  - name: a.service\n    enabled: true\n  - name: a.service\n    started: true\n",
			want: []string{`c.yaml:4:11: services[1].name: duplicate unit "a.service": services[0] at c.yaml:2:11 configures it too`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeOne(t, tt.src)
			got := ""
			if err != nil {
				got = err.Error()
			}
			if want := strings.Join(tt.want, "\n"); got != want {
				t.Errorf("errors:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestCheckUnitText(t *testing.T) {
	tests := []struct {
		text string
		line int
	}{
		{"[Unit]\nDescription=x\n", 0},
		{"\n# c\n; c\n[Service]\nExecStart=/bin/sh -c \\\n  'echo hi'\n", 0},
		{"[Service]\nExecStart=/bin/true\\\nnot an option\n", 0}, // a continuation
		{"Description=x\n[Unit]\n", 1},
		{"[Unit\n", 1},
		{"[Unit]\n[]\n", 2},
		{"[Unit]\nA=1\nB\n", 3},
		{"[Unit]\n=x\n", 2},
		{"[Unit]\nA=\x00\n", 2},
	}
	for _, tt := range tests {
		line, msg := CheckUnitText(tt.text)
		if line != tt.line || (line == 0) != (msg == "") {
			t.Errorf("CheckUnitText(%q) = %d %q, want line %d", tt.text, line, msg, tt.line)
		}
	}
}

func TestServicesMergeByName(t *testing.T) {
	base := mustLayer(t, "base.yaml", "services:\n  - name: a.service\n    enabled: true\n  - name: b.service\n    enabled: true\n  - name: c.service\n    masked: true\n")
	role := mustLayer(t, "role.yaml", "services:\n  - name: b.service\n    started: true\n  - name: c.service\n    remove: true\n  - name: d.timer\n    enabled: false\n")
	m, err := Merge([]*Layer{base, role})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := m.Decode(testFacts)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range cfg.Services {
		got = append(got, fmt.Sprintf("%s enabled=%v started=%v", s.Name, s.Enabled != nil && *s.Enabled, s.Started))
	}
	want := "a.service enabled=true started=false\nb.service enabled=false started=true\nd.timer enabled=false started=false"
	if strings.Join(got, "\n") != want {
		t.Errorf("merged:\n%s\nwant:\n%s", strings.Join(got, "\n"), want)
	}
}
