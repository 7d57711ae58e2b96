package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxIDLen bounds instance ids; real ones (i-0123456789abcdef0, UUIDs,
// iid-local01) are far shorter.
const maxIDLen = 128

// Records we wrote are small; anything bigger is damage, and reading it whole
// could exhaust memory at boot.
const (
	maxInstanceIDFile = 4 << 10
	maxStepsFile      = 1 << 20
)

// StepRecord says when a per-instance step finished and in which run.
type StepRecord struct {
	Done time.Time `json:"done"`
	Run  string    `json:"run"`
}

// Instance holds the per-instance step records of one instance id. It is
// safe for concurrent use.
type Instance struct {
	d    *Dir
	id   string
	path string // instances/<id>/steps.json

	mu    sync.Mutex
	steps map[string]StepRecord
	// damaged is set when steps.json could not be used; the first MarkDone
	// keeps it aside as steps.json.corrupt before replacing it.
	damaged bool
}

// stepsFile is the on-disk form of steps.json.
type stepsFile struct {
	Instance string                `json:"instance"`
	Steps    map[string]StepRecord `json:"steps"`
}

// ValidateID checks an instance id before it becomes a directory name: it
// comes from a datasource, so it must not be able to name another path.
func ValidateID(id string) error {
	if id == "" {
		return errors.New("state: empty instance id")
	}
	if len(id) > maxIDLen {
		return fmt.Errorf("state: instance id is longer than %d characters", maxIDLen)
	}
	for i, c := range id {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if alnum || i > 0 && strings.ContainsRune("._-:", c) {
			continue
		}
		return fmt.Errorf("state: instance id %q: only letters, digits and . _ - : are allowed, starting with a letter or digit", id)
	}
	return nil
}

// Instance returns the records of instance id. It only reads, so `plan`
// can use it; the instance's directory is created (0700) by the first
// MarkDone. The same *Instance is returned for the same id.
//
// A steps.json that is not ours (not JSON, another instance's, too big) is
// damage from outside: it is never torn, being replaced atomically. The
// instance then starts with no step done, with a warning naming the file,
// and the damaged file is kept as steps.json.corrupt by the first MarkDone.
// Redoing the steps is what the crash rule already asks of them (a step
// killed before it is recorded runs again), so it is safe; refusing would
// stop every boot until someone deletes the file by hand.
func (d *Dir) Instance(id string) (*Instance, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if inst, ok := d.instances[id]; ok {
		return inst, nil
	}
	dir := filepath.Join(d.path, instancesName, id)
	inst := &Instance{d: d, id: id, path: filepath.Join(dir, stepsName), steps: map[string]StepRecord{}}
	data, err := readRecord(inst.path, maxStepsFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case errors.Is(err, errTooBig):
		inst.setDamaged(err.Error())
	case err != nil:
		return nil, fmt.Errorf("state: read %s: %w (fix its permissions, or move it away to redo the instance's steps)", inst.path, err)
	default:
		var sf stepsFile
		switch err := json.Unmarshal(data, &sf); {
		case err != nil:
			inst.setDamaged("not valid JSON: " + err.Error())
		case sf.Instance != id:
			inst.setDamaged(fmt.Sprintf("records instance %q, not %q", sf.Instance, id))
		default:
			for step, rec := range sf.Steps {
				if step != "" {
					inst.steps[step] = rec
				}
			}
		}
	}
	d.instances[id] = inst
	return inst, nil
}

func (i *Instance) setDamaged(problem string) {
	i.damaged = true
	i.d.log.Warn("per-instance record is damaged: the instance's steps run again (they must be idempotent, as after a crash); the file is kept as "+stepsName+corruptSuffix,
		"path", i.path, "problem", problem)
}

// ID returns the instance id.
func (i *Instance) ID() string { return i.id }

// Done reports whether step is recorded done for this instance, and when.
func (i *Instance) Done(step string) (StepRecord, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	rec, ok := i.steps[step]
	return rec, ok
}

// MarkDone records step as done by run. Call it only once the step's
// effects are durable: after it returns, a re-run skips the step, and a
// crash before it returns makes the re-run redo it. steps.json is replaced
// atomically (file and directory fsynced), so it is never seen half written.
func (i *Instance) MarkDone(step, run string) error {
	if step == "" {
		return errors.New("state: mark done: empty step name")
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	next := maps.Clone(i.steps)
	next[step] = StepRecord{Done: time.Now().UTC().Round(0), Run: run}
	data, err := json.MarshalIndent(stepsFile{Instance: i.id, Steps: next}, "", "  ")
	if err != nil {
		return fmt.Errorf("state: mark %s done: %w", step, err)
	}
	data = append(data, '\n')
	i.d.mu.Lock()
	err = i.write(data)
	i.d.mu.Unlock()
	if err != nil {
		return fmt.Errorf("state: mark %s done in %s: %w", step, i.path, err)
	}
	i.steps = next
	return nil
}

// write creates the instance's directories if needed and replaces
// steps.json, first keeping a damaged one aside. The caller holds i.d.mu.
func (i *Instance) write(data []byte) error {
	dir := filepath.Dir(i.path)
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := i.d.mkdirPrivate(p); err != nil {
			return fmt.Errorf("directory %s: %w", p, err)
		}
	}
	if i.damaged {
		if err := os.Rename(i.path, i.path+corruptSuffix); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("keep the damaged record aside: %w", err)
		}
		i.damaged = false
	}
	return writeAtomic(i.path, data)
}

// PreviousInstance returns the instance id recorded by the last
// SetCurrentInstance, or "" if there is none.
//
// The record only says which instance ran last (for the log): what is done
// is kept per instance in steps.json. So a damaged record (empty, not an
// id, too big) is read as "no previous instance", with a warning naming
// the file, and the next SetCurrentInstance replaces it. A record that
// cannot be read at all (permissions, a directory) is an error naming it.
func (d *Dir) PreviousInstance() (string, error) {
	p := filepath.Join(d.path, instanceIDName)
	data, err := readRecord(p, maxInstanceIDFile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", nil
	case errors.Is(err, errTooBig):
		d.log.Warn("the current-instance record is damaged: read as no previous instance; it is rewritten by this run", "path", p, "problem", err.Error())
		return "", nil
	case err != nil:
		return "", fmt.Errorf("state: read %s: %w (fix it, or remove it: it only records the last instance)", p, err)
	}
	id := strings.TrimSpace(string(data))
	if err := ValidateID(id); err != nil {
		d.log.Warn("the current-instance record is damaged: read as no previous instance; it is rewritten by this run", "path", p, "problem", err.Error())
		return "", nil
	}
	return id, nil
}

var errTooBig = errors.New("larger than bootstrap ever writes")

// readRecord reads a record we wrote, at most limit bytes; a bigger file
// gives an error wrapping errTooBig. Errors do not repeat the path: callers
// name it. Only regular files are read: a FIFO or
// device put in its place must not hang or flood the run.
func readRecord(path string, limit int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w (over %d bytes)", errTooBig, limit)
	}
	return b, nil
}

// SetCurrentInstance records id as the instance last seen, atomically.
func (d *Dir) SetCurrentInstance(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	p := filepath.Join(d.path, instanceIDName)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := writeAtomic(p, []byte(id+"\n")); err != nil {
		return fmt.Errorf("state: record current instance in %s: %w", p, err)
	}
	return nil
}
