package rootfs

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"

	"github.com/opsboot/bootstrap/internal/localfile"
)

// ErrUnknownUser and ErrUnknownGroup are wrapped when a name is not in the
// target's /etc/passwd or /etc/group.
var (
	ErrUnknownUser  = errors.New("unknown user")
	ErrUnknownGroup = errors.New("unknown group")
)

// LookupUser resolves a user name to a uid using the target root's
// /etc/passwd, never the host's: when building an image the two differ.
// Numeric strings are taken as ids. "root" is 0 even without a passwd file.
func (r *Root) LookupUser(name string) (int, error) {
	id, err := r.lookup("etc/passwd", "user", name, ErrUnknownUser)
	if err != nil {
		return 0, fmt.Errorf("rootfs: %w", err)
	}
	return id, nil
}

// LookupGroup resolves a group name to a gid using the target root's
// /etc/group, with the same rules as LookupUser.
func (r *Root) LookupGroup(name string) (int, error) {
	id, err := r.lookup("etc/group", "group", name, ErrUnknownGroup)
	if err != nil {
		return 0, fmt.Errorf("rootfs: %w", err)
	}
	return id, nil
}

func (r *Root) lookup(file, kind, name string, notFound error) (int, error) {
	if name == "" {
		return 0, fmt.Errorf("empty %s name", kind)
	}
	if name[0] >= '0' && name[0] <= '9' {
		id, err := strconv.ParseUint(name, 10, 32)
		// 2^32-1 is (uid_t)-1, which chown reads as "leave unchanged".
		if err != nil || id == 1<<32-1 {
			return 0, fmt.Errorf("%s id %q is not a valid id", kind, name)
		}
		return int(id), nil
	}
	if strings.ContainsAny(name, ":\n") {
		return 0, fmt.Errorf("%s name %q is not valid", kind, name)
	}
	// Read through the root so a symlinked /etc cannot point us at the
	// host's database.
	data, err := r.readUserDB(file)
	if errors.Is(err, fs.ErrNotExist) {
		if name == "root" {
			return 0, nil
		}
		return 0, fmt.Errorf("%s %q: %w (%s does not exist)", kind, name, notFound, r.display(file))
	}
	if err != nil {
		return 0, fmt.Errorf("%s %q: read %s: %w", kind, name, r.display(file), unwrapPathErr(err))
	}
	for len(data) > 0 {
		var raw []byte
		raw, data, _ = bytes.Cut(data, []byte("\n"))
		line := string(raw)
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := strings.SplitN(line, ":", 4)
		if len(f) < 3 || f[0] != name {
			continue
		}
		id, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			return 0, fmt.Errorf("%s %q: %s has a malformed id for it", kind, name, r.display(file))
		}
		return int(id), nil
	}
	if name == "root" {
		return 0, nil
	}
	return 0, fmt.Errorf("%s %q: %w in %s", kind, name, notFound, r.display(file))
}

// maxUserDB bounds /etc/passwd and /etc/group. A machine with a directory
// exported into them has a few megabytes; past that it is no user database.
const maxUserDB = 8 << 20

// readUserDB reads a user or group database of the target: a regular file
// (a FIFO or device there would hang the run or fill its memory) of at most
// maxUserDB bytes.
func (r *Root) readUserDB(file string) ([]byte, error) {
	f, err := r.root.OpenFile(file, localfile.Flags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if _, err := localfile.Regular(f); err != nil {
		return nil, err
	}
	return localfile.ReadAll(f, maxUserDB)
}
