package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/opsboot/bootstrap/internal/retry"
)

// partTuning shapes ranged parallel GETs for large objects: one S3 stream
// tops out near 100 MB/s, so the rest of an object past its first
// threshold bytes is fetched as size-byte ranges, streams at a time, and
// read in order (the sha256 needs the bytes in order). Memory: streams ×
// size. The first range streams as a plain download, so an object up to
// the threshold costs one request, as before. Parallel ranges only pay
// where the stream is the limit: after probe bytes of the first range, a
// stream slower than fast bytes/s starts the parts; a faster one (a local
// endpoint, where ranges only add work: measured, half the speed on
// loopback MinIO) gets the rest as one more stream.
type partTuning struct {
	threshold, size int64
	streams         int
	probe           int64
	fast            float64
}

var defaultParts = partTuning{threshold: 64 << 20, size: 4 << 20, streams: 3, probe: 16 << 20, fast: 150e6}

// partAttempts: tries per part before the whole download is retried.
const partAttempts = 3

// openS3Parts is openS3 for File: a GET of the first f.parts.threshold
// bytes; when the object is larger, the rest comes from joinedBody, pinned
// to the first answer's ETag so that a replaced object is not mixed in.
func (f *Fetcher) openS3Parts(ctx context.Context, src source) (io.ReadCloser, int64, error) {
	c, err := f.s3Client(ctx)
	if err != nil {
		return nil, 0, err
	}
	pt := f.parts
	in := &s3.GetObjectInput{Bucket: &src.bucket, Key: &src.key, Range: rangeHeader(0, pt.threshold)}
	out, err := c.GetObject(ctx, in)
	var api smithy.APIError
	if errors.As(err, &api) && api.ErrorCode() == "InvalidRange" {
		// An empty object has no byte 0: ask for it whole.
		return f.openS3(ctx, src)
	}
	if err != nil {
		return nil, 0, f.classifyS3(err)
	}
	size := int64(-1)
	if out.ContentLength != nil {
		size = *out.ContentLength
	}
	total, ranged := contentRangeTotal(out.ContentRange)
	switch {
	case !ranged, size == total:
		// The whole object (or a server that ignores Range): one stream.
		return out.Body, size, nil
	case size != pt.threshold || total < size || out.ETag == nil:
		out.Body.Close()
		return nil, 0, &attemptError{code: CodeTransfer,
			err: fmt.Errorf("unexpected answer to a ranged GET: %d bytes, object of %d", size, total)}
	}
	etag := *out.ETag
	parallel := func() io.ReadCloser {
		pctx, cancel := context.WithCancel(ctx)
		pr := &partsReader{ctx: pctx, cancel: cancel, f: f, c: c, src: src, etag: etag,
			size: pt.size, queue: make(chan chan part, pt.streams), free: make(chan []byte, pt.streams)}
		for range pt.streams {
			pr.free <- nil // allocated on first use: a small remainder needs fewer
		}
		pr.wg.Add(1)
		go pr.produce(pt.threshold, total)
		return pr
	}
	single := func() io.ReadCloser {
		return &lazyRange{open: func() (io.ReadCloser, error) {
			body, _, err := f.getRange(ctx, c, src, etag, pt.threshold, total-pt.threshold)
			return body, err
		}}
	}
	return &joinedBody{first: out.Body, began: time.Now(), probe: pt.probe, fast: pt.fast,
		parallel: parallel, single: single}, total, nil
}

// getRange sends a GET for n bytes at off of the object with etag. Its
// error is a message only, not marked permanent: a range's "final" error
// (PreconditionFailed: the object was replaced) is for the whole download
// to retry; permanent says whether retrying the range alone is pointless.
func (f *Fetcher) getRange(ctx context.Context, c *s3.Client, src source, etag string, off, n int64) (body io.ReadCloser, permanent bool, err error) {
	where := fmt.Sprintf("bytes %d-%d", off, off+n-1)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &src.bucket, Key: &src.key,
		Range: rangeHeader(off, n), IfMatch: &etag})
	if err != nil {
		cerr := f.classifyS3(err)
		var ae *attemptError
		if errors.As(cerr, &ae) {
			err = errors.New(f.scrub(ae.summary()))
		}
		return nil, retry.IsPermanent(cerr), fmt.Errorf("%s: %w", where, err)
	}
	// Not what was asked for: a server that ignores Range would hand out
	// the object's start as its middle.
	if out.ContentRange == nil || !strings.HasPrefix(*out.ContentRange, where+"/") {
		out.Body.Close()
		got := "none"
		if out.ContentRange != nil {
			got = *out.ContentRange
		}
		return nil, true, fmt.Errorf("%s: the answer's Content-Range is %s", where, got)
	}
	return out.Body, false, nil
}

// s3Client returns the client once credentials are there.
func (f *Fetcher) s3Client(ctx context.Context) (*s3.Client, error) {
	c, creds := f.client()
	cr, err := creds.Retrieve(ctx)
	if err != nil {
		return nil, &attemptError{code: CodeNoCredentials, err: err}
	}
	f.credentialsSeen()
	f.remember(cr)
	return c, nil
}

func rangeHeader(from, n int64) *string {
	s := fmt.Sprintf("bytes=%d-%d", from, from+n-1)
	return &s
}

// contentRangeTotal reads the object size from "bytes 0-99/1234".
func contentRangeTotal(cr *string) (int64, bool) {
	if cr == nil {
		return 0, false
	}
	_, total, ok := strings.Cut(*cr, "/")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(total, 10, 64)
	return n, err == nil && n >= 0
}

// part is one fetched range, or why it could not be.
type part struct {
	buf []byte
	err error
}

// partsReader reads [from, total) of an object as ranged GETs run
// streams at a time, in order. A part that fails partAttempts times
// fails the read (and so the attempt, which the fetch loop retries).
type partsReader struct {
	ctx       context.Context
	cancel    context.CancelFunc
	f         *Fetcher
	c         *s3.Client
	src       source
	etag      string
	size      int64          // of a part
	queue     chan chan part // in object order
	free      chan []byte    // buffers: a part is started only with one
	wg        sync.WaitGroup
	cur       []byte // what is left of the part being read
	curBuf    []byte
	err       error
	closeOnce sync.Once
}

func (p *partsReader) produce(from, total int64) {
	defer p.wg.Done()
	defer close(p.queue)
	for off := from; off < total; off += p.size {
		var buf []byte
		select {
		case buf = <-p.free:
		case <-p.ctx.Done():
			return
		}
		n := min(p.size, total-off)
		if buf == nil {
			buf = make([]byte, p.size)
		}
		ch := make(chan part, 1)
		select {
		case p.queue <- ch:
		case <-p.ctx.Done():
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			got, err := p.fetch(off, buf[:n])
			ch <- part{buf: got, err: err}
		}()
	}
}

// fetch gets one range into buf, retrying what is worth retrying.
func (p *partsReader) fetch(off int64, buf []byte) ([]byte, error) {
	var err error
	for try := range partAttempts {
		if try > 0 {
			select {
			case <-time.After(time.Duration(try) * 200 * time.Millisecond):
			case <-p.ctx.Done():
				return buf, p.ctx.Err()
			}
		}
		body, permanent, gerr := p.f.getRange(p.ctx, p.c, p.src, p.etag, off, int64(len(buf)))
		if gerr != nil {
			err = gerr
			if permanent {
				break
			}
			continue
		}
		_, err = io.ReadFull(body, buf)
		body.Close()
		if err == nil {
			return buf, nil
		}
		err = fmt.Errorf("bytes %d-%d: %w", off, off+int64(len(buf))-1, err)
	}
	return buf, err
}

func (p *partsReader) Read(b []byte) (int, error) {
	for len(p.cur) == 0 {
		if p.err != nil {
			return 0, p.err
		}
		if p.curBuf != nil {
			p.free <- p.curBuf[:cap(p.curBuf)]
			p.curBuf = nil
		}
		ch, ok := <-p.queue
		if !ok {
			if err := p.ctx.Err(); err != nil {
				p.err = err
				continue
			}
			p.err = io.EOF
			continue
		}
		var pt part
		select {
		case pt = <-ch:
		case <-p.ctx.Done():
			p.err = p.ctx.Err()
			continue
		}
		if pt.err != nil {
			p.err = pt.err
			continue
		}
		p.cur, p.curBuf = pt.buf, pt.buf
	}
	n := copy(b, p.cur)
	p.cur = p.cur[n:]
	return n, nil
}

// Close stops the part fetches and waits for them.
func (p *partsReader) Close() error {
	p.closeOnce.Do(func() {
		p.cancel() // the producer and the fetches all select on it
		p.wg.Wait()
	})
	return nil
}

// joinedBody reads the first range, then the rest: parallel parts or one
// more stream, chosen by the first range's speed (see partTuning).
type joinedBody struct {
	first            io.ReadCloser
	began            time.Time
	read             int64
	probe            int64
	fast             float64
	parallel, single func() io.ReadCloser
	rest             io.ReadCloser // nil until chosen
	firstDone        bool
}

func (j *joinedBody) Read(b []byte) (int, error) {
	if !j.firstDone {
		n, err := j.first.Read(b)
		j.read += int64(n)
		if err == io.EOF {
			j.firstDone, err = true, nil
		}
		if j.rest == nil && (j.read >= j.probe || j.firstDone) {
			// Chosen early, so parts fetch while the first range flows.
			if rate := float64(j.read) / time.Since(j.began).Seconds(); rate < j.fast {
				j.rest = j.parallel()
			} else {
				j.rest = j.single()
			}
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	return j.rest.Read(b)
}

func (j *joinedBody) Close() error {
	err := j.first.Close()
	if j.rest != nil {
		j.rest.Close()
	}
	return err
}

// lazyRange is a ranged GET sent on the first Read.
type lazyRange struct {
	open func() (io.ReadCloser, error)
	body io.ReadCloser
	err  error
}

func (l *lazyRange) Read(b []byte) (int, error) {
	if l.body == nil && l.err == nil {
		l.body, l.err = l.open()
	}
	if l.err != nil {
		return 0, l.err
	}
	return l.body.Read(b)
}

func (l *lazyRange) Close() error {
	if l.body != nil {
		return l.body.Close()
	}
	return nil
}
