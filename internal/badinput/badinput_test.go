package badinput

import (
	"errors"
	"fmt"
	"testing"
)

func TestWrapAndIs(t *testing.T) {
	base := errors.New("files[0].mode: want an octal mode")
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"wrapped", Wrap(base), true},
		{"wrapped inside another error", fmt.Errorf("layer: %w", Wrap(base)), true},
		{"wrapped twice is one wrapper", Wrap(Wrap(base)), true},
	}
	for _, c := range cases {
		if got := Is(c.err); got != c.want {
			t.Errorf("%s: Is = %v, want %v", c.name, got, c.want)
		}
	}
	if Wrap(nil) != nil {
		t.Error("Wrap(nil) is not nil")
	}
	w := Wrap(Wrap(base))
	if inner := errors.Unwrap(w); inner != base {
		t.Errorf("Wrap(Wrap(err)) wraps %v, want the base error once", inner)
	}
	if w.Error() != base.Error() {
		t.Errorf("message changed: %q", w.Error())
	}
}
