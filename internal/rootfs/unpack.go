package rootfs

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"
)

// UnpackLimits bound what an archive may hold, so a hostile tarball cannot
// fill the disk or spin for ever.
type UnpackLimits struct {
	Entries    int   // entries read, directories included
	FileBytes  int64 // one file
	TotalBytes int64 // all files
}

// Unpack writes the regular files of a tar archive, gzip-compressed or not,
// under dir inside the root (0644, or 0755 when any execute bit is set;
// owned by root). Directories are made as files need them; links, devices
// and other entry types are refused, as are names that are absolute or
// climb out with "..", so nothing lands outside dir. rename, when set, maps
// a cleaned entry name to the path written under dir, "" skipping it. With
// a nil root the archive is only checked. It returns how many files it
// wrote (or would write).
func Unpack(ctx context.Context, root *Root, dir string, src io.Reader, lim UnpackLimits, rename func(name string) string) (int, error) {
	br := bufio.NewReader(src)
	var r io.Reader = br
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return 0, fmt.Errorf("not a gzip stream: %w", err)
		}
		defer gz.Close()
		r = gz
	}
	tr := tar.NewReader(r)
	var files int
	var total int64
	for entries := 0; ; entries++ {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return files, fmt.Errorf("read the archive: %w", err)
		}
		if entries >= lim.Entries {
			return files, fmt.Errorf("more than %d entries", lim.Entries)
		}
		if ctx != nil && ctx.Err() != nil {
			return files, ctx.Err()
		}
		name, err := ArchiveName(h.Name)
		if err != nil {
			return files, err
		}
		if name != "" && rename != nil {
			name = rename(name)
		}
		if name == "" {
			continue
		}
		switch h.Typeflag {
		case tar.TypeDir, tar.TypeXGlobalHeader:
			continue // made with the files in them
		case tar.TypeReg:
		default:
			return files, fmt.Errorf("%s: only files and directories are unpacked, links and devices are refused (type %q)", h.Name, string(h.Typeflag))
		}
		total += h.Size
		switch {
		case h.Size > lim.FileBytes:
			return files, fmt.Errorf("%s is over %d bytes", name, lim.FileBytes)
		case total > lim.TotalBytes:
			return files, fmt.Errorf("more than %d bytes unpacked", lim.TotalBytes)
		}
		files++
		if root == nil {
			continue
		}
		mode := fs.FileMode(0o644)
		if h.Mode&0o111 != 0 {
			mode = 0o755
		}
		if _, _, err := root.WriteFile(path.Join(dir, name), io.LimitReader(tr, h.Size), FileSpec{Mode: mode, Owner: "root", Group: "root"}); err != nil {
			return files, err
		}
	}
	if files == 0 {
		return 0, errors.New("the archive holds no files")
	}
	return files, nil
}

// ArchiveName cleans an archive entry's name; "" is the archive's own top
// (./). Absolute names and names that climb out with ".." are errors.
func ArchiveName(n string) (string, error) {
	n = strings.TrimPrefix(n, "./")
	if strings.HasPrefix(n, "/") {
		return "", fmt.Errorf("%s: absolute path in the archive", n)
	}
	c := path.Clean(n)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("%s: leads out of the archive's directory", n)
	}
	if c == "." {
		return "", nil
	}
	return c, nil
}
