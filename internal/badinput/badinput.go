// Package badinput marks errors that are the operator's input, not a failed
// step: a configuration that does not decode or validate, a malformed
// meta-data file, a usage mistake. The CLI exits 2 for them and 1 for
// everything else, so a boot unit can tell "fix the config" from "retry".
//
// It is a leaf so that every package, the capabilities included, marks bad
// input the same way without importing the engine.
package badinput

import "errors"

// Error wraps an error that is bad input.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Wrap marks err as bad input; nil stays nil and a marked error is not
// wrapped twice.
func Wrap(err error) error {
	if err == nil || Is(err) {
		return err
	}
	return &Error{Err: err}
}

// Is reports whether err, or an error it wraps, is bad input.
func Is(err error) bool {
	var e *Error
	return errors.As(err, &e)
}
