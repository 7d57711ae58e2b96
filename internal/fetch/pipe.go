package fetch

import (
	"errors"
	"hash"
	"io"
	"os"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// The download pipeline's chunks: large writes for the disk, and few of
// them, so a download holds chunkCount × chunkSize (4 MiB) however large
// the file.
const (
	chunkSize  = 1 << 20
	chunkCount = 4
	// directAlign is the alignment O_DIRECT asks of buffers, offsets and
	// lengths (a 4 KiB sector at most).
	directAlign = 4096
)

// copyToFile streams r into f from its current offset and feeds h, in
// three stages that overlap: reading (network, TLS), hashing and writing,
// each in its own goroutine, passing fixed chunks along. On a machine with
// cores to spare the download then costs the slowest stage, not the sum.
//
// Where the file system allows it, the file is written with O_DIRECT: the
// data goes from the chunk to the disk without a page-cache copy (a
// buffered write costs about as much CPU as the sha256), and the fsync
// that installs the file later has nothing left to write back. The tail
// that is not a whole sector, and every write after a refused one, goes
// through the page cache as usual. f is left without O_DIRECT.
func copyToFile(f *os.File, r io.Reader, h hash.Hash) (int64, error) {
	w := &chunkWriter{f: f, direct: setDirect(f, true) == nil}
	defer setDirect(f, false)

	free := make(chan []byte, chunkCount)
	for range chunkCount {
		free <- alignedChunk()
	}
	toHash := make(chan []byte, chunkCount)
	toWrite := make(chan []byte, chunkCount)
	var failed atomic.Bool
	var werr error // the writer's; read after done
	done := make(chan struct{})
	go func() {
		for c := range toHash {
			h.Write(c)
			toWrite <- c
		}
		close(toWrite)
	}()
	go func() {
		defer close(done)
		for c := range toWrite {
			if werr == nil {
				if werr = w.write(c); werr != nil {
					failed.Store(true)
				}
			}
			free <- c[:cap(c)]
		}
	}()

	var n int64
	var rerr error
	for !failed.Load() {
		c := <-free
		k, err := io.ReadFull(r, c)
		n += int64(k)
		if k > 0 {
			toHash <- c[:k]
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			rerr = err
			break
		}
	}
	close(toHash)
	<-done
	if werr != nil {
		return n, &sinkError{werr}
	}
	return n, rerr
}

// sinkError is a failure to write the download, not to receive it.
type sinkError struct{ err error }

func (e *sinkError) Error() string { return "write: " + e.err.Error() }
func (e *sinkError) Unwrap() error { return e.err }

// chunkWriter writes chunks to f, with O_DIRECT while that works.
type chunkWriter struct {
	f      *os.File
	direct bool
}

func (w *chunkWriter) write(c []byte) error {
	if w.direct {
		whole := len(c) &^ (directAlign - 1)
		_, err := w.f.Write(c[:whole])
		if err == nil && whole == len(c) {
			return nil
		}
		// A tail shorter than a sector, or a write the device refused
		// (alignment): the rest goes through the page cache. A short
		// direct write left the offset where the buffered one continues.
		if err != nil && !errors.Is(err, syscall.EINVAL) {
			return err
		}
		if err := setDirect(w.f, false); err != nil {
			return err
		}
		w.direct = false
		if err == nil {
			c = c[whole:]
		}
	}
	_, err := w.f.Write(c)
	return err
}

// alignedChunk returns chunkSize bytes starting at a directAlign boundary.
func alignedChunk() []byte {
	b := make([]byte, chunkSize+directAlign)
	off := 0
	if r := int(uintptr(unsafe.Pointer(unsafe.SliceData(b))) & (directAlign - 1)); r != 0 {
		off = directAlign - r
	}
	return b[off : off+chunkSize : off+chunkSize]
}
