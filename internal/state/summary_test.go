package state

import (
	"slices"
	"testing"
	"time"
)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func ent(run, step, outcome string, start, end int, errMsg string) Entry {
	e := Entry{Run: run, Instance: "i-1", Step: step, Start: at(start), Outcome: outcome, Error: errMsg}
	if end >= 0 {
		e.End = at(end)
	}
	return e
}

func TestSummarize(t *testing.T) {
	type step struct{ name, outcome string }
	tests := []struct {
		name       string
		entries    []Entry
		wantRun    string
		wantState  string
		wantSteps  []step
		wantFailed string
		wantErr    string
		wantStart  time.Time
		wantEnd    time.Time
	}{
		{
			name:      "empty journal",
			wantState: StateNone,
		},
		{
			name: "all steps ok, no run markers",
			entries: []Entry{
				ent("r1", "datasource", OutcomeRunning, 0, -1, ""),
				ent("r1", "datasource", OutcomeOK, 0, 1, ""),
				ent("r1", "files", OutcomeRunning, 1, -1, ""),
				ent("r1", "files", OutcomeOK, 1, 3, ""),
			},
			wantRun: "r1", wantState: StateDone,
			wantSteps: []step{{"datasource", OutcomeOK}, {"files", OutcomeOK}},
			wantStart: at(0), wantEnd: at(3),
		},
		{
			name: "a step still running",
			entries: []Entry{
				ent("r1", "datasource", OutcomeOK, 0, 1, ""),
				ent("r1", "files", OutcomeRunning, 1, -1, ""),
			},
			wantRun: "r1", wantState: StateRunning,
			wantSteps: []step{{"datasource", OutcomeOK}, {"files", OutcomeRunning}},
			wantStart: at(0),
		},
		{
			name: "a step failed",
			entries: []Entry{
				ent("r1", "files", OutcomeOK, 0, 1, ""),
				ent("r1", "scripts", OutcomeRunning, 1, -1, ""),
				ent("r1", "scripts", OutcomeFailed, 1, 2, "script 10-setup: exit status 3"),
				ent("r1", "packages", OutcomeSkipped, 2, 2, ""),
			},
			wantRun: "r1", wantState: StateFailed,
			wantSteps:  []step{{"files", OutcomeOK}, {"scripts", OutcomeFailed}, {"packages", OutcomeSkipped}},
			wantFailed: "scripts", wantErr: "script 10-setup: exit status 3",
			wantStart: at(0), wantEnd: at(2),
		},
		{
			name: "latest entry per step wins",
			entries: []Entry{
				ent("r1", "files", OutcomeFailed, 0, 1, "first try"),
				ent("r1", "files", OutcomeOK, 2, 3, ""),
			},
			wantRun: "r1", wantState: StateDone,
			wantSteps: []step{{"files", OutcomeOK}},
			wantStart: at(0), wantEnd: at(3),
		},
		{
			name: "run marker says running between steps",
			entries: []Entry{
				ent("r1", RunStep, OutcomeRunning, 0, -1, ""),
				ent("r1", "datasource", OutcomeOK, 0, 1, ""),
			},
			wantRun: "r1", wantState: StateRunning,
			wantSteps: []step{{"datasource", OutcomeOK}},
			wantStart: at(0),
		},
		{
			name: "run marker ok",
			entries: []Entry{
				ent("r1", RunStep, OutcomeRunning, 0, -1, ""),
				ent("r1", "datasource", OutcomeOK, 0, 1, ""),
				ent("r1", RunStep, OutcomeOK, 0, 5, ""),
			},
			wantRun: "r1", wantState: StateDone,
			wantSteps: []step{{"datasource", OutcomeOK}},
			wantStart: at(0), wantEnd: at(5),
		},
		{
			name: "run failed before any step",
			entries: []Entry{
				ent("r1", RunStep, OutcomeRunning, 0, -1, ""),
				ent("r1", RunStep, OutcomeFailed, 0, 1, "user-data:3:1: files: unknown key"),
			},
			wantRun: "r1", wantState: StateFailed,
			wantErr:   "user-data:3:1: files: unknown key",
			wantStart: at(0), wantEnd: at(1),
		},
		{
			name: "run failed names the failed step's error",
			entries: []Entry{
				ent("r1", RunStep, OutcomeRunning, 0, -1, ""),
				ent("r1", "files", OutcomeFailed, 0, 1, "write /etc/x: no space"),
				ent("r1", RunStep, OutcomeFailed, 0, 2, "1 step failed"),
			},
			wantRun: "r1", wantState: StateFailed,
			wantSteps:  []step{{"files", OutcomeFailed}},
			wantFailed: "files", wantErr: "write /etc/x: no space",
			wantStart: at(0), wantEnd: at(2),
		},
		{
			name: "only the latest run counts",
			entries: []Entry{
				ent("r1", "files", OutcomeFailed, 0, 1, "old failure"),
				ent("r2", "datasource", OutcomeOK, 10, 11, ""),
			},
			wantRun: "r2", wantState: StateDone,
			wantSteps: []step{{"datasource", OutcomeOK}},
			wantStart: at(10), wantEnd: at(11),
		},
		{
			name: "latest by file order, not by run id",
			entries: []Entry{
				ent("r9", "files", OutcomeOK, 0, 1, ""),
				ent("r1", "files", OutcomeRunning, 0, -1, ""),
			},
			wantRun: "r1", wantState: StateRunning,
			wantSteps: []step{{"files", OutcomeRunning}},
			wantStart: at(0),
		},
		{
			name: "killed run: running step never finished",
			entries: []Entry{
				ent("r1", RunStep, OutcomeRunning, 0, -1, ""),
				ent("r1", "files", OutcomeRunning, 1, -1, ""),
			},
			wantRun: "r1", wantState: StateRunning,
			wantSteps: []step{{"files", OutcomeRunning}},
			wantStart: at(0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.entries)
			if s.Run != tt.wantRun || s.State != tt.wantState {
				t.Errorf("run, state = %q, %q; want %q, %q", s.Run, s.State, tt.wantRun, tt.wantState)
			}
			var got []step
			for _, st := range s.Steps {
				got = append(got, step{st.Step, st.Outcome})
			}
			if !slices.Equal(got, tt.wantSteps) {
				t.Errorf("steps = %v, want %v", got, tt.wantSteps)
			}
			if s.FailedStep != tt.wantFailed || s.Error != tt.wantErr {
				t.Errorf("failed = %q, %q; want %q, %q", s.FailedStep, s.Error, tt.wantFailed, tt.wantErr)
			}
			if !s.Start.Equal(tt.wantStart) || !s.End.Equal(tt.wantEnd) {
				t.Errorf("start, end = %v, %v; want %v, %v", s.Start, s.End, tt.wantStart, tt.wantEnd)
			}
			if len(tt.entries) > 0 && s.Instance != "i-1" {
				t.Errorf("instance = %q, want i-1", s.Instance)
			}
		})
	}
}

func TestSummaryString(t *testing.T) {
	tests := []struct {
		name string
		s    Summary
		want string
	}{
		{"none", Summary{State: StateNone}, "state: none (no run recorded)\n"},
		{"zero value", Summary{}, "state: none (no run recorded)\n"},
		{
			"failed",
			Summarize([]Entry{
				ent("r1", RunStep, OutcomeRunning, 0, -1, ""),
				{Run: "r1", Instance: "i-1", Step: "files", Start: at(0), End: at(1), Outcome: OutcomeOK, Detail: "2 files"},
				ent("r1", "scripts", OutcomeFailed, 1, 3, "exit status 1\nsecond line"),
				ent("r1", RunStep, OutcomeFailed, 0, 3, "1 step failed"),
			}),
			"state: failed\nrun: r1\ninstance: i-1\nstarted: 2026-03-01T10:00:00Z\nended: 2026-03-01T10:00:03Z (took 3s)\n" +
				"steps:\n  files    ok       2 files\n  scripts  failed   exit status 1 second line\n" +
				"error: step scripts: exit status 1 second line\n",
		},
		{
			"corrupt",
			Summary{State: StateCorrupt, Error: (&CorruptJournalError{Path: "/var/lib/bootstrap/journal.jsonl", Line: 3, Problem: "not a journal entry (not a JSON object)", Lines: 2}).Error()},
			"state: corrupt\nerror: /var/lib/bootstrap/journal.jsonl:3: not a journal entry (not a JSON object) (and 1 more bad line); " +
				"the journal is damaged, so the last run's outcome is unknown: the next run moves it aside to journal.jsonl.corrupt and starts a new one\n",
		},
		{
			"running",
			Summarize([]Entry{ent("r2", "files", OutcomeRunning, 0, -1, "")}),
			"state: running\nrun: r2\ninstance: i-1\nstarted: 2026-03-01T10:00:00Z\nsteps:\n  files  running\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.s.String(); got != tt.want {
				t.Errorf("String() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}
