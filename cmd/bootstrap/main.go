// Command bootstrap brings a fresh machine into service: it reads instance
// metadata and configuration (user-data, S3 layers, local files), then writes
// files, runs scripts and, in later releases, registers Chef/Puppet and sets
// up networks — once per instance, under a target root.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/engine"
	"github.com/opsboot/bootstrap/internal/puppet"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/secret"
	"github.com/opsboot/bootstrap/internal/state"
)

// Stamped at build time with -ldflags "-X main.version=… -X main.commit=…".
var (
	version = "dev"
	commit  = "unknown"
)

const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := Main(ctx, autosignArgs(os.Args[0], os.Args[1:]), os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// globals are the flags every command accepts, before or after its name.
type globals struct {
	config, datasource, datasourceDir, root, stateDir, logFormat string
	image                                                        bool
}

func (g *globals) register(fs *flag.FlagSet) {
	// Current values as defaults: flags given before the command survive the
	// command's own parse.
	fs.StringVar(&g.config, "config", g.config, "configuration: a file, s3://bucket/key, https://…, or - for stdin (default: user-data from the datasource)")
	fs.StringVar(&g.datasource, "datasource", g.datasource, "where instance facts and user-data come from: auto, ec2, file or none")
	fs.StringVar(&g.datasourceDir, "datasource-dir", g.datasourceDir, "directory with user-data and meta-data, for --datasource file")
	fs.StringVar(&g.root, "root", g.root, "apply under this target root")
	fs.BoolVar(&g.image, "image", g.image, "an image build: write and install only what belongs in an image; registrations, keys and device-bound network config wait for first boot")
	fs.StringVar(&g.stateDir, "state-dir", g.stateDir, "where per-instance records, the journal and the lock live")
	fs.StringVar(&g.logFormat, "log-format", g.logFormat, "log format on stderr: text or json")
}

type command struct {
	name, summary, usage string
	run                  func(ctx context.Context, c *cli, args []string) int
	flags                func(fs *flag.FlagSet, c *cli)
	// usesRoot: --root must name an existing directory.
	usesRoot bool
}

var commands []*command

// cli is one invocation: streams, parsed flags, logger.
type cli struct {
	g              globals
	stdin          io.Reader
	stdout, stderr io.Writer
	redactor       *secret.Redactor
	log            *slog.Logger
	// command-specific flags
	json    bool
	wait    bool
	timeout time.Duration
	keep    bool
	policy  string
}

// Main runs the CLI and returns the exit status. Tests call it in-process.
func Main(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	c := &cli{
		g:     globals{datasource: "auto", root: "/", stateDir: "/var/lib/bootstrap", logFormat: "text"},
		stdin: stdin, stdout: stdout, stderr: stderr, redactor: &secret.Redactor{},
	}
	top := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	top.SetOutput(stderr)
	c.g.register(top)
	top.Usage = func() { c.usage(top) }
	if err := top.Parse(args); err != nil {
		return usageExit(err)
	}
	rest := top.Args()
	if len(rest) == 0 {
		c.usage(top)
		return exitUsage
	}
	if rest[0] == "help" {
		if len(rest) > 1 {
			rest = []string{rest[1], "-h"}
		} else {
			top.SetOutput(stdout)
			c.usage(top)
			return exitOK
		}
	}
	var cmd *command
	for _, k := range commands {
		if k.name == rest[0] {
			cmd = k
		}
	}
	if cmd == nil {
		fmt.Fprintf(stderr, "bootstrap: unknown command %q (see bootstrap --help)\n", rest[0])
		return exitUsage
	}
	fs := flag.NewFlagSet("bootstrap "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.g.register(fs)
	if cmd.flags != nil {
		cmd.flags(fs, c)
	}
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: bootstrap %s\n\n%s\n\nflags:\n", cmd.usage, cmd.summary)
		fs.PrintDefaults()
	}
	if err := fs.Parse(rest[1:]); err != nil {
		return usageExit(err)
	}
	if c.g.logFormat != "text" && c.g.logFormat != "json" {
		fmt.Fprintf(stderr, "bootstrap: --log-format must be text or json, not %q\n", c.g.logFormat)
		return exitUsage
	}
	if err := c.g.resolve(cmd.usesRoot); err != nil {
		fmt.Fprintf(stderr, "bootstrap %s: %v\n", cmd.name, err)
		return exitUsage
	}
	c.log = c.newLogger()
	return cmd.run(ctx, c, fs.Args())
}

// resolve checks the path flags and makes them absolute, once, at start:
// scripts run with the target root as working directory, so a relative
// --state-dir or --root would name another place for them, and messages
// should name the file the operator means wherever they read them.
func (g *globals) resolve(checkRoot bool) error {
	for _, p := range []*string{&g.root, &g.stateDir, &g.datasourceDir} {
		if *p == "" {
			continue
		}
		abs, err := filepath.Abs(*p)
		if err != nil {
			return err
		}
		*p = abs
	}
	if checkRoot {
		fi, err := os.Stat(g.root)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("--root %s: no such directory; create it (the target root is never created) or fix the flag", g.root)
		case err != nil:
			return fmt.Errorf("--root %s: %w", g.root, err)
		case !fi.IsDir():
			return fmt.Errorf("--root %s: not a directory", g.root)
		}
	}
	return g.resolveConfig()
}

// resolveConfig makes a local --config absolute and refuses what would
// otherwise be read as a strange local path: plain http:// (never trusted
// without a sha256, which --config cannot give) and unknown URL schemes.
func (g *globals) resolveConfig() error {
	src := g.config
	switch {
	case src == "" || src == "-" || strings.HasPrefix(src, "s3://") || strings.HasPrefix(src, "https://"):
		return nil
	case strings.HasPrefix(src, "http://"):
		return fmt.Errorf("--config %s: plain http:// is only allowed with a sha256 to check the content against, and --config has none; use https://, s3:// or a local file", src)
	}
	path, isURL := strings.CutPrefix(src, "file://")
	if scheme, _, ok := strings.Cut(src, "://"); ok && !isURL && !strings.ContainsAny(scheme, "/.") {
		return fmt.Errorf("--config %s: unsupported scheme %s://; want a file path, file://, s3://, https:// or - for stdin", src, scheme)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return err
	}
	if isURL {
		abs = "file://" + abs
	}
	g.config = abs
	return nil
}

func usageExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	return exitUsage
}

func (c *cli) usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "bootstrap brings a fresh machine into service from instance metadata and configuration.\n\nusage: bootstrap [flags] COMMAND [flags] [args]\n\ncommands:\n")
	for _, k := range commands {
		fmt.Fprintf(w, "  %-9s %s\n", k.name, k.summary)
	}
	fmt.Fprintf(w, "\nglobal flags (before or after the command):\n")
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nexit status: 0 done, 1 a step failed, 2 bad input or usage.\nRun 'bootstrap help COMMAND' for a command's flags.\n")
}

func (c *cli) newLogger() *slog.Logger {
	var h slog.Handler
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	if c.g.logFormat == "json" {
		h = slog.NewJSONHandler(c.stderr, opts)
	} else {
		h = slog.NewTextHandler(c.stderr, opts)
	}
	return slog.New(c.redactor.Handler(h))
}

func (c *cli) input(datasourceDefault string) engine.Input {
	ds := c.g.datasource
	if ds == "auto" && datasourceDefault != "" {
		ds = datasourceDefault
	}
	return engine.Input{
		Datasource: ds, DatasourceDir: c.g.datasourceDir, Config: c.g.config, Stdin: c.stdin,
		Root: c.g.root, Log: c.log, Redactor: c.redactor, Image: c.g.image,
	}
}

// fail prints err (redacted) and returns its exit status.
func (c *cli) fail(err error) int {
	code := engine.ExitCode(err)
	msg := c.redactor.Redact(err.Error())
	fmt.Fprintf(c.stderr, "bootstrap: %s\n", strings.ReplaceAll(msg, "\n", "\n  "))
	return code
}

func init() {
	commands = []*command{
		{name: "run", usage: "run [flags]", summary: "apply the configuration: files, capabilities, user-data scripts (per-instance steps once per instance)", run: cmdRun, usesRoot: true},
		{name: "plan", usage: "plan [--json] [flags]", summary: "print what run would do — files with owner, mode and digest, commands — without touching the machine",
			run: cmdPlan, usesRoot: true, flags: func(fs *flag.FlagSet, c *cli) { fs.BoolVar(&c.json, "json", false, "print the plan as JSON") }},
		{name: "validate", usage: "validate [FILE|s3://bucket/key|-]", summary: "decode, merge and validate a configuration with its includes; errors name source:line:col and key", run: cmdValidate, usesRoot: true},
		{name: "status", usage: "status [--wait] [--json]", summary: "show the last run's outcome, step by step, from the journal",
			run: cmdStatus, flags: func(fs *flag.FlagSet, c *cli) {
				fs.BoolVar(&c.wait, "wait", false, "wait until no run is in progress")
				fs.DurationVar(&c.timeout, "timeout", 10*time.Minute, "with --wait, how long to wait at most")
				fs.BoolVar(&c.json, "json", false, "print the status as JSON")
			}},
		{name: "autosign", usage: "autosign [--policy FILE] CERTNAME < CSR.pem",
			summary: "puppetserver's policy-based autosign: sign (exit 0) when the CSR's challengePassword and EC2 facts pass the policy; see docs/puppet.md",
			run:     cmdAutosign, flags: func(fs *flag.FlagSet, c *cli) {
				fs.StringVar(&c.policy, "policy", puppet.DefaultPolicyFile, "the policy file (YAML: password_file, require_ec2, regions, accounts)")
			}},
		{name: "version", usage: "version", summary: "print the version and commit", run: cmdVersion},
		{name: "demo", usage: "demo [--keep]", summary: "run the whole pipeline against an embedded IMDS emulator and object store on loopback (no AWS, no root)",
			run: cmdDemo, flags: func(fs *flag.FlagSet, c *cli) {
				fs.BoolVar(&c.keep, "keep", false, "keep the demo's target root and state directory")
			}},
	}
}

func cmdVersion(_ context.Context, c *cli, args []string) int {
	fmt.Fprintf(c.stdout, "bootstrap %s (commit %s, %s, %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}

func cmdRun(ctx context.Context, c *cli, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(c.stderr, "bootstrap run: unexpected arguments %q\n", args)
		return exitUsage
	}
	res, err := engine.Run(ctx, c.input(""), c.g.stateDir)
	attrs := []any{}
	if res != nil {
		attrs = append(attrs, "run", res.Run, "instance", res.Instance, "imds_requests", res.IMDSRequests, "requests", res.Requests,
			"duration", res.Duration.Round(time.Millisecond).String())
	}
	if err != nil {
		c.log.Error("run failed", append(attrs, "err", err)...)
		return c.fail(err)
	}
	// Peak RSS of this process (not the programs it ran): the figure a
	// first boot on a small instance cares about.
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		attrs = append(attrs, "max_rss_kb", ru.Maxrss)
	}
	c.log.Info("run finished", attrs...)
	return exitOK
}

func cmdPlan(ctx context.Context, c *cli, args []string) int {
	if len(args) > 0 {
		fmt.Fprintf(c.stderr, "bootstrap plan: unexpected arguments %q\n", args)
		return exitUsage
	}
	return c.printPlan(ctx, c.input(""))
}

// printPlan loads the configuration and prints the plan, marking the steps
// the state dir records as done for this instance.
func (c *cli) printPlan(ctx context.Context, in engine.Input) int {
	// No state directory yet is fine (nothing done); an unusable one is not.
	st, err := state.OpenExisting(c.g.stateDir, c.log)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c.fail(badinput.Wrap(err))
	}
	loaded, err := engine.Load(ctx, in)
	if err != nil {
		return c.fail(err)
	}
	scratch, err := os.MkdirTemp("", "bootstrap-plan-")
	if err != nil {
		return c.fail(err)
	}
	defer os.RemoveAll(scratch)
	done := func(string) bool { return false }
	if st != nil {
		// The same records run reads: an unreadable one fails both alike.
		inst, err := st.Instance(loaded.Meta.InstanceID)
		if err != nil {
			return c.fail(err)
		}
		done = func(step string) bool { _, ok := inst.Done(step); return ok }
	}
	root, err := rootfs.Open(in.Root)
	if err != nil {
		return c.fail(err)
	}
	defer root.Close()
	p, err := engine.Plan(ctx, loaded, engine.PlanInput{Root: root, Scratch: scratch, Done: done, Redactor: c.redactor, Log: c.log, Image: in.Image})
	if err != nil {
		return c.fail(err)
	}
	if c.json {
		return c.printJSON(p.JSON())
	}
	var b strings.Builder
	p.Write(&b)
	fmt.Fprint(c.stdout, c.redactor.Redact(b.String()))
	return exitOK
}

func (c *cli) printJSON(v any) int {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintln(c.stdout, c.redactor.Redact(string(b)))
	return exitOK
}

func cmdValidate(ctx context.Context, c *cli, args []string) int {
	switch len(args) {
	case 0:
	case 1:
		c.g.config = args[0]
		if err := c.g.resolveConfig(); err != nil {
			fmt.Fprintf(c.stderr, "bootstrap validate: %v\n", err)
			return exitUsage
		}
	default:
		fmt.Fprintf(c.stderr, "bootstrap validate: want at most one source, got %q\n", args)
		return exitUsage
	}
	// Validating a file needs no instance: facts come from the none
	// datasource unless one is asked for.
	def := ""
	if c.g.config != "" {
		def = "none"
	}
	loaded, err := engine.Load(ctx, c.input(def))
	if err != nil {
		return c.fail(err)
	}
	fmt.Fprintf(c.stdout, "valid: %d layer(s), %d file(s), %d script(s)\n", len(loaded.Layers), len(loaded.Config.Files), len(loaded.Scripts))
	for _, l := range loaded.Layers {
		fmt.Fprintf(c.stdout, "  layer %s\n", l)
	}
	return exitOK
}

func cmdStatus(ctx context.Context, c *cli, args []string) int {
	st, err := state.OpenExisting(c.g.stateDir, c.log)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return c.printStatus(state.Summary{State: "none"}, false)
		}
		// Not a directory, not readable: the flag is wrong.
		return c.fail(badinput.Wrap(err))
	}
	deadline := time.Now().Add(c.timeout)
	for {
		_, running := st.Holder()
		if !c.wait || !running {
			s, err := st.Status()
			if err != nil {
				return c.fail(err)
			}
			return c.printStatus(s, running)
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(c.stderr, "bootstrap status: a run is still in progress after %s\n", c.timeout)
			return exitFail
		}
		select {
		case <-ctx.Done():
			return exitFail
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func (c *cli) printStatus(s state.Summary, running bool) int {
	switch {
	case running:
		s.State = state.StateRunning
	case s.State == state.StateRunning:
		// The journal says running but nobody holds the lock: the run was
		// killed. The next run finishes the job.
		s.State = "interrupted"
	}
	code := exitOK
	switch s.State {
	case state.StateFailed, state.StateCorrupt, "interrupted":
		code = exitFail
	}
	if c.json {
		if rc := c.printJSON(s); rc != exitOK {
			return rc
		}
		return code
	}
	fmt.Fprint(c.stdout, c.redactor.Redact(s.String()))
	if s.State == "interrupted" {
		fmt.Fprintln(c.stdout, "the run was killed before it finished; 'bootstrap run' finishes the job (steps recorded done are not redone)")
	}
	return code
}
