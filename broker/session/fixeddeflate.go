package session

import (
	"encoding/binary"
	"math/bits"
	"sync"
)

// deflateFixed writes in as one final deflate block with the fixed Huffman
// codes (RFC 1951, 3.2.6), its matches found in dict followed by in: a
// stream that compress/flate's reader made with dict (NewReaderDict), or any
// inflater given dict as its preset window, inflates to in.
//
// Why not compress/flate's writer: a packed ID token is about 500 bytes, and
// for that compress/flate spends nearly all of its 40 µs on things that
// only pay off on large inputs: clearing 640 KB of match tables at every
// reset (and with them much of the CPU's cache) and building a dynamic
// Huffman code for the block. Here the match table is 4 KB and the codes
// are the fixed ones; the stream is a few percent longer (the demo login's
// ID token: 238 bytes against 233) and takes about 4 µs
// (BenchmarkDeflateFixed; 40 µs with compress/flate). What
// this writes is checked by inflating it before it is stored (packJWS), and
// what is read is inflated by compress/flate as before: the format is
// deflate, unchanged, and sessions packed by earlier versions (with
// compress/flate's dynamic codes) still unpack.
func deflateFixed(dict, in []byte) []byte {
	m := matchers.Get().(*matcher)
	defer matchers.Put(m)
	m.reset(dict, in)
	for i := range dict {
		m.insert(i)
	}
	w := bitWriter{out: make([]byte, 0, len(in)/2+16)}
	w.write(1, 1) // BFINAL
	w.write(1, 2) // BTYPE 01: fixed Huffman codes
	for i := len(dict); i < len(m.win); {
		length, dist := m.longest(i)
		if length < minMatch {
			w.literal(m.win[i])
			m.insert(i)
			i++
			continue
		}
		w.match(length, dist)
		for end := i + length; i < end; i++ {
			m.insert(i)
		}
	}
	w.code(fixedLit[endOfBlock])
	return w.flush()
}

// A matcher finds earlier occurrences in its window (the dictionary, then
// the input), through hash chains of 4-byte prefixes. Matchers are pooled:
// one is 4 KB and the window's size again in chains, and no part of one
// outlives a call of deflateFixed.
type matcher struct {
	win  []byte
	head [1 << hashBits]int32 // the last position with a hash, + 1; 0 for none
	prev []int32              // each position's previous one with its hash, + 1
}

var matchers = sync.Pool{New: func() any { return new(matcher) }}

func (m *matcher) reset(dict, in []byte) {
	m.win = append(append(m.win[:0], dict...), in...)
	m.head = [1 << hashBits]int32{}
	if cap(m.prev) < len(m.win) {
		m.prev = make([]int32, len(m.win))
	}
	m.prev = m.prev[:len(m.win)]
}

func (m *matcher) insert(i int) {
	if i+4 <= len(m.win) {
		h := hash4(m.win[i:])
		m.prev[i], m.head[h] = m.head[h], int32(i+1)
	}
}

// longest finds the longest earlier occurrence of win[i:] (at most
// maxMatch bytes, at most maxDist back, among maxChain candidates).
func (m *matcher) longest(i int) (length, dist int) {
	win := m.win
	if i+minMatch > len(win) {
		return 0, 0
	}
	limit := min(maxMatch, len(win)-i)
	for c, n := m.head[hash4(win[i:])], 0; c > 0 && n < maxChain; c, n = m.prev[c-1], n+1 {
		j := int(c - 1)
		if i-j > maxDist {
			break
		}
		l := 0
		for l < limit && win[j+l] == win[i+l] {
			l++
		}
		if l > length {
			length, dist = l, i-j
			if l == limit {
				break
			}
		}
	}
	return length, dist
}

const (
	hashBits   = 10
	minMatch   = 4     // the hash covers 4 bytes
	maxMatch   = 258   // RFC 1951's longest match
	maxDist    = 32768 // and its window
	maxChain   = 16    // candidates tried at a position
	endOfBlock = 256
)

func hash4(b []byte) uint32 {
	return binary.LittleEndian.Uint32(b) * 2654435761 >> (32 - hashBits)
}

// bitWriter writes a deflate stream: values least significant bit first,
// Huffman codes (stored here already reversed) likewise.
type bitWriter struct {
	out  []byte
	bits uint64
	n    uint
}

func (w *bitWriter) write(v uint64, n uint) {
	w.bits |= v << w.n
	w.n += n
	for w.n >= 8 {
		w.out = append(w.out, byte(w.bits))
		w.bits >>= 8
		w.n -= 8
	}
}

func (w *bitWriter) code(c hcode) { w.write(uint64(c.bits), uint(c.len)) }

func (w *bitWriter) literal(b byte) { w.code(fixedLit[b]) }

// match writes a length (3-258) and a distance (1-32768).
func (w *bitWriter) match(length, dist int) {
	lc := lengthCode[length-3]
	w.code(fixedLit[257+int(lc)])
	if e := lengthExtra[lc]; e > 0 {
		w.write(uint64(length-int(lengthBase[lc])), uint(e))
	}
	dc := distCode(dist)
	w.write(uint64(bits.Reverse8(dc)>>3), 5) // the fixed distance codes are 5 bits
	if e := distExtra(dc); e > 0 {
		w.write(uint64(dist-distBase(dc)), e)
	}
}

func (w *bitWriter) flush() []byte {
	if w.n > 0 {
		w.out = append(w.out, byte(w.bits))
	}
	return w.out
}

// hcode is a Huffman code, its bits reversed (as written), and its length.
type hcode struct {
	bits uint16
	len  uint8
}

// fixedLit are the fixed codes of the literal/length alphabet (RFC 1951,
// 3.2.6).
var fixedLit = func() (t [288]hcode) {
	for v := range t {
		var code, n int
		switch {
		case v < 144:
			code, n = 0x30+v, 8
		case v < 256:
			code, n = 0x190+v-144, 9
		case v < 280:
			code, n = v-256, 7
		default:
			code, n = 0xc0+v-280, 8
		}
		t[v] = hcode{bits.Reverse16(uint16(code)) >> (16 - n), uint8(n)}
	}
	return t
}()

// The length codes 257-285 (as 0-28): their first length and extra bits.
var (
	lengthBase  = [29]uint16{3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258}
	lengthExtra = [29]uint8{0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0}
	// lengthCode maps a length - 3 to its code - 257. 258 is code 285
	// (not 284 with all extra bits set, which RFC 1951 does not allow).
	lengthCode = func() (t [256]uint8) {
		for l := range t {
			c := uint8(len(lengthBase) - 1)
			for l+3 < int(lengthBase[c]) {
				c--
			}
			t[l] = c
		}
		return t
	}()
)

// distCode is the code (0-29) of a distance (1-32768).
func distCode(d int) uint8 {
	if d <= 4 {
		return uint8(d - 1)
	}
	n := bits.Len32(uint32(d - 1)) // at least 3
	return uint8(2*(n-1) + int((d-1)>>(n-2))&1)
}

// distExtra is the number of extra bits of distance code c.
func distExtra(c uint8) uint {
	if c < 4 {
		return 0
	}
	return uint(c/2 - 1)
}

// distBase is the first distance of code c.
func distBase(c uint8) int {
	if c < 4 {
		return int(c) + 1
	}
	e := distExtra(c)
	return 1 + (2+int(c&1))<<e
}
