package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/unit"
)

// Service is one systemd unit to write, enable, start or mask under --root.
// The unit is given as full text (content), as structured sections, or not
// at all when only its enablement changes (a unit a package installed).
type Service struct {
	// Name is the unit's name with its type suffix: app.service, app.timer,
	// getty@tty1.service, app@.service (a template).
	Name     string        `yaml:"name" config:"key"`
	Content  *string       `yaml:"content" config:"sensitive"` // the unit file's text (Environment= may hold secrets)
	Sections []UnitSection `yaml:"sections"`                   // or the unit as sections of Key=value options
	Dropins  []Dropin      `yaml:"dropins"`                    // written to /etc/systemd/system/<name>.d/
	// Enabled: true makes the links [Install] asks for (systemctl enable),
	// false removes them (disable); unset leaves them as they are.
	Enabled *bool `yaml:"enabled"`
	// Started: the unit is started now when systemd runs the target root
	// (restarted when this run changed its files); otherwise it starts at
	// boot if enabled. false does not stop a running unit.
	Started bool `yaml:"started"`
	// Masked: true links the unit to /dev/null so nothing can start it
	// (systemctl mask), false removes such a link; unset leaves it.
	Masked *bool `yaml:"masked"`
}

// UnitSection is one [Section] of a unit given as structure.
type UnitSection struct {
	Section string   `yaml:"section"` // Unit, Service, Timer, Install, X-Vendor…
	Options []string `yaml:"options"` // "Key=value", in order; a key may repeat
}

// Dropin is one drop-in file for a unit: <name>.d/<dropin name>.
type Dropin struct {
	Name     string        `yaml:"name" config:"key"` // ends in .conf, e.g. 10-limits.conf
	Content  *string       `yaml:"content" config:"sensitive"`
	Sections []UnitSection `yaml:"sections"`
}

// Unit limits: real units are a few KiB.
const (
	MaxUnitBytes   = 256 << 10
	MaxDropins     = 64
	maxUnitNameLen = 255 // systemd's UNIT_NAME_MAX
)

// UnitSuffixes are the unit types systemd knows, as they end a unit name.
var UnitSuffixes = []string{".service", ".socket", ".device", ".mount", ".automount",
	".swap", ".target", ".path", ".timer", ".slice", ".scope"}

var (
	unitNameRE    = regexp.MustCompile(`^[A-Za-z0-9:_.\\-]+(@[A-Za-z0-9:_.\\-]*)?$`)
	dropinNameRE  = regexp.MustCompile(`^[A-Za-z0-9:_.@\\-]+\.conf$`)
	sectionNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)
	optionKeyRE   = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
)

// CheckUnitName says what is wrong with a unit name, or "".
func CheckUnitName(name string) string {
	if name == "" {
		return "required: the unit's name with its type, e.g. app.service or app.timer"
	}
	if len(name) > maxUnitNameLen {
		return fmt.Sprintf("longer than %d bytes", maxUnitNameLen)
	}
	suffix := ""
	for _, s := range UnitSuffixes {
		if strings.HasSuffix(name, s) && len(name) > len(s) {
			suffix = s
		}
	}
	if suffix == "" {
		return fmt.Sprintf("%s has no unit type suffix; want one of %s", quoteShort(name), strings.Join(UnitSuffixes, ", "))
	}
	stem := strings.TrimSuffix(name, suffix)
	if !unitNameRE.MatchString(stem) || strings.HasPrefix(stem, "@") {
		return fmt.Sprintf("%s is not a valid unit name: letters, digits and :_.\\- only, with at most one @ (a template)", quoteShort(name))
	}
	return ""
}

// IsTemplate reports whether a unit name is a template (app@.service).
func IsTemplate(name string) bool {
	at := strings.IndexByte(name, '@')
	return at >= 0 && strings.IndexByte(name[at:], '.') == 1
}

func (s *Service) check(c *checker, p string) {
	at := func(key string) string { return joinKey(p, key) }
	if msg := CheckUnitName(s.Name); msg != "" {
		c.errorf(at("name"), "%s", msg)
	}
	hasBody := s.Content != nil || s.Sections != nil
	masked := s.Masked != nil && *s.Masked
	switch {
	case s.Content != nil && s.Sections != nil:
		c.errorf(p, "set content or sections, not both")
	case masked && (hasBody || len(s.Dropins) > 0):
		c.errorf(at("masked"), "a masked unit is a link to /dev/null: drop content, sections and dropins, or masked")
	case masked && s.Enabled != nil && *s.Enabled:
		c.errorf(at("enabled"), "a masked unit cannot be enabled")
	case masked && s.Started:
		c.errorf(at("started"), "a masked unit cannot be started")
	case s.Masked == nil && !hasBody && len(s.Dropins) == 0 && s.Enabled == nil && !s.Started:
		c.errorf(p, "nothing to do: set content or sections (the unit), dropins, enabled, started or masked")
	}
	if s.Started && IsTemplate(s.Name) {
		c.errorf(at("started"), "%s is a template; start an instance of it, e.g. %s", quoteShort(s.Name),
			strings.Replace(s.Name, "@.", "@name.", 1))
	}
	var install bool
	if s.Content != nil {
		install = c.unitText(at("content"), *s.Content) || install
	}
	if s.Sections != nil {
		install = c.unitSections(at("sections"), s.Sections) || install
	}
	if len(s.Dropins) > MaxDropins {
		c.errorf(at("dropins"), "%d drop-ins; at most %d", len(s.Dropins), MaxDropins)
	}
	seen := map[string]int{}
	for i, d := range s.Dropins {
		dp := fmt.Sprintf("%s[%d]", at("dropins"), i)
		if j, dup := seen[d.Name]; dup && d.Name != "" {
			c.errorf(dp+".name", "duplicate drop-in %s: dropins[%d] writes it too", quoteShort(d.Name), j)
		}
		seen[d.Name] = i
		if d.Content != nil {
			install = c.unitText(dp+".content", *d.Content) || install
		}
		if d.Sections != nil {
			install = c.unitSections(dp+".sections", d.Sections) || install
		}
	}
	if s.Enabled != nil && *s.Enabled && hasBody && !install {
		c.errorf(at("enabled"), "the unit has no [Install] section with WantedBy=, RequiredBy=, Alias= or Also=, so enabling it would do nothing")
	}
}

func (d *Dropin) check(c *checker, p string) {
	at := func(key string) string { return joinKey(p, key) }
	switch {
	case d.Name == "":
		c.errorf(at("name"), "required: the drop-in's file name, e.g. 10-override.conf")
	case !dropinNameRE.MatchString(d.Name) || len(d.Name) > maxUnitNameLen:
		c.errorf(at("name"), "want a file name ending in .conf (letters, digits, :_.@- only), got %s", quoteShort(d.Name))
	}
	switch {
	case d.Content != nil && d.Sections != nil:
		c.errorf(p, "set content or sections, not both")
	case d.Content == nil && d.Sections == nil:
		c.errorf(p, "set content (the drop-in's text) or sections")
	}
}

// installKeys are the [Install] options that make enabling do something.
var installKeys = map[string]bool{"WantedBy": true, "RequiredBy": true, "UpheldBy": true, "Alias": true, "Also": true}

// unitText checks a unit's text as systemd would read it and reports
// whether it has an [Install] section that enabling acts on. Problems name
// the line inside the unit; the text itself is never quoted.
func (c *checker) unitText(p, text string) (install bool) {
	if len(text) > MaxUnitBytes {
		c.errorf(p, "%d bytes; a unit may have at most %d", len(text), MaxUnitBytes)
		return false
	}
	if line, msg := CheckUnitText(text); msg != "" {
		c.errorf(p, "line %d of the unit: %s", line, msg)
		return false
	}
	secs, err := unit.DeserializeSections(strings.NewReader(text))
	if err != nil {
		c.errorf(p, "the unit does not parse: %v", err)
		return false
	}
	for _, s := range secs {
		for _, e := range s.Entries {
			if s.Section == "Install" && installKeys[e.Name] && strings.TrimSpace(e.Value) != "" {
				install = true
			}
		}
	}
	return install
}

// CheckUnitText returns the first line of a unit file's text that systemd
// would ignore or reject, with what is wrong: go-systemd's parser skips
// text before the first section silently, which would hide a mistake.
func CheckUnitText(text string) (line int, msg string) {
	if strings.IndexByte(text, 0) >= 0 {
		return 1 + strings.Count(text[:strings.IndexByte(text, 0)], "\n"), "contains a NUL byte"
	}
	inSection, continued := false, false
	for i, l := range strings.Split(text, "\n") {
		n := i + 1
		l = strings.TrimRight(l, "\r")
		t := strings.TrimSpace(l)
		if continued {
			continued = strings.HasSuffix(t, "\\")
			continue
		}
		switch {
		case t == "" || t[0] == '#' || t[0] == ';':
		case t[0] == '[':
			name, ok := strings.CutSuffix(t, "]")
			name = strings.TrimPrefix(name, "[")
			if !ok || !sectionNameRE.MatchString(name) {
				return n, "want a section header like [Service]"
			}
			inSection = true
		case !inSection:
			return n, "an option before the first [Section] header"
		default:
			key, _, ok := strings.Cut(t, "=")
			if !ok {
				return n, "want Key=value, a [Section] header or a # comment"
			}
			if !optionKeyRE.MatchString(strings.TrimSpace(key)) {
				return n, "the option's key must be letters, digits, _ or -"
			}
			continued = strings.HasSuffix(t, "\\")
		}
	}
	return 0, ""
}

// unitSections checks structured sections and reports whether they have
// an [Install] section that enabling acts on.
func (c *checker) unitSections(p string, secs []UnitSection) (install bool) {
	size := 0
	for i, s := range secs {
		sp := fmt.Sprintf("%s[%d]", p, i)
		if !sectionNameRE.MatchString(s.Section) {
			c.errorf(sp+".section", "want a section name like Unit, Service or Install, got %s", quoteShort(s.Section))
		}
		for j, o := range s.Options {
			op := sp + ".options[" + strconv.Itoa(j) + "]"
			size += len(o)
			key, val, ok := strings.Cut(o, "=")
			switch {
			case !ok:
				c.errorf(op, "want Key=value")
			case !optionKeyRE.MatchString(key):
				c.errorf(op, "the key before = must be letters, digits, _ or -")
			case strings.ContainsAny(val, "\n\r\x00"):
				c.errorf(op, "the value must be one line; repeat the key for more values")
			case strings.HasSuffix(val, "\\"):
				c.errorf(op, "the value must not end in \\: systemd would continue it onto the next option")
			case s.Section == "Install" && installKeys[key] && strings.TrimSpace(val) != "":
				install = true
			}
		}
	}
	if size > MaxUnitBytes {
		c.errorf(p, "%d bytes of options; a unit may have at most %d", size, MaxUnitBytes)
	}
	return install
}

// Services is the services: list. Its own type, so that its check (one
// entry per unit) runs without a line in Config's.
type Services []Service

func (ss *Services) check(c *checker, p string) {
	first := map[string]int{}
	for i, s := range *ss {
		if s.Name == "" {
			continue
		}
		if j, dup := first[s.Name]; dup {
			src, line, col := c.m.locate(fmt.Sprintf("%s[%d].name", p, j))
			c.errorf(fmt.Sprintf("%s[%d].name", p, i), "duplicate unit %s: services[%d] at %s:%d:%d configures it too",
				quoteShort(s.Name), j, src, line, col)
			continue
		}
		first[s.Name] = i
	}
}
