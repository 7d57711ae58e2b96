package config

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Error is one problem in a configuration, placed where the operator has to
// fix it. Messages never repeat a value that may be secret (file content);
// the path and position are enough to find it.
type Error struct {
	Source       string // the layer, e.g. s3://bucket/base.yaml or user-data[2](base.yaml)
	Line, Column int    // 1-based; 0 when unknown
	Path         string // key path such as files[2].mode or aws.s3.endpoint; empty for the whole document
	Msg          string
	// Omitted > 0 makes this entry stand for that many further problems
	// that were counted but not kept (see ErrorList.Add).
	Omitted int
}

// Error formats the problem as "SOURCE:LINE:COL: PATH: MSG", leaving out the
// parts that are unknown.
func (e *Error) Error() string {
	if e.Omitted > 0 {
		return fmt.Sprintf("and %d more problems not shown; fix the ones above first", e.Omitted)
	}
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Line > 0 {
		b.WriteString(":" + strconv.Itoa(e.Line))
		if e.Column > 0 {
			b.WriteString(":" + strconv.Itoa(e.Column))
		}
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Path != "" {
		b.WriteString(e.Path + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// ErrorList is every problem found in one pass, so an operator fixes them
// all at once instead of one run per mistake. Past MaxErrors it only counts
// them (Add), in a last entry with Omitted set.
type ErrorList []*Error

// MaxErrors bounds the problems one list keeps. A layer of a megabyte can
// hold half a million mistakes; kept and printed whole they would take more
// memory than the boot has and bury the first one, which is often the
// cause of the rest.
const MaxErrors = 50

// Add appends e, or once the list holds MaxErrors problems, counts it in
// the entry that says how many more there are.
func (l *ErrorList) Add(e *Error) {
	n := len(*l)
	switch {
	case n > 0 && (*l)[n-1].Omitted > 0:
		(*l)[n-1].Omitted += max(e.Omitted, 1)
	case e.Omitted > 0:
		*l = append(*l, &Error{Omitted: e.Omitted})
	case n < MaxErrors:
		*l = append(*l, e)
	default:
		*l = append(*l, &Error{Omitted: 1})
	}
}

// AddAll adds every entry of list, as Add does.
func (l *ErrorList) AddAll(list ErrorList) {
	for _, e := range list {
		l.Add(e)
	}
}

// Error joins the problems, one a line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sortBy orders the list by layer (rank gives a source's layer index),
// then line and column, keeping the order of equal entries; the count of
// omitted problems stays last.
func (l ErrorList) sortBy(rank func(string) int) {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
		if (a.Omitted > 0) != (b.Omitted > 0) {
			return b.Omitted > 0
		}
		if ra, rb := rank(a.Source), rank(b.Source); ra != rb {
			return ra < rb
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Column < b.Column
	})
}

// quoteShort quotes a short non-secret scalar (a key, a mode, a duration)
// for a message; long ones are described by length so a message stays one
// readable line.
func quoteShort(s string) string {
	const max = 64
	if len(s) > max {
		return fmt.Sprintf("a value of %d bytes", len(s))
	}
	return strconv.Quote(s)
}
