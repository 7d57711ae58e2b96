package engine

import (
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/plan"
	"github.com/opsboot/bootstrap/internal/rootfs"
	"github.com/opsboot/bootstrap/internal/state"
)

// Result sums up a run for the CLI and the benchmarks.
type Result struct {
	Run          string
	Instance     string
	NewInstance  bool
	Plan         *plan.Plan
	IMDSRequests int64
	Requests     int64 // S3 and HTTPS requests
	Duration     time.Duration
}

// Run is `bootstrap run`: the whole pipeline under the run lock, journaled, with
// per-instance steps recorded only once their effects are durable. A run that
// is killed at any point can simply be started again.
func Run(ctx context.Context, in Input, stateDir string) (*Result, error) {
	began := time.Now()
	st, err := state.Open(stateDir, in.Log)
	if err != nil {
		// An unusable --state-dir is the operator's to fix: usage, exit 2.
		return nil, badinput.Wrap(err)
	}
	unlock, err := st.Lock(ctx, false)
	if err != nil {
		return nil, err
	}
	defer unlock()

	res := &Result{Run: state.NewRunID()}
	var loaded *Loaded
	// One place fills the counters, on every return path: the CLI logs them
	// for failed runs too.
	defer func() {
		res.IMDSRequests = loaded.IMDSRequests()
		if loaded != nil && loaded.Fetcher != nil {
			res.Requests = loaded.Fetcher.Requests()
		}
		res.Duration = time.Since(began)
	}()
	log := in.Log.With("run", res.Run)
	in.Log = log
	j := &journal{st: st, run: res.Run, redact: in.Redactor.Redact, log: log}
	in.Stage = func(step string, start time.Time, err error) {
		j.end(step, start, err)
		if err == nil {
			failpoint("after:" + step)
		}
	}
	// The run's start is journaled first: a run killed between two steps
	// then reads as interrupted, never as done.
	j.append(state.Entry{Step: state.RunStep, Start: began, Outcome: state.OutcomeRunning})
	failpoint("before:" + StepDatasource)

	root, err := rootfs.Open(in.Root)
	if err != nil {
		return res, j.fail(began, err)
	}
	defer root.Close()
	if in.KeepOwnership {
		root.KeepOwnership()
	}

	loaded, err = Load(ctx, in)
	if loaded != nil && loaded.Meta != nil {
		// Known even when a later stage failed: the log and journal say so.
		res.Instance = loaded.Meta.InstanceID
		j.instance = res.Instance
	}
	if err != nil {
		return res, j.fail(began, err)
	}

	prev, err := st.PreviousInstance()
	if err != nil {
		return res, j.fail(began, err)
	}
	res.NewInstance = prev != res.Instance
	if res.NewInstance {
		log.Info("new instance: per-instance steps will run", "instance", res.Instance, "previous", prev)
	} else {
		log.Info("same instance as the last run: per-instance steps already done are skipped", "instance", res.Instance)
	}
	if err := st.SetCurrentInstance(res.Instance); err != nil {
		return res, j.fail(began, err)
	}
	inst, err := st.Instance(res.Instance)
	if err != nil {
		return res, j.fail(began, err)
	}
	scratch, err := st.Scratch(res.Run)
	if err != nil {
		return res, j.fail(began, err)
	}
	defer os.RemoveAll(scratch)

	done := func(step string) bool { _, ok := inst.Done(step); return ok }
	p, err := Plan(ctx, loaded, PlanInput{Root: root, Scratch: scratch, Done: done, Redactor: in.Redactor, Log: log, Image: in.Image})
	res.Plan = p
	if err != nil {
		j.end("plan", began, err)
		return res, j.fail(began, err)
	}
	if runsPrograms(p) {
		// A script can read the role's credentials from IMDS and print them:
		// the redactor must know them first.
		loaded.Fetcher.LearnRoleCredentials(ctx)
	}
	env := &plan.Env{Root: root, Log: log, Redactor: in.Redactor, Scratch: scratch, Marks: marks{inst, res.Run},
		Hook: func(a plan.Action) { d := a.Describe(); failpoint("applied:" + d.Kind + ":" + d.Path) }}
	for _, s := range p.Steps {
		if err := applyStep(ctx, s, env, inst, j, res.Run); err != nil {
			return res, j.fail(began, err)
		}
	}
	j.finish(began, fmt.Sprintf("imds_requests=%d requests=%d", loaded.IMDSRequests(), loaded.Fetcher.Requests()))
	return res, nil
}

func applyStep(ctx context.Context, s *plan.Step, env *plan.Env, inst *state.Instance, j *journal, run string) error {
	start := time.Now()
	if s.Done {
		rec, _ := inst.Done(s.Name)
		j.append(state.Entry{Step: s.Name, Start: start, End: time.Now(), Outcome: "skipped",
			Detail: "done for this instance by run " + rec.Run})
		env.Log.Info("step skipped: already done for this instance", "step", s.Name)
		return nil
	}
	failpoint("before:" + s.Name)
	j.append(state.Entry{Step: s.Name, Start: start, Outcome: "running"})
	env.Log.Info("step started", "step", s.Name)
	for _, a := range s.Actions {
		if err := a.Apply(ctx, env); err != nil {
			err = env.Redactor.Error(err)
			j.end(s.Name, start, err)
			return fmt.Errorf("step %s: %w", s.Name, err)
		}
		if env.Hook != nil {
			env.Hook(a)
		}
	}
	// Effects are durable here (files are fsynced with their directories);
	// a crash before MarkDone only means the step is done again.
	failpoint("applied:" + s.Name)
	if s.Frequency == plan.PerInstance {
		if err := inst.MarkDone(s.Name, run); err != nil {
			j.end(s.Name, start, err)
			return err
		}
	}
	j.end(s.Name, start, nil)
	env.Log.Info("step done", "step", s.Name, "duration", time.Since(start).Round(time.Millisecond).String())
	failpoint("after:" + s.Name)
	return nil
}

// marks keeps plan.Marks with the instance's step records, so they share
// their atomic, fsynced writes.
type marks struct {
	inst *state.Instance
	run  string
}

func (m marks) Marked(key string) bool { _, ok := m.inst.Done("mark:" + key); return ok }
func (m marks) Mark(key string) error  { return m.inst.MarkDone("mark:"+key, m.run) }

// journal appends the run's entries. A journal that cannot be written is
// logged, not fatal: the run's effects matter more than its diary.
type journal struct {
	st       *state.Dir
	run      string
	instance string
	redact   func(string) string
	log      interface{ Warn(string, ...any) }
	failed   bool
}

func (j *journal) append(e state.Entry) {
	e.Run, e.Instance = j.run, j.instance
	e.Error = j.redact(e.Error)
	if err := j.st.Append(e); err != nil {
		j.log.Warn("cannot write the journal", "err", err)
	}
}

func (j *journal) end(step string, start time.Time, err error) {
	e := state.Entry{Step: step, Start: start, End: time.Now(), Outcome: "ok"}
	if err != nil {
		e.Outcome, e.Error = "failed", err.Error()
	}
	j.append(e)
}

// fail records the run as failed once and returns err.
func (j *journal) fail(began time.Time, err error) error {
	if !j.failed {
		j.failed = true
		j.append(state.Entry{Step: "run", Start: began, End: time.Now(), Outcome: "failed", Error: err.Error()})
	}
	return err
}

func (j *journal) finish(began time.Time, detail string) {
	j.append(state.Entry{Step: "run", Start: began, End: time.Now(), Outcome: "ok", Detail: detail})
}

// failpoint kills the process with SIGKILL when BOOTSTRAP_FAILPOINT names this
// point. It exists for the crash tests, which prove that a run killed at any
// step boundary finishes the job once when started again.
func failpoint(name string) {
	want := os.Getenv("BOOTSTRAP_FAILPOINT")
	if want == "" {
		return
	}
	for _, w := range strings.Split(want, ",") {
		if w == name {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Second) // the signal is asynchronous; never continue past a failpoint
		}
	}
}

// ExitCode maps an error from Load or Run to the CLI's exit status:
// 0 done, 1 a step failed, 2 bad input.
func ExitCode(err error) int {
	switch {
	case err == nil:
		return 0
	case badinput.Is(err):
		return 2
	default:
		return 1
	}
}

// runsPrograms reports whether a step that will run may start a program:
// anything but writing files (commands, scripts, packages, services).
func runsPrograms(p *plan.Plan) bool {
	for _, s := range p.Steps {
		for _, a := range s.Actions {
			if k := a.Describe().Kind; !s.Done && k != "file" && k != "check" {
				return true
			}
		}
	}
	return false
}
