package fetch

import (
	"bytes"
	"crypto/sha256"
	"os"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// TestCopyToFileBypassesPageCache: where the file system takes O_DIRECT,
// the download is not left in the page cache (that copy is what made a
// buffered write cost as much CPU as the sha256, and the fsync after it
// slow).
func TestCopyToFileBypassesPageCache(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "direct-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := setDirect(f, true); err != nil {
		t.Skipf("no direct I/O on this file system: %v", err)
	}
	if err := setDirect(f, false); err != nil {
		t.Fatal(err)
	}
	const size = 4 * chunkSize
	if _, err := copyToFile(f, bytes.NewReader(bytes.Repeat([]byte{7}, size)), sha256.New()); err != nil {
		t.Fatal(err)
	}
	m, err := unix.Mmap(int(f.Fd()), 0, size, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Munmap(m)
	pages := make([]byte, (size+os.Getpagesize()-1)/os.Getpagesize())
	if _, _, e := unix.Syscall(unix.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&pages[0]))); e != 0 {
		t.Fatal(e)
	}
	cached := 0
	for _, p := range pages {
		cached += int(p & 1)
	}
	if cached > len(pages)/10 {
		t.Fatalf("%d of %d pages in the page cache: the write was buffered", cached, len(pages))
	}
}
