package state

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Overall states of a run, as reported by Summarize.
const (
	StateNone    = "none"    // no run in the journal
	StateRunning = "running" // started, not finished: in progress, or killed (check Dir.Holder)
	StateDone    = "done"    // finished, no step failed
	StateFailed  = "failed"  // a step, or the run itself, failed
	// StateCorrupt: the journal has lines bootstrap did not write, so the
	// last run's outcome cannot be known (Summary.Error says where).
	StateCorrupt = "corrupt"
)

// StepSummary is the latest journal entry of one step in a run.
type StepSummary struct {
	Step    string    `json:"step"`
	Outcome string    `json:"outcome"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end,omitzero"`
	Error   string    `json:"error,omitempty"`
	Detail  string    `json:"detail,omitempty"`
}

// Summary describes the latest run in the journal, for `status`.
type Summary struct {
	Run      string        `json:"run,omitempty"`
	Instance string        `json:"instance,omitempty"`
	State    string        `json:"state"`
	Start    time.Time     `json:"start,omitzero"`
	End      time.Time     `json:"end,omitzero"` // zero while running
	Steps    []StepSummary `json:"steps,omitempty"`
	// FailedStep and Error say what failed when State is "failed". Error is
	// the run's own error when no step failed (for example bad input).
	FailedStep string `json:"failed_step,omitempty"`
	Error      string `json:"error,omitempty"`
}

// Summarize describes the latest run in entries, which are in journal order.
// The latest run is the one of the last entry: file order, not run id,
// because the clock may step at boot. Within it the latest entry of each
// step wins; steps keep the order in which they first appeared.
//
// The overall state comes from the RunStep entries when there are any
// (running, then ok or failed); otherwise from the steps: failed if any
// failed, else running if any is running, else done. A "running" run whose
// process is gone was killed: `status` tells the two apart with Dir.Holder.
func Summarize(entries []Entry) Summary {
	if len(entries) == 0 {
		return Summary{State: StateNone}
	}
	s := Summary{Run: entries[len(entries)-1].Run}
	index := map[string]int{}
	var marker *Entry
	var end time.Time
	for i := range entries {
		e := &entries[i]
		if e.Run != s.Run {
			continue
		}
		if e.Instance != "" {
			s.Instance = e.Instance
		}
		if !e.Start.IsZero() && (s.Start.IsZero() || e.Start.Before(s.Start)) {
			s.Start = e.Start
		}
		if e.End.After(end) {
			end = e.End
		}
		if e.Step == RunStep {
			marker = e
			continue
		}
		st := StepSummary{Step: e.Step, Outcome: e.Outcome, Start: e.Start, End: e.End, Error: e.Error, Detail: e.Detail}
		if j, ok := index[e.Step]; ok {
			s.Steps[j] = st
		} else {
			index[e.Step] = len(s.Steps)
			s.Steps = append(s.Steps, st)
		}
	}

	var anyFailed, anyRunning bool
	for _, st := range s.Steps {
		switch st.Outcome {
		case OutcomeFailed:
			if !anyFailed {
				s.FailedStep, s.Error = st.Step, st.Error
			}
			anyFailed = true
		case OutcomeRunning:
			anyRunning = true
		}
	}
	switch {
	case marker != nil && marker.Outcome == OutcomeRunning:
		s.State = StateRunning
	case marker != nil && marker.Outcome == OutcomeFailed:
		s.State = StateFailed
		if s.Error == "" {
			s.Error = marker.Error
		}
	case marker != nil:
		s.State = StateDone
	case anyFailed:
		s.State = StateFailed
	case anyRunning:
		s.State = StateRunning
	default:
		s.State = StateDone
	}
	if s.State == StateRunning || s.State == StateDone {
		s.FailedStep, s.Error = "", ""
	}
	if s.State != StateRunning {
		s.End = end
	}
	return s
}

// Status summarizes the journal for `status`. A damaged journal gives
// StateCorrupt with the problem in Error, never a guess: a unit gated on
// `status --wait` must not go ahead on a journal nobody can read.
func (d *Dir) Status() (Summary, error) {
	entries, _, err := d.ReadJournal()
	var ce *CorruptJournalError
	if errors.As(err, &ce) {
		s := Summarize(entries)
		s.State, s.FailedStep, s.Error = StateCorrupt, "", ce.Error()
		return s, nil
	}
	if err != nil {
		return Summary{}, err
	}
	return Summarize(entries), nil
}

// String renders the summary for `bootstrap status`, one fact per line.
// Errors are shown as recorded; the journal holds them already redacted.
func (s Summary) String() string {
	if s.State == "" || s.State == StateNone {
		return "state: none (no run recorded)\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "state: %s\n", s.State)
	if s.Run != "" {
		fmt.Fprintf(&b, "run: %s\n", s.Run)
	}
	if s.Instance != "" {
		fmt.Fprintf(&b, "instance: %s\n", s.Instance)
	}
	if !s.Start.IsZero() {
		fmt.Fprintf(&b, "started: %s\n", s.Start.UTC().Format(time.RFC3339))
	}
	if !s.End.IsZero() {
		fmt.Fprintf(&b, "ended: %s", s.End.UTC().Format(time.RFC3339))
		if !s.Start.IsZero() {
			fmt.Fprintf(&b, " (took %s)", s.End.Sub(s.Start).Round(time.Millisecond))
		}
		b.WriteString("\n")
	}
	if len(s.Steps) > 0 {
		width := 0
		for _, st := range s.Steps {
			width = max(width, len(st.Step))
		}
		b.WriteString("steps:\n")
		for _, st := range s.Steps {
			note := st.Detail
			if st.Error != "" {
				note = st.Error
			}
			line := fmt.Sprintf("  %-*s  %-7s  %s", width, st.Step, st.Outcome, oneLine(note))
			b.WriteString(strings.TrimRight(line, " ") + "\n")
		}
	}
	if s.Error != "" {
		if s.FailedStep != "" {
			fmt.Fprintf(&b, "error: step %s: %s\n", s.FailedStep, oneLine(s.Error))
		} else {
			fmt.Fprintf(&b, "error: %s\n", oneLine(s.Error))
		}
	}
	return b.String()
}

// oneLine keeps a multi-line error from breaking the step table.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
