package userdata

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net/textproto"
	"path"
	"strings"

	"github.com/opsboot/bootstrap/internal/config"
)

// maxDepth bounds nesting (multipart in multipart, gzip in a part).
const maxDepth = 4

func isGzip(b []byte) bool { return len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b }

// gunzip decompresses a whole user-data or part within the budget shared
// by all of the user-data.
func (d *decoder) gunzip(name string, data []byte) ([]byte, bool) {
	out, err := gunzipBounded(data, &d.budget)
	if err != nil {
		d.errorf(name, "%v", err)
		return nil, false
	}
	if isGzip(out) {
		d.errorf(name, "gzip data holds gzip data again; compress user-data once")
		return nil, false
	}
	return out, true
}

var errTooBig = errors.New("gzip data expands beyond the user-data limit")

// gunzipBounded decompresses data, counting what it produces against the
// budget shared by all of one user-data. It stops reading past what either
// limit allows, so a bomb is never inflated whole.
func gunzipBounded(data []byte, budget *int) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("not gzip data: %v", err)
	}
	limit := min(*budget, MaxDocument)
	out, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if len(out) > limit && limit == MaxDocument {
		return nil, fmt.Errorf("gzip data expands beyond %d KiB, the limit for one document; refusing it", MaxDocument>>10)
	}
	if len(out) > limit {
		return nil, fmt.Errorf("%w (%d MiB for all parts together); refusing it", errTooBig, MaxDecompressed>>20)
	}
	if err != nil {
		return nil, fmt.Errorf("gzip data is corrupt or truncated: %v", err)
	}
	*budget -= len(out)
	return out, nil
}

// isMIME tells a MIME message by its first header, as cloud-init writes it
// ("Content-Type: multipart/mixed; …" or "MIME-Version: 1.0").
func isMIME(data []byte) bool {
	first := strings.ToLower(firstLine(data))
	return strings.HasPrefix(first, "content-type:") || strings.HasPrefix(first, "mime-version:")
}

// message reads a MIME message's headers and handles its body.
func (d *decoder) message(data []byte, depth int) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	r := bufio.NewReader(bytes.NewReader(data))
	hdr, err := textproto.NewReader(r).ReadMIMEHeader()
	if err != nil {
		d.errorf(d.source, "MIME headers: %v", err)
		return
	}
	d.entity(hdr, r, depth)
}

// entity handles one MIME entity: a multipart container whose parts are
// handled in order, or a leaf part.
func (d *decoder) entity(hdr textproto.MIMEHeader, body io.Reader, depth int) {
	ct := hdr.Get("Content-Type")
	mediaType, params := "", map[string]string{}
	if ct != "" {
		var err error
		if mediaType, params, err = mime.ParseMediaType(ct); err != nil {
			d.errorf(d.partName(hdr, d.parts+1), "Content-Type %q: %v", ct, err)
			return
		}
	}
	if !strings.HasPrefix(mediaType, "multipart/") {
		d.part(hdr, mediaType, body, depth)
		return
	}
	if depth >= maxDepth {
		d.errorf(d.source, "MIME multipart nested more than %d deep", maxDepth)
		return
	}
	boundary := params["boundary"]
	if boundary == "" {
		d.errorf(d.source, "MIME %s has no boundary parameter", mediaType)
		return
	}
	mr := multipart.NewReader(body, boundary)
	for seen := 0; ; seen++ {
		p, err := mr.NextRawPart()
		// A bare io.EOF is the closing boundary; the reader wraps the EOF
		// of input that ends before it.
		if err == io.EOF {
			return
		}
		if errors.Is(err, io.EOF) && seen == 0 {
			// Treating this as empty would skip the user-data silently.
			d.errorf(d.source, "MIME %s: no part starts with the declared boundary %s; make the boundary parameter match the --BOUNDARY lines between the parts",
				mediaType, quoteBoundary(boundary))
			return
		}
		if err != nil {
			d.errorf(d.source, "MIME multipart after part %d: %v (is the user-data truncated?)", d.parts, err)
			return
		}
		d.entity(p.Header, p, depth+1)
		if d.parts > maxParts {
			return
		}
	}
}

// quoteBoundary quotes a boundary for a message, shortened: it comes from
// the user-data, which may be large.
func quoteBoundary(b string) string {
	if len(b) > 70 { // RFC 2046 allows at most 70 characters
		return fmt.Sprintf("%q…", b[:70])
	}
	return fmt.Sprintf("%q", b)
}

// partName is "source[i](filename)", the name errors about a part use.
func (d *decoder) partName(hdr textproto.MIMEHeader, i int) string {
	name := fmt.Sprintf("%s[%d]", d.source, i)
	if cd := hdr.Get("Content-Disposition"); cd != "" {
		if _, params, err := mime.ParseMediaType(cd); err == nil {
			if fn := cleanFilename(params["filename"]); fn != "" {
				name += "(" + fn + ")"
			}
		}
	}
	return name
}

// cleanFilename keeps a filename printable and free of directories, since
// it ends up in messages and script names.
func cleanFilename(fn string) string {
	fn = path.Base(strings.ReplaceAll(fn, "\\", "/"))
	if fn == "." || fn == "/" || fn == ".." {
		return ""
	}
	fn = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '(' || r == ')' {
			return '_'
		}
		return r
	}, fn)
	if len(fn) > 100 {
		fn = fn[:100]
	}
	return fn
}

// part decodes a leaf part and hands it on by type.
func (d *decoder) part(hdr textproto.MIMEHeader, mediaType string, body io.Reader, depth int) {
	d.parts++
	name := d.partName(hdr, d.parts)
	if d.parts > maxParts {
		if d.parts == maxParts+1 {
			d.errorf(d.source, "more than %d MIME parts", maxParts)
		}
		return
	}
	switch mediaType {
	case "text/cloud-config", "text/x-shellscript", "text/x-bootstrap-config",
		"text/plain", "", "application/x-gzip", "application/gzip":
	default:
		d.unsupported = append(d.unsupported, name+" ("+mediaType+")")
		return
	}

	var r io.Reader
	cte := strings.ToLower(strings.TrimSpace(hdr.Get("Content-Transfer-Encoding")))
	switch cte {
	case "", "7bit", "8bit", "binary":
		r = body
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	default:
		d.errorf(name, "unsupported Content-Transfer-Encoding %q; use base64, quoted-printable or 7bit", cte)
		return
	}
	data, err := io.ReadAll(io.LimitReader(r, MaxDocument+1))
	if err == nil && len(data) > MaxDocument {
		d.errorf(name, "the part is more than %d KiB once decoded, the limit for one document", MaxDocument>>10)
		return
	}
	if err != nil {
		what := "reading the part"
		if cte == "base64" || cte == "quoted-printable" {
			what = "decoding the part's " + cte + " body"
		}
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("%v (is the user-data truncated?)", err)
		}
		d.errorf(name, "%s: %v", what, err)
		return
	}

	if r != body {
		d.out.Plain = append(d.out.Plain, data)
	}
	gzipType := mediaType == "application/x-gzip" || mediaType == "application/gzip"
	switch {
	case isGzip(data):
		var ok bool
		if data, ok = d.gunzip(name, data); !ok {
			return
		}
		d.out.Plain = append(d.out.Plain, data)
	case gzipType:
		d.errorf(name, "the part says %s but does not hold gzip data", mediaType)
		return
	}

	switch mediaType {
	case "text/cloud-config":
		d.cloudConfig(name, data)
	case "text/x-shellscript":
		d.out.Scripts = append(d.out.Scripts, Script{Name: name, Body: data})
	case "text/x-bootstrap-config":
		layer, err := config.ParseLayer(name, data)
		if err != nil {
			d.addErr(name, err)
			return
		}
		d.addLayer(layer)
	default: // text/plain, no type, gzip: the content says what it is
		if isMIME(data) {
			if depth >= maxDepth {
				d.errorf(name, "MIME nested more than %d deep", maxDepth)
				return
			}
			d.message(data, depth+1)
			return
		}
		d.document(name, data)
	}
}
