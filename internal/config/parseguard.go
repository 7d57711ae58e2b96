package config

import (
	"errors"
	"io"
	"math"
	"runtime"
	"runtime/metrics"
)

// maxParseHeap bounds how much the heap may grow while yaml.v3 parses one
// document. yaml.v3 builds a tree of some 180 bytes a value and gives no
// way to count values as it goes, so a megabyte of "[1,1,1,…" becomes
// 250 MB before any check on the tree could run. It pulls its input in
// small pieces through heapGuard, which stops it once the heap has grown
// this much: an ordinary layer of a megabyte takes a few.
const maxParseHeap = 32 << 20

var errParseHeap = errors.New("parse stopped: heap budget spent")

// heapMetric is the heap's objects, live and not yet swept: what a parse
// adds to the process's memory.
const heapMetric = "/memory/classes/heap/objects:bytes"

type heapGuard struct {
	r       io.Reader
	sample  []metrics.Sample
	limit   uint64
	stopped bool
}

// guardFrom is the document size from which a parse is guarded: a smaller
// one cannot reach the budget, at a few hundred bytes of tree per byte.
const guardFrom = 64 << 10

// newHeapGuard wraps the input of a parse of size bytes. For a large one
// it first collects garbage, so that the budget is measured from what is
// live and a collection during the parse cannot hide the tree's growth.
func newHeapGuard(r io.Reader, size int) *heapGuard {
	g := &heapGuard{r: r, sample: []metrics.Sample{{Name: heapMetric}}}
	if size < guardFrom {
		g.limit = math.MaxUint64
		return g
	}
	runtime.GC()
	metrics.Read(g.sample)
	g.limit = g.heap() + maxParseHeap
	return g
}

func (g *heapGuard) heap() uint64 {
	if g.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0 // not measured on this runtime: no guard
	}
	return g.sample[0].Value.Uint64()
}

func (g *heapGuard) Read(p []byte) (int, error) {
	if g.limit == math.MaxUint64 {
		return g.r.Read(p)
	}
	metrics.Read(g.sample)
	if g.heap() > g.limit {
		g.stopped = true
		return 0, errParseHeap
	}
	return g.r.Read(p)
}

// spent reports whether the guard stopped the parse.
func (g *heapGuard) spent() bool { return g.stopped }
