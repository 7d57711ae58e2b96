package config

import (
	"strings"
	"testing"
	"time"
)

func TestCommandValidation(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{name: "argv", src: "commands:\n  - {name: a, argv: [echo, hi]}\n"},
		{name: "shell", src: "commands:\n  - {name: a, shell: 'echo hi | tee /x'}\n"},
		{
			name: "both argv and shell, at the entry",
			src:  "commands:\n  - {name: a, argv: [true]}\n  - name: b\n    argv: [echo]\n    shell: echo\n",
			want: []string{`c.yaml:3:5: commands[1]: set argv or shell, not both: argv runs a program directly, shell runs a line with /bin/sh -c`},
		},
		{
			name: "neither",
			src:  "commands:\n  - name: a\n    cwd: /srv\n",
			want: []string{`c.yaml:2:5: commands[0]: set argv (the program and its arguments, as a list) or shell (a line for /bin/sh -c)`},
		},
		{
			name: "empty argv, empty program, blank shell",
			src:  "commands:\n  - {name: a, argv: []}\n  - {name: b, argv: ['', x]}\n  - {name: c, shell: '  '}\n",
			want: []string{
				`c.yaml:2:21: commands[0].argv: empty: give the program and its arguments, e.g. [systemctl, restart, nginx]`,
				`c.yaml:3:22: commands[1].argv[0]: empty: the first element is the program to run`,
				`c.yaml:4:22: commands[2].shell: empty: give the line for /bin/sh -c`,
			},
		},
		{
			name: "names: missing, bad, duplicate",
			src:  "commands:\n  - {argv: [a]}\n  - {name: 'has space', argv: [a]}\n  - {name: x, argv: [a]}\n  - {name: x, argv: [b]}\n",
			want: []string{
				`c.yaml:2:5: commands[0].name: required: a short name for the command, e.g. enable-swap; it names its step command:NAME`,
				`c.yaml:3:12: commands[1].name: want up to 64 letters, digits and . _ - : @ + ( ) [ ], starting with a letter or digit, got "has space"`,
				`c.yaml:5:12: commands[3].name: duplicate name "x": commands[2] at c.yaml:4:12 has it too; names are the commands' identities`,
			},
		},
		{
			name: "env: no =, bad key, reserved, duplicate; values never quoted",
			src:  "commands:\n  - name: a\n    argv: [a]\n    env: [hunter2secret, '1X=y', BOOTSTRAP_ROOT=/, A=1, A=2]\n",
			want: []string{
				`c.yaml:4:11: commands[0].env[0]: want KEY=VALUE, got a value without =`,
				`c.yaml:4:26: commands[0].env[1]: want KEY=VALUE with KEY made of letters, digits and _, not starting with a digit, got key "1X"`,
				`c.yaml:4:34: commands[0].env[2]: BOOTSTRAP_ROOT is set by bootstrap (the target root and the instance-id); use another name`,
				`c.yaml:4:57: commands[0].env[4]: A is already set by commands[0].env[3]`,
			},
		},
		{
			name: "paths",
			src:  "commands:\n  - {name: a, argv: [a], cwd: srv, creates: /}\n  - {name: b, argv: [a], cwd: /, creates: /x/../y}\n",
			want: []string{
				`c.yaml:2:31: commands[0].cwd: must be absolute (start with /), got "srv"`,
				`c.yaml:2:45: commands[0].creates: must name a file, not /`,
				`c.yaml:3:43: commands[1].creates: must not contain .., got "/x/../y"`,
			},
		},
		{
			name: "timeout and retries",
			src:  "commands:\n  - {name: a, argv: [a], timeout: 2h, retries: 11}\n  - {name: b, argv: [a], retry_on: [1]}\n  - {name: c, argv: [a], retries: 2, retry_on: [0, 256, 75]}\n",
			want: []string{
				`c.yaml:2:35: commands[0].timeout: must be at most 1h, got 2h`,
				`c.yaml:2:48: commands[0].retries: want 0 to 10 (runs after the first), got 11`,
				`c.yaml:3:36: commands[1].retry_on: retry_on needs retries: how many more times to run the command`,
				`c.yaml:4:49: commands[2].retry_on[0]: want an exit code from 1 to 255, got 0`,
				`c.yaml:4:52: commands[2].retry_on[1]: want an exit code from 1 to 255, got 256`,
			},
		},
		{
			name: "stage and frequency",
			src:  "commands:\n  - {name: a, argv: [a], stage: boot, frequency: once}\n",
			want: []string{
				`c.yaml:2:33: commands[0].stage: want early (before everything else, like cloud-init's bootcmd) or final (after everything else, like runcmd), got "boot"`,
				`c.yaml:2:50: commands[0].frequency: want per-instance (once per instance-id) or always (every run), got "once"`,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeOne(t, tt.src)
			var got []string
			if err != nil {
				got = strings.Split(err.Error(), "\n")
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("errors:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if strings.Contains(strings.Join(got, "\n"), "hunter2") {
				t.Fatalf("an env value leaked into an error")
			}
		})
	}
}

func TestCommandDefaults(t *testing.T) {
	cfg, err := decodeOne(t, "commands:\n  - {name: boot, stage: early, argv: [a]}\n  - {name: last, shell: b}\n  - {name: pinned, stage: early, frequency: per-instance, timeout: 5, argv: [c]}\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		stage, freq string
		timeout     time.Duration
	}{
		{StageEarly, FrequencyAlways, DefaultCommandTimeout},
		{StageFinal, FrequencyPerInstance, DefaultCommandTimeout},
		{StageEarly, FrequencyPerInstance, 5 * time.Second},
	}
	for i, w := range want {
		c := cfg.Commands[i]
		if c.Stage != w.stage || c.Frequency != w.freq || c.Timeout.Duration != w.timeout {
			t.Errorf("commands[%d] = %s %s %s, want %s %s %s", i, c.Stage, c.Frequency, c.Timeout, w.stage, w.freq, w.timeout)
		}
	}
}
