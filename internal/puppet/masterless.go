package puppet

import (
	"context"
	"fmt"
	"os"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/opsboot/bootstrap/internal/capability"
	"github.com/opsboot/bootstrap/internal/command"
	"github.com/opsboot/bootstrap/internal/config"
	"github.com/opsboot/bootstrap/internal/fetch"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
)

// StepApply is the masterless run's step name.
const StepApply = "puppet:apply"

// MasterlessDir is where the tarball is unpacked on the target, one
// directory per content digest.
const MasterlessDir = "/var/cache/bootstrap/puppet"

// Bounds on the tarball: manifests and modules, not a disk image.
const (
	maxTreeFiles = 20000
	maxTreeBytes = 512 << 20
	maxTreeFile  = 64 << 20
)

// applyStep plans `puppet apply` of the masterless tarball, fetched (and
// its sha256 checked) at plan time.
func applyStep(ctx context.Context, in *capability.Input, p *config.Puppet, l Layout, runner command.Runner) (*plan.Step, error) {
	m := p.Masterless
	s := &plan.Step{Name: StepApply, Frequency: plan.PerInstance, Done: in.IsDone(StepApply)}
	a := &apply{source: fetch.DisplaySource(m.Source), m: *m, runner: runner, bin: l.Bin, chroot: in.Root.Dir()}
	if !s.Done {
		blob, err := in.Fetcher.File(ctx, m.Source, m.SHA256, in.Scratch)
		if err != nil {
			return nil, fmt.Errorf("puppet.masterless.source: %w", err)
		}
		a.blob, a.sha256 = blob.Path, blob.SHA256
	}
	if l.ConfFile != Debian.ConfFile && l.ConfFile != AIO.ConfFile {
		a.conf = l.ConfFile
	}
	s.Actions = []plan.Action{a}
	return s, nil
}

// apply unpacks the tarball under the root and runs puppet apply on it.
type apply struct {
	source, blob, sha256 string
	m                    config.PuppetMasterless
	runner               command.Runner
	bin, chroot, conf    string
}

func (a *apply) dir() string { return path.Join(MasterlessDir, a.sha256[:16]) }

func (a *apply) argv(dir string) []string {
	argv := []string{a.bin, "apply"}
	if a.conf != "" {
		argv = append(argv, "--config", a.conf)
	}
	argv = append(argv, "--modulepath", path.Join(dir, a.m.ModulePath))
	if a.m.HieraConfig != "" {
		argv = append(argv, "--hiera_config", path.Join(dir, a.m.HieraConfig))
	}
	return append(argv, "--detailed-exitcodes", "--color=false", path.Join(dir, a.m.Manifest))
}

func (a *apply) Describe() plan.Description {
	dir := MasterlessDir + "/<sha256>"
	if a.sha256 != "" {
		dir = a.dir()
	}
	return plan.Description{Kind: "command", Command: a.argv(dir), Source: a.source, SHA256: a.sha256,
		Note: "unpack " + a.source + " into " + dir + ", then apply; exit 0 or 2 is success"}
}

func (a *apply) Apply(ctx context.Context, env *plan.Env) error {
	dir := a.dir()
	f, err := os.Open(a.blob)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unpack(ctx, env.Root, dir, f); err != nil {
		return fmt.Errorf("puppet.masterless: %s: %w", a.source, err)
	}
	if _, err := env.Root.Stat(path.Join(dir, a.m.Manifest)); err != nil {
		return fmt.Errorf("puppet.masterless: %s has no %s (masterless.manifest)", a.source, a.m.Manifest)
	}
	spec := command.Spec{Argv: a.argv(dir), Chroot: a.chroot, Name: "puppet apply", Timeout: runSlack,
		Explain: map[int]string{
			4: "the manifest was applied with failures (see the resources that failed above)",
			6: "the manifest was applied with changes and failures (see the resources that failed above)",
		}}
	runner := a.runner
	if runner == nil {
		runner = command.Exec{Redactor: env.Redactor, Log: env.Log}
	}
	log := env.Log.With("command", "puppet apply")
	start := time.Now()
	res, err := runner.Run(ctx, spec, func(line string) { log.Info(line) })
	if err != nil {
		return env.Redactor.Error(fmt.Errorf("puppet apply: %w", err))
	}
	if res.ExitCode == 0 || res.ExitCode == 2 {
		log.Info("puppet apply finished", "exit", res.ExitCode, "duration", time.Since(start).Round(time.Millisecond).String())
		return nil
	}
	if where := puppetErrorAt(res.Tail, dir); where != "" {
		return env.Redactor.Error(fmt.Errorf("puppet apply exited %d: %s", res.ExitCode, where))
	}
	return env.Redactor.Error(res.Err(spec))
}

// puppetPos is how puppet places an error: (file: /x/site.pp, line: 3, column: 1).
var puppetPos = regexp.MustCompile(`\(file: ([^,]+), line: ([0-9]+)(?:, column: ([0-9]+))?\)`)

// puppetErrorAt finds puppet's positioned error in its output and says it
// with the file relative to the tarball: "manifests/site.pp:3:1: Syntax
// error at '}'".
func puppetErrorAt(tail []string, dir string) string {
	for i := len(tail) - 1; i >= 0; i-- {
		m := puppetPos.FindStringSubmatchIndex(tail[i])
		if m == nil {
			continue
		}
		line := tail[i]
		file := line[m[2]:m[3]]
		if rel, ok := strings.CutPrefix(file, dir+"/"); ok {
			file = rel
		}
		pos := file + ":" + line[m[4]:m[5]]
		if m[6] >= 0 {
			pos += ":" + line[m[6]:m[7]]
		}
		msg := strings.TrimSpace(line[:m[0]])
		msg = strings.TrimPrefix(msg, "Error: ")
		return pos + ": " + msg
	}
	return ""
}

// unpack writes a .tar.gz (or .tar) of manifests and modules under dir in
// root: regular files and directories only, paths inside dir, bounded.
func unpack(ctx context.Context, root *rootfs.Root, dir string, f *os.File) error {
	lim := rootfs.UnpackLimits{Entries: maxTreeFiles, FileBytes: maxTreeFile, TotalBytes: maxTreeBytes}
	_, err := rootfs.Unpack(ctx, root, dir, f, lim, nil)
	return err
}
