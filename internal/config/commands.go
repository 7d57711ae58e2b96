package config

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
)

// Command stages and frequencies, as cloud-init has them: bootcmd runs early
// on every boot, runcmd last and once per instance.
const (
	StageEarly = "early" // before every other capability (cloud-init's bootcmd)
	StageFinal = "final" // after every other capability (cloud-init's runcmd)

	FrequencyPerInstance = "per-instance" // once per instance-id
	FrequencyAlways      = "always"       // on every run (every boot)
)

// Command limits, in one place so docs and code agree.
const (
	DefaultCommandTimeout = 30 * time.Minute
	MaxCommandRetries     = 10
	maxCommandName        = 64
)

// Commands is the commands: section. Entries merge across layers by name.
type Commands []Command

// Command is one operator's command: a program (argv) or a shell script line
// (shell), run at a stage with a frequency.
type Command struct {
	// Name is the command's identity across layers and in the journal: its
	// step is command:NAME.
	Name string `yaml:"name" config:"key"`
	// Argv is the program and its arguments, run without a shell.
	Argv []string `yaml:"argv" config:"sensitive"`
	// Shell is a script for /bin/sh -c, when a shell is wanted (pipes,
	// redirections). Exactly one of argv and shell.
	Shell string `yaml:"shell" config:"sensitive"`
	// Env is added to the environment, as KEY=VALUE.
	Env []string `yaml:"env" config:"sensitive"`
	// Cwd is the working directory, a path on the target (under --root);
	// default the target root itself.
	Cwd     string   `yaml:"cwd"`
	Timeout Duration `yaml:"timeout"` // default 30m, at most 1h, per attempt
	// Retries is how many more times the command runs when it exits with a
	// code in RetryOn (any non-zero code when RetryOn is empty).
	Retries int   `yaml:"retries"`
	RetryOn []int `yaml:"retry_on"`
	// Creates is a path on the target: when it exists the command is not
	// run (it has done its work before).
	Creates string `yaml:"creates"`
	// Stage is early or final (default).
	Stage string `yaml:"stage"`
	// Frequency is per-instance (default for final) or always (default for
	// early).
	Frequency string `yaml:"frequency"`
}

// commandNameRE is what a name may be: it becomes a journal step name, so
// no spaces or control characters. Brackets and parentheses allow names
// like runcmd[2].
var commandNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:@+()\[\]-]*$`)

// envKeyRE is a portable environment variable name.
var envKeyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// reservedEnv are set by bootstrap for every command.
var reservedEnv = map[string]bool{"BOOTSTRAP_ROOT": true, "BOOTSTRAP_INSTANCE_ID": true}

func (cs *Commands) check(c *checker, p string) {
	first := map[string]int{}
	for i, cmd := range *cs {
		if cmd.Name == "" {
			continue
		}
		at := fmt.Sprintf("%s[%d].name", p, i)
		if j, dup := first[cmd.Name]; dup {
			src, line, col := c.m.locate(fmt.Sprintf("%s[%d].name", p, j))
			c.errorf(at, "duplicate name %s: %s[%d] at %s:%d:%d has it too; names are the commands' identities",
				quoteShort(cmd.Name), p, j, src, line, col)
			continue
		}
		first[cmd.Name] = i
	}
}

func (cmd *Command) check(c *checker, p string) {
	at := func(key string) string { return joinKey(p, key) }

	switch {
	case cmd.Name == "":
		c.errorf(at("name"), "required: a short name for the command, e.g. enable-swap; it names its step command:NAME")
	case len(cmd.Name) > maxCommandName || !commandNameRE.MatchString(cmd.Name):
		c.errorf(at("name"), "want up to %d letters, digits and . _ - : @ + ( ) [ ], starting with a letter or digit, got %s",
			maxCommandName, quoteShort(cmd.Name))
	}

	hasArgv, hasShell := c.set[at("argv")], c.set[at("shell")]
	switch {
	case hasArgv && hasShell:
		c.errorf(p, "set argv or shell, not both: argv runs a program directly, shell runs a line with /bin/sh -c")
	case !hasArgv && !hasShell:
		c.errorf(p, "set argv (the program and its arguments, as a list) or shell (a line for /bin/sh -c)")
	case hasArgv && len(cmd.Argv) == 0:
		c.errorf(at("argv"), "empty: give the program and its arguments, e.g. [systemctl, restart, nginx]")
	case hasArgv && cmd.Argv[0] == "":
		c.errorf(at("argv[0]"), "empty: the first element is the program to run")
	case hasShell && strings.TrimSpace(cmd.Shell) == "":
		c.errorf(at("shell"), "empty: give the line for /bin/sh -c")
	}
	for i, a := range cmd.Argv {
		if strings.IndexByte(a, 0) >= 0 {
			c.errorf(fmt.Sprintf("%s[%d]", at("argv"), i), "must not contain a NUL byte")
		}
	}
	if strings.IndexByte(cmd.Shell, 0) >= 0 {
		c.errorf(at("shell"), "must not contain a NUL byte")
	}

	seen := map[string]int{}
	for i, kv := range cmd.Env {
		ep := fmt.Sprintf("%s[%d]", at("env"), i)
		key, _, ok := strings.Cut(kv, "=")
		switch {
		case !ok:
			// The value may be secret: quote nothing of it.
			c.errorf(ep, "want KEY=VALUE, got a value without =")
		case !envKeyRE.MatchString(key):
			c.errorf(ep, "want KEY=VALUE with KEY made of letters, digits and _, not starting with a digit, got key %s", quoteShort(key))
		case reservedEnv[key]:
			c.errorf(ep, "%s is set by bootstrap (the target root and the instance-id); use another name", key)
		default:
			if j, dup := seen[key]; dup {
				c.errorf(ep, "%s is already set by %s[%d]", key, at("env"), j)
				continue
			}
			seen[key] = i
		}
	}

	if cmd.Cwd != "" {
		if msg := checkDirPath(cmd.Cwd); msg != "" {
			c.errorf(at("cwd"), "%s", msg)
		}
	}
	if cmd.Creates != "" {
		if msg := checkFilePath(cmd.Creates); msg != "" {
			c.errorf(at("creates"), "%s", msg)
		}
	}

	c.deadline(at("timeout"), &cmd.Timeout, DefaultCommandTimeout)

	switch {
	case cmd.Retries < 0 || cmd.Retries > MaxCommandRetries:
		c.errorf(at("retries"), "want 0 to %d (runs after the first), got %d", MaxCommandRetries, cmd.Retries)
	case len(cmd.RetryOn) > 0 && cmd.Retries == 0:
		c.errorf(at("retry_on"), "retry_on needs retries: how many more times to run the command")
	}
	for i, code := range cmd.RetryOn {
		if code < 1 || code > 255 {
			c.errorf(fmt.Sprintf("%s[%d]", at("retry_on"), i), "want an exit code from 1 to 255, got %d", code)
		}
	}

	switch cmd.Stage {
	case "":
		cmd.Stage = StageFinal
	case StageEarly, StageFinal:
	default:
		c.errorf(at("stage"), "want %s (before everything else, like cloud-init's bootcmd) or %s (after everything else, like runcmd), got %s",
			StageEarly, StageFinal, quoteShort(cmd.Stage))
	}
	switch cmd.Frequency {
	case "":
		cmd.Frequency = FrequencyPerInstance
		if cmd.Stage == StageEarly {
			cmd.Frequency = FrequencyAlways
		}
	case FrequencyPerInstance, FrequencyAlways:
	default:
		c.errorf(at("frequency"), "want %s (once per instance-id) or %s (every run), got %s",
			FrequencyPerInstance, FrequencyAlways, quoteShort(cmd.Frequency))
	}
}

// checkDirPath says what is wrong with a directory path on the target.
func checkDirPath(p string) string {
	switch {
	case strings.ContainsRune(p, 0):
		return "must not contain a NUL byte"
	case !strings.HasPrefix(p, "/"):
		return fmt.Sprintf("must be absolute (start with /), got %s", quoteShort(p))
	case strings.Contains("/"+p+"/", "/../"):
		return fmt.Sprintf("must not contain .., got %s", quoteShort(p))
	case path.Clean(p) != p:
		return fmt.Sprintf("must be clean: write %s, not %s", quoteShort(path.Clean(p)), quoteShort(p))
	}
	return ""
}
