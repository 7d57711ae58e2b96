//go:build !linux

package fetch

import (
	"errors"
	"os"
)

// setDirect: direct I/O is used on Linux only; elsewhere writes go through
// the page cache.
func setDirect(f *os.File, on bool) error {
	if on {
		return errors.ErrUnsupported
	}
	return nil
}
