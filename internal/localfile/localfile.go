// Package localfile reads files bootstrap did not write: a file:// source,
// the target root's /etc/passwd and /etc/group, a seed directory's
// user-data and meta-data, /etc/machine-id. Any of them may be a device, a
// FIFO or a directory by mistake or by malice, and a boot must neither hang
// on one nor read /dev/zero until memory or disk runs out. So: regular
// files only, opened without blocking (a FIFO's open would wait for a
// writer), checked with fstat on the open file (no window between check
// and read), and never read past a stated size.
package localfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// ErrNotRegular is wrapped when a path is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped when a file is larger than the caller's limit.
var ErrTooLarge = errors.New("file too large")

// Flags are the open flags for a file that may be anything: O_NONBLOCK so
// that opening a FIFO does not wait for a writer (reads of a regular file
// ignore it).
const Flags = os.O_RDONLY | syscall.O_NONBLOCK

// Open opens path for reading and insists it is a regular file. With
// noFollow a symlink as the last component is refused too (for files
// inside a target root, where a link could point at the host).
func Open(path string, noFollow bool) (*os.File, fs.FileInfo, error) {
	flags := Flags
	if noFollow {
		flags |= syscall.O_NOFOLLOW
	}
	f, err := os.OpenFile(path, flags, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := Regular(f)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, fi, nil
}

// Regular returns f's FileInfo, or an error naming what f is when it is
// not a regular file.
func Regular(f *os.File) (fs.FileInfo, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "open", Path: f.Name(), Err: fmt.Errorf("%w: it is %s", ErrNotRegular, Kind(fi.Mode()))}
	}
	return fi, nil
}

// Kind names a file type for messages.
func Kind(m fs.FileMode) string {
	switch {
	case m.IsRegular():
		return "a regular file"
	case m.IsDir():
		return "a directory"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	}
	return "not a regular file"
}

// ReadFile reads the regular file at path, at most limit bytes.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, _, err := Open(path, false)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f, limit)
}

// ReadAll reads f to its end, at most limit bytes: a file that is (or
// grows) larger is an error naming it, never a truncated read.
func ReadAll(f *os.File, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &fs.PathError{Op: "read", Path: f.Name(), Err: fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)}
	}
	return b, nil
}

// Reader makes reads of r stop with ctx's error once ctx is done, so a copy
// loop over a slow or endless file ends at SIGTERM.
func Reader(ctx context.Context, r io.Reader) io.Reader { return ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
