package fetch

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"testing/iotest"
)

// scratchDirs are the file systems the pipeline is tried on: the test's
// temp dir (ext4 or xfs: direct I/O) and tmpfs where there is one (no
// direct I/O on older kernels: the buffered fallback).
func scratchDirs(t *testing.T) map[string]string {
	dirs := map[string]string{"tempdir": t.TempDir()}
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "fetch-test-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			dirs["tmpfs"] = d
		}
	}
	return dirs
}

func TestCopyToFile(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 3*chunkSize+directAlign+123)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	sizes := []int{0, 1, directAlign - 1, directAlign, directAlign + 1, chunkSize - 1, chunkSize, chunkSize + 1, len(data)}
	for fs, dir := range scratchDirs(t) {
		for _, size := range sizes {
			for _, oneByte := range []bool{false, true} {
				want := data[:size]
				f, err := os.CreateTemp(dir, "copy-*")
				if err != nil {
					t.Fatal(err)
				}
				var r io.Reader = bytes.NewReader(want)
				if oneByte && size < 2*directAlign {
					r = iotest.OneByteReader(r) // the body arrives in dribbles
				}
				h := sha256.New()
				n, err := copyToFile(f, r, h)
				if err != nil || n != int64(size) {
					t.Fatalf("%s, %d bytes: n=%d err=%v", fs, size, n, err)
				}
				// The file is left usable: buffered, offset at the end.
				if _, err := f.Write([]byte("x")); err != nil {
					t.Fatalf("%s, %d bytes: write after: %v", fs, size, err)
				}
				f.Close()
				got, _ := os.ReadFile(f.Name())
				os.Remove(f.Name())
				if !bytes.Equal(got, append(want[:size:size], 'x')) {
					t.Fatalf("%s, %d bytes: content differs (%d bytes read back)", fs, size, len(got))
				}
				sum := sha256.Sum256(want)
				if hex.EncodeToString(h.Sum(nil)) != hex.EncodeToString(sum[:]) {
					t.Fatalf("%s, %d bytes: wrong digest", fs, size)
				}
			}
		}
	}
}

// endless is a body that never ends: a pipeline that stops on an error
// must stop reading it.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	e.n += int64(len(p))
	return len(p), nil
}

func TestCopyToFileErrors(t *testing.T) {
	dir := t.TempDir()
	t.Run("a write error stops the download", func(t *testing.T) {
		f, err := os.Create(filepath.Join(dir, "ro"))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		ro, err := os.Open(f.Name()) // read-only: every write fails
		if err != nil {
			t.Fatal(err)
		}
		defer ro.Close()
		body := &endless{}
		_, err = copyToFile(ro, body, sha256.New())
		var se *sinkError
		if !errors.As(err, &se) {
			t.Fatalf("err = %v, want a *sinkError", err)
		}
		if body.n > 2*chunkCount*chunkSize {
			t.Fatalf("read %d bytes after the write failed", body.n)
		}
	})
	t.Run("a read error is returned as is", func(t *testing.T) {
		f, err := os.CreateTemp(dir, "r-*")
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		boom := errors.New("connection reset")
		r := io.MultiReader(bytes.NewReader(make([]byte, chunkSize+5)), iotest.ErrReader(boom))
		n, err := copyToFile(f, r, sha256.New())
		if !errors.Is(err, boom) || n != chunkSize+5 {
			t.Fatalf("n=%d err=%v, want %d bytes and the read error", n, err, chunkSize+5)
		}
		var se *sinkError
		if errors.As(err, &se) {
			t.Fatal("a read error reported as a write error")
		}
	})
}
