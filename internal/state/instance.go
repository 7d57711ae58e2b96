package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// maxIDLen bounds instance ids; real ones (i-0123456789abcdef0, UUIDs,
// iid-local01) are far shorter.
const maxIDLen = 128

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
	data, err := os.ReadFile(inst.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("state: read %s: %w", inst.path, err)
	default:
		var sf stepsFile
		if err := json.Unmarshal(data, &sf); err != nil {
			// Never torn (it is replaced atomically), so this is damage
			// from outside; refuse rather than redo every step silently.
			return nil, fmt.Errorf("state: %s is not valid JSON (delete it to redo the instance's steps): %w", inst.path, err)
		}
		if sf.Steps != nil {
			inst.steps = sf.Steps
		}
	}
	d.instances[id] = inst
	return inst, nil
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
// steps.json. The caller holds i.d.mu.
func (i *Instance) write(data []byte) error {
	dir := filepath.Dir(i.path)
	for _, p := range []string{filepath.Dir(dir), dir} {
		if err := mkdirPrivate(p); err != nil {
			return fmt.Errorf("create directory %s: %w", p, err)
		}
	}
	return writeAtomic(i.path, data)
}

// PreviousInstance returns the instance id recorded by the last
// SetCurrentInstance, or "" if there is none.
func (d *Dir) PreviousInstance() (string, error) {
	p := filepath.Join(d.path, instanceIDName)
	data, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("state: read %s: %w", p, err)
	}
	id := strings.TrimSpace(string(data))
	if err := ValidateID(id); err != nil {
		return "", fmt.Errorf("state: %s: %w", p, err)
	}
	return id, nil
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
