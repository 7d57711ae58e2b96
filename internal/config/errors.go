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
}

// Error formats the problem as "SOURCE:LINE:COL: PATH: MSG", leaving out the
// parts that are unknown.
func (e *Error) Error() string {
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
// all at once instead of one run per mistake.
type ErrorList []*Error

// Error joins the problems, one a line.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// sortBy orders the list by layer (rank gives a source's layer index),
// then line and column, keeping the order of equal entries.
func (l ErrorList) sortBy(rank func(string) int) {
	sort.SliceStable(l, func(i, j int) bool {
		a, b := l[i], l[j]
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
