// Package userdata decodes the user-data envelope: gzip, MIME multipart
// (as cloud-init writes it), #cloud-config documents mapped onto our keys,
// shell-script parts and our own YAML. It turns user-data into config
// layers and scripts; it fetches nothing and runs nothing.
package userdata

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/opsboot/bootstrap/internal/config"
)

// MaxDocument bounds each decoded document (a config layer, a
// cloud-config, a script) as config bounds a layer: gzip and base64 are a
// way to fit EC2's 16 KiB, not a way to more room.
const MaxDocument = config.MaxLayerBytes

// MaxDecompressed bounds everything gzip may expand to in one user-data,
// all parts together, so a gzip bomb is an error and not an out-of-memory.
const MaxDecompressed = 4 << 20

// maxParts bounds the number of MIME parts, so a crafted document cannot
// keep the boot busy.
const maxParts = 1000

// Script is a text/x-shellscript part (or a user-data that starts with
// #!), run by the engine once per instance.
type Script struct {
	Name string // the part's source name, unique within one Decode
	Body []byte
}

// Decoded is what user-data holds, in document order.
type Decoded struct {
	Layers   []*config.Layer
	Scripts  []Script
	Warnings []string
	// Plain holds what the user-data hid under an encoding, decoded: gzip,
	// base64 and quoted-printable MIME parts, cloud-config content in gzip or
	// base64. User-data is secret as a whole, and so is each of these: the
	// caller registers them with the redactor as it does the raw user-data.
	Plain [][]byte
}

// Decode decodes raw user-data. source names it in errors and warnings and
// prefixes the names of MIME parts: source[2](base.yaml) is the second part,
// counted from 1, named by its Content-Disposition filename. Errors are a
// config.ErrorList, positioned inside the part they concern. Empty or
// all-whitespace user-data decodes to nothing, without error.
func Decode(source string, raw []byte) (*Decoded, error) {
	d := &decoder{source: source, budget: MaxDecompressed, out: &Decoded{}}
	data := raw
	if isGzip(data) {
		var ok bool
		if data, ok = d.gunzip(source, data); !ok {
			return nil, d.errs
		}
		d.out.Plain = append(d.out.Plain, data)
	}
	if isMIME(data) {
		d.message(data, 0)
	} else {
		d.document(source, data)
	}
	if len(d.unsupported) > 0 {
		d.warnf("%s: skipped MIME parts of types bootstrap does not handle: %s",
			source, strings.Join(d.unsupported, ", "))
	}
	if len(d.errs) > 0 {
		return nil, d.errs
	}
	return d.out, nil
}

type decoder struct {
	source      string
	budget      int // bytes gzip may still expand to
	parts       int // MIME leaf parts seen, for names
	out         *Decoded
	errs        config.ErrorList
	unsupported []string // "name (type)" of skipped parts
}

func (d *decoder) errorf(source, format string, args ...any) {
	d.errs.Add(&config.Error{Source: source, Msg: fmt.Sprintf(format, args...)})
}

func (d *decoder) warnf(format string, args ...any) {
	d.out.Warnings = append(d.out.Warnings, fmt.Sprintf(format, args...))
}

// addErr keeps the positioned errors of a layer, or wraps another error.
func (d *decoder) addErr(source string, err error) {
	if list, ok := err.(config.ErrorList); ok {
		d.errs.AddAll(list)
		return
	}
	d.errorf(source, "%v", err)
}

// document handles one document whose kind comes from its first line:
// #cloud-config, #! (a script), or our YAML (optionally headed
// #bootstrap-config). Other cloud-init formats are errors, because the
// operator expected them to do something.
func (d *decoder) document(name string, data []byte) {
	first := firstLine(data)
	token, _, _ := strings.Cut(first, " ")
	switch {
	case len(bytes.TrimSpace(data)) == 0:
		return
	case token == "#cloud-config":
		d.cloudConfig(name, data)
	case strings.HasPrefix(first, "#!"):
		if len(data) > MaxDocument {
			d.errorf(name, "the script is %d bytes, more than the %d KiB a user-data script may have; fetch a bigger one from S3 with a small script", len(data), MaxDocument>>10)
			return
		}
		d.out.Scripts = append(d.out.Scripts, Script{Name: name, Body: data})
	case token == "#include", token == "#include-once":
		d.errorf(name, "%s user-data is not supported: bootstrap does not fetch URLs listed in user-data; list them under include: in a bootstrap config layer", token)
	case token == "#cloud-boothook", token == "#part-handler", token == "#upstart-job",
		token == "#cloud-config-archive", token == "#cloud-config-jsonp",
		strings.HasPrefix(first, "## template:"):
		d.errorf(name, "%s user-data is not supported by bootstrap; use a shell script (#!) or #cloud-config", token)
	default:
		layer, err := config.ParseLayer(name, data)
		if err != nil {
			d.addErr(name, err)
			return
		}
		d.addLayer(layer)
	}
}

// addLayer keeps a layer unless it is empty: an empty part sets nothing.
func (d *decoder) addLayer(l *config.Layer) {
	if l.Root != nil && len(l.Root.Content) > 0 {
		d.out.Layers = append(d.out.Layers, l)
	}
}

// firstLine is the first line without a byte-order mark, line ending or
// trailing blanks.
func firstLine(data []byte) string {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	line, _, _ := bytes.Cut(data, []byte("\n"))
	return strings.TrimRight(string(line), " \t\r")
}
