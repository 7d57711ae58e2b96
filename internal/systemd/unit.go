// Package systemd writes systemd units and drop-ins under the target root
// and enables, masks and starts them: the services: section, and the
// periodic-run service and timer that Chef and Puppet install.
//
// Two paths, one description. When systemd runs the target root (the root
// is / and sd_booted says systemd is PID 1) units are enabled and started
// through systemd's D-Bus API, so systemd itself decides. Otherwise (an
// image build, a chroot, a test root) the links [Install] asks for are made
// by hand, exactly as `systemctl --root=DIR enable` makes them, and a unit
// to be started starts at the next boot. Either way the unit files are
// written atomically through rootfs and a rerun changes nothing.
package systemd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"

	"github.com/opsboot/bootstrap/internal/config"
)

// ConfigDir is where units and drop-ins we write go, as systemctl puts an
// administrator's units.
const ConfigDir = "/etc/systemd/system"

// SearchPath is the system unit path looked up under the root, in
// systemd's order (generator and transient directories left out: nothing
// persistent lives there). Debian lists /lib before /usr/lib.
var SearchPath = []string{
	"/etc/systemd/system",
	"/run/systemd/system",
	"/usr/local/lib/systemd/system",
	"/lib/systemd/system",
	"/usr/lib/systemd/system",
}

// Unit is one unit to manage, as Go values: what the services: section
// decodes to, and what Chef's and Puppet's capabilities build for their
// periodic runs.
type Unit struct {
	// Name with its type suffix: app.service, app.timer, app@.service.
	Name string
	// Body is the unit file to write to /etc/systemd/system/<Name>; nil
	// leaves the unit as it is on the root (a unit a package installed).
	Body *File
	// Dropins go to /etc/systemd/system/<Name>.d/<File.Name>.
	Dropins []*File
	// Enable: true makes the [Install] links, false removes them, nil
	// leaves them.
	Enable *bool
	// Start starts the unit now when systemd runs the root (restarts it
	// when its files changed in this run); else it starts at boot if
	// enabled.
	Start bool
	// Mask: true links the unit to /dev/null, false removes such a link,
	// nil leaves it.
	Mask *bool
}

// File is a unit file's content, rendered once so the digest `plan` shows
// is what `run` writes.
type File struct {
	Name     string // drop-in file name; "" for the unit itself
	Data     []byte
	SHA256   string
	sections []*unit.UnitSection
}

// NewFile renders sections with go-systemd's serialiser. The serialiser
// writes names and values as they are, so they are checked first: a
// newline in a value would start a line systemd reads as something else.
func NewFile(name string, sections []*unit.UnitSection) (*File, error) {
	for _, s := range sections {
		if s.Section == "" || strings.ContainsAny(s.Section, "[]\n\r") {
			return nil, fmt.Errorf("section name %q is not valid", s.Section)
		}
		for _, e := range s.Entries {
			if e.Name == "" || strings.ContainsAny(e.Name, "= \t\n\r#;[") {
				return nil, fmt.Errorf("[%s]: option name %q is not valid", s.Section, e.Name)
			}
			if strings.ContainsAny(e.Value, "\n\r\x00") || strings.HasSuffix(e.Value, "\\") {
				return nil, fmt.Errorf("[%s] %s: the value must be one line, not ending in \\ (which would continue it onto the next)", s.Section, e.Name)
			}
		}
	}
	data, err := io.ReadAll(unit.SerializeSections(sections))
	if err != nil {
		return nil, err
	}
	if len(data) > config.MaxUnitBytes {
		return nil, fmt.Errorf("%d bytes; a unit may have at most %d", len(data), config.MaxUnitBytes)
	}
	return newFile(name, data, sections), nil
}

// ParseFile takes a unit's text as given (comments and layout kept, so the
// digest is the one an operator computes) once it parses.
func ParseFile(name string, text []byte) (*File, error) {
	if len(text) > config.MaxUnitBytes {
		return nil, fmt.Errorf("%d bytes; a unit may have at most %d", len(text), config.MaxUnitBytes)
	}
	if line, msg := config.CheckUnitText(string(text)); msg != "" {
		return nil, fmt.Errorf("line %d: %s", line, msg)
	}
	secs, err := unit.DeserializeSections(bytes.NewReader(text))
	if err != nil {
		return nil, err
	}
	return newFile(name, text, secs), nil
}

func newFile(name string, data []byte, secs []*unit.UnitSection) *File {
	sum := sha256.Sum256(data)
	return &File{Name: name, Data: data, SHA256: hex.EncodeToString(sum[:]), sections: secs}
}

// Sections builds unit sections from Go values: each option is a
// {Key, Value} pair, in order.
func Sections(secs ...Section) []*unit.UnitSection {
	out := make([]*unit.UnitSection, 0, len(secs))
	for _, s := range secs {
		us := &unit.UnitSection{Section: s.Name, Entries: []*unit.UnitEntry{}}
		for _, o := range s.Options {
			us.Entries = append(us.Entries, &unit.UnitEntry{Name: o[0], Value: o[1]})
		}
		out = append(out, us)
	}
	return out
}

// Section is one [Name] with its options as key/value pairs.
type Section struct {
	Name    string
	Options [][2]string
}

// FromConfig turns a services: entry into a Unit.
func FromConfig(s config.Service) (Unit, error) {
	u := Unit{Name: s.Name, Enable: s.Enabled, Start: s.Started, Mask: s.Masked}
	body, err := fileFromConfig("", s.Content, s.Sections)
	if err != nil {
		return Unit{}, fmt.Errorf("%s: %w", s.Name, err)
	}
	u.Body = body
	for _, d := range s.Dropins {
		f, err := fileFromConfig(d.Name, d.Content, d.Sections)
		if err != nil {
			return Unit{}, fmt.Errorf("%s: drop-in %s: %w", s.Name, d.Name, err)
		}
		u.Dropins = append(u.Dropins, f)
	}
	return u, nil
}

func fileFromConfig(name string, content *string, secs []config.UnitSection) (*File, error) {
	switch {
	case content != nil:
		return ParseFile(name, []byte(*content))
	case secs != nil:
		var us []Section
		for _, s := range secs {
			sec := Section{Name: s.Section}
			for _, o := range s.Options {
				k, v, _ := strings.Cut(o, "=")
				sec.Options = append(sec.Options, [2]string{k, v})
			}
			us = append(us, sec)
		}
		return NewFile(name, Sections(us...))
	}
	return nil, nil
}
