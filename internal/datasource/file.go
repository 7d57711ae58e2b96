package datasource

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/opsboot/bootstrap/internal/badinput"
	"github.com/opsboot/bootstrap/internal/localfile"
)

// NewFile is the datasource for Vagrant and no-cloud machines: dir holds
// user-data (optional) and meta-data (optional YAML with the keys
// instance-id, local-hostname, region, availability-zone, instance-type,
// local-ipv4, mac). Without an instance-id the machine's
// <root>/etc/machine-id is used ("" root = "/"). Unknown keys are errors (a
// typo would otherwise silently lose a fact), except cloud-init's
// dsmode, network-interfaces and public-keys, which are ignored so a
// cloud-init seed directory can be reused.
func NewFile(dir, root string) Datasource {
	if root == "" {
		root = "/"
	}
	return &fileSource{dir: dir, root: root}
}

type fileSource struct{ dir, root string }

func (f *fileSource) Name() string { return "file" }

// metaKeys maps meta-data keys to the Metadata field they fill.
var metaKeys = map[string]func(*Metadata) *string{
	"instance-id":       func(m *Metadata) *string { return &m.InstanceID },
	"local-hostname":    func(m *Metadata) *string { return &m.Hostname },
	"region":            func(m *Metadata) *string { return &m.Region },
	"availability-zone": func(m *Metadata) *string { return &m.AvailabilityZone },
	"instance-type":     func(m *Metadata) *string { return &m.InstanceType },
	"local-ipv4":        func(m *Metadata) *string { return &m.LocalIPv4 },
	"mac":               func(m *Metadata) *string { return &m.MAC },
}

// ignoredKeys are cloud-init NoCloud keys bootstrap has no use for.
var ignoredKeys = map[string]bool{"dsmode": true, "network-interfaces": true, "public-keys": true}

func (f *fileSource) Fetch(ctx context.Context) (*Metadata, error) {
	st, err := os.Stat(f.dir)
	switch {
	// A wrong --datasource-dir is the operator's to fix: bad input.
	case errors.Is(err, fs.ErrNotExist):
		return nil, badinput.Wrap(fmt.Errorf("file datasource: directory %s does not exist; create it with user-data and/or meta-data, or choose another datasource", f.dir))
	case err != nil:
		return nil, fmt.Errorf("file datasource: %w", err)
	case !st.IsDir():
		return nil, badinput.Wrap(fmt.Errorf("file datasource: %s is not a directory", f.dir))
	}
	md := &Metadata{Source: "file"}

	metaPath := filepath.Join(f.dir, "meta-data")
	b, err := localfile.ReadFile(metaPath, maxMetaData)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, seedError(err)
	default:
		if err := parseMetaData(metaPath, b, md); err != nil {
			return nil, badinput.Wrap(err)
		}
	}

	udPath := filepath.Join(f.dir, "user-data")
	ud, err := localfile.ReadFile(udPath, MaxUserData)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, seedError(err)
	default:
		md.UserData = ud
	}

	if md.InstanceID == "" {
		md.InstanceID = machineID(f.root)
	}
	if md.InstanceID == "" {
		return nil, fmt.Errorf("file datasource: no instance-id: set instance-id in %s or give the machine an %s", metaPath, filepath.Join(f.root, "etc", "machine-id"))
	}
	return md, nil
}

// seedError marks a seed file that is not a regular file, or too large, as
// bad input: the operator has to fix the seed, and a rerun cannot help.
func seedError(err error) error {
	err = fmt.Errorf("file datasource: %w", err)
	if errors.Is(err, localfile.ErrNotRegular) || errors.Is(err, localfile.ErrTooLarge) {
		return badinput.Wrap(err)
	}
	return err
}

// parseMetaData fills md from the YAML in b. It walks the node tree rather
// than decoding into a struct so that every error can name file:line, and
// so that values keep their text exactly (a MAC is not a number).
func parseMetaData(path string, b []byte, md *Metadata) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		// yaml.v3 says "line N: ..."; make it path:N: like every other
		// position in bootstrap's messages.
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if n, after, ok := strings.Cut(rest, ": "); ok {
				return fmt.Errorf("%s:%s: %s", path, n, after)
			}
		}
		return fmt.Errorf("%s: %s", path, msg)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil // empty file
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil // only comments
	}
	if root.Kind != yaml.MappingNode {
		return fmt.Errorf("%s:%d: meta-data must be a mapping of key: value", path, root.Line)
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			return fmt.Errorf("%s:%d: keys must be plain strings", path, k.Line)
		}
		if line, dup := seen[k.Value]; dup {
			return fmt.Errorf("%s:%d: %s is set twice (first on line %d)", path, k.Line, k.Value, line)
		}
		seen[k.Value] = k.Line
		if ignoredKeys[k.Value] {
			continue
		}
		field, ok := metaKeys[k.Value]
		if !ok {
			return fmt.Errorf("%s:%d: unknown key %q; known keys: %s", path, k.Line, k.Value, knownKeys())
		}
		if v.Kind != yaml.ScalarNode || v.Tag == "!!null" {
			return fmt.Errorf("%s:%d: %s must be a single value", path, v.Line, k.Value)
		}
		*field(md) = strings.TrimSpace(v.Value)
	}
	return nil
}

func knownKeys() string {
	keys := make([]string, 0, len(metaKeys))
	for k := range metaKeys {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}
