// Package ulid generates ULIDs (https://github.com/ulid/spec): 128-bit ids,
// a 48-bit millisecond timestamp followed by 80 random bits, written as 26
// characters of Crockford base32. They sort by creation time as strings,
// which keeps generated event ids roughly in arrival order in logs, topics
// and database indexes.
//
// A Generator is monotonic: ids it makes within the same millisecond
// increment the random part instead of drawing new bits, so they sort in
// the order they were made, also when many are made at once.
package ulid

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
	"time"
	"unsafe"
)

// Len is the length of a ULID string.
const Len = 26

// crockford is Crockford's base32 alphabet (no I, L, O, U).
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// ErrInvalid is returned by Parse for a string that is not a ULID.
var ErrInvalid = errors.New("ulid: invalid")

// maxTime is the largest millisecond timestamp a ULID can hold (year 10889).
const maxTime = 1<<48 - 1

// Generator makes monotonic ULIDs. Its zero value is ready to use and it is
// safe for concurrent use.
type Generator struct {
	mu sync.Mutex
	ms uint64 // timestamp of the last id
	hi uint16 // random part of the last id: the top 16 bits
	lo uint64 // and the low 64 bits
}

var defaultGen Generator

// Make returns a new ULID for the current time from a process-wide
// Generator.
func Make() string { return defaultGen.New(time.Now()) }

// New returns a ULID for t, greater than every id g returned before.
func (g *Generator) New(t time.Time) string {
	var b [Len]byte
	g.mu.Lock()
	ms, hi, lo := g.next(t)
	g.mu.Unlock()
	encode(&b, ms, hi, lo)
	return string(b[:])
}

// Fill sets ids[i] to consecutive new ULIDs for t, taking the lock once.
func (g *Generator) Fill(t time.Time, ids []string) {
	if len(ids) == 0 {
		return
	}
	// One allocation holds every id's characters.
	buf := make([]byte, Len*len(ids))
	g.mu.Lock()
	for i := range ids {
		ms, hi, lo := g.next(t)
		encode((*[Len]byte)(buf[i*Len:]), ms, hi, lo)
	}
	g.mu.Unlock()
	s := unsafeString(buf)
	for i := range ids {
		ids[i] = s[i*Len : (i+1)*Len]
	}
}

// next returns the parts of the next id. g.mu must be held.
func (g *Generator) next(t time.Time) (uint64, uint16, uint64) {
	ms := uint64(max(t.UnixMilli(), 0))
	if ms > maxTime {
		ms = maxTime
	}
	if ms <= g.ms {
		// Same millisecond (or the clock went back): increment the random
		// part so the id still sorts after the previous one. On the (2^80
		// to one) overflow, borrow the next millisecond.
		ms = g.ms
		g.lo++
		if g.lo == 0 {
			g.hi++
			if g.hi == 0 {
				ms++
				g.draw()
			}
		}
	} else {
		g.draw()
	}
	g.ms = ms
	return ms, g.hi, g.lo
}

// draw sets the random part to fresh random bits. The top bit is cleared,
// leaving 2^79 increments before an overflow within one millisecond.
func (g *Generator) draw() {
	var r [10]byte
	_, _ = rand.Read(r[:]) // crypto/rand.Read never fails
	g.hi = binary.BigEndian.Uint16(r[:2]) & 0x7fff
	g.lo = binary.BigEndian.Uint64(r[2:])
}

// encode writes the 128 bits ms(48) | hi(16) | lo(64) as 26 base32
// characters, most significant first (the first character holds 3 bits).
func encode(b *[Len]byte, ms uint64, hi uint16, lo uint64) {
	// Split the 128 bits into a high 64-bit word and a low 64-bit word.
	h := ms<<16 | uint64(hi)
	l := lo
	for i := Len - 1; i >= 0; i-- {
		b[i] = crockford[l&31]
		l = l>>5 | h<<59
		h >>= 5
	}
}

// Time returns the timestamp of a ULID.
func Time(id string) (time.Time, error) {
	if len(id) != Len {
		return time.Time{}, ErrInvalid
	}
	var ms uint64
	for i := 0; i < 10; i++ {
		v := decodeChar(id[i])
		if v < 0 || (i == 0 && v > 7) {
			return time.Time{}, ErrInvalid
		}
		ms = ms<<5 | uint64(v)
	}
	for i := 10; i < Len; i++ {
		if decodeChar(id[i]) < 0 {
			return time.Time{}, ErrInvalid
		}
	}
	return time.UnixMilli(int64(ms)), nil
}

func decodeChar(c byte) int {
	if c >= 'a' && c <= 'z' {
		c -= 'a' - 'A'
	}
	for i := 0; i < len(crockford); i++ {
		if crockford[i] == c {
			return i
		}
	}
	return -1
}

// unsafeString views b as a string; b must never be modified afterwards.
func unsafeString(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }
