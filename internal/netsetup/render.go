package netsetup

import (
	"fmt"
	"os"
	"strings"
)

// File is one file a renderer writes under the target root.
type File struct {
	Path    string
	Mode    os.FileMode
	Content []byte
	// Dev is the adapter the file configures; "" for a file shared by
	// every adapter (netplan's, ifupdown's interfaces).
	Dev string
}

// Stack is the host network stack a renderer writes for.
type Stack struct {
	Renderer string // ifupdown, netplan, networkd, networkmanager, ifcfg
	// Backend is netplan's renderer: networkd or NetworkManager.
	Backend string
	Reason  string // why, for the plan
}

// Renderer writes one stack's configuration for the adapters.
type Renderer interface {
	// Render returns the files for ifs. read gives the current content of
	// a file the renderer shares with the operator (ifupdown's
	// /etc/network/interfaces); fs.ErrNotExist when missing.
	Render(ifs []Iface, st Stack, read func(path string) ([]byte, error)) ([]File, error)
	// Owned reports whether path, a file under one of Dirs, is named as
	// this renderer names its files (the Marker inside decides).
	Owned(path string) bool
	// Dirs are where its per-adapter files live, scanned for stale ones.
	Dirs() []string
	// Reload is the commands that make the running stack take one
	// device's changed file, touching no other device.
	Reload(f Iface, st Stack, file string) [][]string
}

// renderers by name.
var renderers = map[string]Renderer{
	"ifupdown":       ifupdown{},
	"netplan":        netplan{},
	"networkd":       networkd{},
	"networkmanager": networkManager{},
	"ifcfg":          ifcfg{},
}

// rendererNames in a fixed order, for scans and messages.
var rendererNames = []string{"ifupdown", "netplan", "networkd", "networkmanager", "ifcfg"}

// withMarker starts a file with the Marker line.
func withMarker(lines ...string) []byte {
	return []byte(Marker + "\n" + strings.Join(lines, "\n") + "\n")
}

func hasMarker(b []byte) bool {
	line, _, _ := strings.Cut(string(b), "\n")
	return line == Marker
}

// lines collects non-empty lines.
type lines []string

func (l *lines) add(format string, args ...any) { *l = append(*l, fmt.Sprintf(format, args...)) }
