package format

import (
	"bufio"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"io"
)

// zeroGzip writes one gzip member (RFC 1952) whose deflate stream (RFC
// 1951) holds the data given to Write compressed by compress/flate and the
// runs of zeros given to Zeros as blocks encoded here directly, so that a
// run costs time and output in proportion to its length divided by 258
// times 4 (two bits per 258 bytes): a GiB of zeros is about 1 MiB and
// written at memory speed. The output is a function of the sequence of
// calls only, so the same calls give the same bytes.
//
// Between the two kinds of content the stream is byte-aligned with an
// empty stored block (what zlib's Z_SYNC_FLUSH writes), and compress/flate
// starts each data segment with an empty window, since the zero blocks are
// not in its history.
type zeroGzip struct {
	w    *bufio.Writer
	fw   *flate.Writer // the current data segment's compressor, or nil
	crc  uint32
	size int64
	bits bitWriter
	err  error
}

// gzipHeader is a gzip member header with no name, no time and OS
// "unknown": the same bytes every time (what compress/gzip writes for a
// zero Header at BestSpeed, XFL 4).
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 255}

func newZeroGzip(w io.Writer) *zeroGzip {
	bw := bufio.NewWriterSize(w, 1<<20)
	z := &zeroGzip{w: bw}
	z.bits.w = bw
	_, z.err = bw.Write(gzipHeader)
	return z
}

// Write compresses p with compress/flate at BestSpeed.
func (z *zeroGzip) Write(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	if z.fw == nil {
		if z.fw, z.err = flate.NewWriter(z.w, flate.BestSpeed); z.err != nil {
			return 0, z.err
		}
	}
	n, err := z.fw.Write(p)
	z.crc = crc32.Update(z.crc, crc32.IEEETable, p[:n])
	z.size += int64(n)
	z.err = err
	return n, err
}

// Zeros writes n zero bytes as one deflate block of their own.
func (z *zeroGzip) Zeros(n int64) error {
	if z.err != nil || n <= 0 {
		return z.err
	}
	if z.fw != nil {
		// The data segment ends byte-aligned on an empty stored block.
		if z.err = z.fw.Flush(); z.err != nil {
			return z.err
		}
		z.fw = nil
	}
	z.zeroBlock(n)
	z.syncBlock()
	z.crc = crc32ZeroExtend(z.crc, n)
	z.size += n
	if z.err == nil {
		z.err = z.bits.err
	}
	return z.err
}

// Close ends the deflate stream with a final block and writes the gzip
// trailer (CRC-32 and size modulo 2^32); it does not close the underlying
// writer.
func (z *zeroGzip) Close() error {
	if z.err != nil {
		return z.err
	}
	if z.fw != nil {
		z.err = z.fw.Close()
	} else {
		// An empty final block with fixed codes: BFINAL 1, BTYPE 01, the
		// end-of-block code 0000000.
		_, z.err = z.w.Write([]byte{0x03, 0x00})
	}
	if z.err != nil {
		return z.err
	}
	var t [8]byte
	binary.LittleEndian.PutUint32(t[:4], z.crc)
	binary.LittleEndian.PutUint32(t[4:], uint32(z.size))
	if _, z.err = z.w.Write(t[:]); z.err != nil {
		return z.err
	}
	z.err = z.w.Flush()
	return z.err
}

// The zero block is a deflate block with dynamic Huffman codes (BTYPE 10)
// that uses three literal/length symbols and two distance codes, all of
// their codes complete (as zlib's and GNU gzip's decoders require):
//
//	literal 0:  2 bits, code 10
//	end (256):  2 bits, code 11
//	length 258 (symbol 285, no extra bits): 1 bit, code 0
//	distances 1 and 2 (codes 0 and 1): 1 bit each, codes 0 and 1
//
// It holds a literal 0, then as many copies of 258 bytes from distance 1
// as fit (two zero bits each), then the rest as literal zeros, and the end
// of the block.
//
// The code lengths are sent with the code-length alphabet's symbols 1, 2
// and 18 (a run of 11-138 zero lengths), whose codes are 18: 0, 1: 10,
// 2: 11 (lengths 1, 2, 2). Codes are written most significant bit first,
// so the values given to bitWriter are the codes reversed.
func (z *zeroGzip) zeroBlock(n int64) {
	b := &z.bits
	b.bitsLSB(0, 1)  // BFINAL
	b.bitsLSB(2, 2)  // BTYPE: dynamic codes
	b.bitsLSB(29, 5) // HLIT: 286 literal/length codes (up to symbol 285)
	b.bitsLSB(1, 5)  // HDIST: 2 distance codes
	b.bitsLSB(14, 4) // HCLEN: 18 code-length code lengths
	// Code-length code lengths in RFC 1951's order 16, 17, 18, 0, 8, 7, 9,
	// 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1.
	for _, l := range []uint64{0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 2} {
		b.bitsLSB(l, 3)
	}
	const (
		cl1  = 0b01 // code 10, reversed
		cl2  = 0b11 // code 11
		cl18 = 0b0  // code 0
	)
	run := func(count uint64) { b.bitsLSB(cl18, 1); b.bitsLSB(count-11, 7) }
	b.bitsLSB(cl2, 2) // literal 0: length 2
	run(138)          // literals 1-138
	run(117)          // literals 139-255
	b.bitsLSB(cl2, 2) // 256: length 2
	run(28)           // 257-284
	b.bitsLSB(cl1, 2) // 285: length 1
	b.bitsLSB(cl1, 2) // distance code 0: length 1
	b.bitsLSB(cl1, 2) // distance code 1: length 1

	const (
		lit0 = 0b01 // code 10, reversed
		eob  = 0b11 // code 11
	)
	b.bitsLSB(lit0, 2)
	copies := (n - 1) / 258
	b.zeroBits(2 * copies) // length 258 (code 0) at distance 1 (code 0)
	for range (n - 1) % 258 {
		b.bitsLSB(lit0, 2)
	}
	b.bitsLSB(eob, 2)
}

// syncBlock writes an empty stored block, which ends on a byte boundary.
func (z *zeroGzip) syncBlock() {
	b := &z.bits
	b.bitsLSB(0, 3) // BFINAL 0, BTYPE 00
	b.align()
	b.bytes([]byte{0x00, 0x00, 0xff, 0xff}) // LEN 0, NLEN ^0
}

// bitWriter packs bits least significant first, as deflate does.
type bitWriter struct {
	w   *bufio.Writer
	acc uint64
	n   uint // bits in acc, < 8 between calls
	err error
}

func (b *bitWriter) bitsLSB(v uint64, n uint) {
	b.acc |= v << b.n
	b.n += n
	for b.n >= 8 {
		b.byte(byte(b.acc))
		b.acc >>= 8
		b.n -= 8
	}
}

func (b *bitWriter) byte(c byte) {
	if b.err == nil {
		b.err = b.w.WriteByte(c)
	}
}

// zeroBits writes n zero bits, whole bytes at a time where it can.
func (b *bitWriter) zeroBits(n int64) {
	for n > 0 && b.n != 0 {
		b.bitsLSB(0, 1)
		n--
	}
	for whole := n / 8; whole > 0; {
		k := min(whole, int64(len(zeroPage)))
		if b.err == nil {
			_, b.err = b.w.Write(zeroPage[:k])
		}
		whole -= k
	}
	for range n % 8 {
		b.bitsLSB(0, 1)
	}
}

// align pads with zero bits to the next byte boundary.
func (b *bitWriter) align() {
	if b.n > 0 {
		b.bitsLSB(0, 8-b.n)
	}
}

func (b *bitWriter) bytes(p []byte) {
	if b.err == nil {
		_, b.err = b.w.Write(p)
	}
}

var zeroPage = make([]byte, 64<<10)

// crc32ZeroExtend is the IEEE CRC-32 of a message whose CRC-32 is crc
// followed by n zero bytes, computed in O(log n): feeding a zero byte to
// the CRC register multiplies it by x^8 modulo the CRC polynomial, so n of
// them multiply it by x^(8n), which is a product of the powers x^(2^k).
// Polynomials are in the reflected representation crc32 uses (x^0 is the
// highest bit).
func crc32ZeroExtend(crc uint32, n int64) uint32 {
	return ^multModP(xPow8n(uint64(n)), ^crc)
}

// multModP is a*b modulo the CRC-32 polynomial.
func multModP(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; m != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
		}
		if b&1 != 0 {
			b = b>>1 ^ crc32.IEEE
		} else {
			b >>= 1
		}
	}
	return p
}

// xPow8n is x^(8n) modulo the CRC-32 polynomial.
func xPow8n(n uint64) uint32 {
	p := uint32(1) << 31  // x^0
	sq := uint32(1) << 23 // x^8
	for ; n > 0; n >>= 1 {
		if n&1 != 0 {
			p = multModP(sq, p)
		}
		sq = multModP(sq, sq)
	}
	return p
}
