package delivery

import "sync"

// memBudget bounds what buffered events hold, by pausing and resuming the
// fetching of partitions: their bytes across every flow of the process
// (Config.MaxBufferedBytes, as itemSize counts them) and their number per
// partition (Config.MaxBufferedPerPartition).
//
// Every assigned partition has a reservation: half the byte budget divided
// by the number of assigned partitions. The other half is a pool the
// partitions share beyond their reservations. A partition pauses once it
// holds more than its reservation while the pool is used up, and resumes
// when the pool has a quarter free again or it is back within its
// reservation. So what is buffered stays under the budget plus what the
// fetches already under way return (a paused partition's data in the
// next fetch is dropped by franz-go and fetched again on resume), and a
// flow whose destination is stuck with a full buffer does not starve the
// others: they keep their reservations.
//
// The zero value has no limits and pauses nothing.
type memBudget struct {
	mu sync.Mutex
	// fetch pauses and resumes partitions (the consumer client); nil
	// until the client exists, and in tests without one.
	fetch fetchPauser
	// limit is the byte budget (0: none); maxEvents the per-partition
	// count (0: none).
	limit     int64
	maxEvents int
	parts     map[*memPart]struct{}
	total     int64 // bytes of every partition
	peak      int64 // the largest total so far
	over      int64 // what partitions hold beyond their reservations
	reserve   int64 // each partition's reservation
	pool      int64 // limit minus the reservations
	memPaused int   // partitions paused for memory
}

// fetchPauser is the part of *kgo.Client the budget uses.
type fetchPauser interface {
	PauseFetchPartitions(map[string][]int32) map[string][]int32
	ResumeFetchPartitions(map[string][]int32)
}

// memPart is the budget's view of one assigned partition. Its fields are
// guarded by the budget's mutex.
type memPart struct {
	topic  string
	id     int32
	bytes  int64
	events int
	// countPaused: at the per-partition count; memPaused: over its
	// reservation while the pool is used up. The partition's fetching is
	// paused while either is set.
	countPaused, memPaused bool
}

func (mp *memPart) paused() bool { return mp.countPaused || mp.memPaused }

// register adds an assigned partition; every reservation shrinks.
func (b *memBudget) register(topic string, id int32) *memPart {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.parts == nil {
		b.parts = map[*memPart]struct{}{}
	}
	mp := &memPart{topic: topic, id: id}
	b.parts[mp] = struct{}{}
	b.reserveLocked()
	return mp
}

// unregister removes a partition that was released, with what it held.
// Its fetching is resumed: a later assignment of it must not find it
// paused.
func (b *memBudget) unregister(mp *memPart) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.parts[mp]; !ok {
		return
	}
	delete(b.parts, mp)
	b.total -= mp.bytes
	if mp.memPaused {
		b.memPaused--
	}
	if mp.paused() && b.fetch != nil {
		b.fetch.ResumeFetchPartitions(map[string][]int32{mp.topic: {mp.id}})
	}
	mp.countPaused, mp.memPaused = false, false
	b.reserveLocked()
}

// add counts events and bytes taken into (positive) or released from
// (negative) a partition's buffer, and pauses or resumes fetching.
func (b *memBudget) add(mp *memPart, events int, bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.parts[mp]; !ok {
		return // released meanwhile
	}
	if b.limit > 0 {
		b.over += b.excess(mp.bytes+bytes) - b.excess(mp.bytes)
	}
	mp.bytes += bytes
	mp.events += events
	b.total += bytes
	b.peak = max(b.peak, b.total)
	if b.memPaused > 0 && b.over < b.lowWater() {
		// The pool has room again: every partition paused for memory
		// may fetch.
		b.decideAllLocked()
		return
	}
	if b.decideLocked(mp) {
		b.applyLocked(mp)
	}
}

func (b *memBudget) excess(bytes int64) int64 { return max(0, bytes-b.reserve) }

// lowWater is where partitions paused for memory resume: a quarter of the
// pool free, so that a resumed partition's first fetch does not pause it
// again at once.
func (b *memBudget) lowWater() int64 { return b.pool - b.pool/4 }

// reserveLocked recomputes the reservations after the assignment changed.
func (b *memBudget) reserveLocked() {
	if b.limit <= 0 {
		return
	}
	n := int64(max(1, len(b.parts)))
	b.reserve = b.limit / (2 * n)
	b.pool = b.limit - n*b.reserve
	b.over = 0
	for mp := range b.parts {
		b.over += b.excess(mp.bytes)
	}
	b.decideAllLocked()
}

// decideAllLocked decides every partition again and applies the changes
// in one call of each kind.
func (b *memBudget) decideAllLocked() {
	var pause, resume map[string][]int32
	for mp := range b.parts {
		if !b.decideLocked(mp) || b.fetch == nil {
			continue
		}
		if mp.paused() {
			if pause == nil {
				pause = map[string][]int32{}
			}
			pause[mp.topic] = append(pause[mp.topic], mp.id)
		} else {
			if resume == nil {
				resume = map[string][]int32{}
			}
			resume[mp.topic] = append(resume[mp.topic], mp.id)
		}
	}
	if pause != nil {
		b.fetch.PauseFetchPartitions(pause)
	}
	if resume != nil {
		b.fetch.ResumeFetchPartitions(resume)
	}
}

// decideLocked sets whether the partition should be paused; it reports
// whether that changed.
func (b *memBudget) decideLocked(mp *memPart) bool {
	was := mp.paused()
	if b.maxEvents > 0 {
		switch {
		case mp.events >= b.maxEvents:
			mp.countPaused = true
		case mp.events <= b.maxEvents/2:
			mp.countPaused = false
		}
	}
	if b.limit > 0 {
		switch {
		case !mp.memPaused && mp.bytes > b.reserve && b.over >= b.pool:
			mp.memPaused = true
			b.memPaused++
		case mp.memPaused && (mp.bytes <= b.reserve || b.over < b.lowWater()):
			mp.memPaused = false
			b.memPaused--
		}
	}
	return mp.paused() != was
}

func (b *memBudget) applyLocked(mp *memPart) {
	if b.fetch == nil {
		return
	}
	tp := map[string][]int32{mp.topic: {mp.id}}
	if mp.paused() {
		b.fetch.PauseFetchPartitions(tp)
	} else {
		b.fetch.ResumeFetchPartitions(tp)
	}
}

// batchBytes bounds the bytes of one batch (0: no bound): a quarter of the
// budget, so that while a batch is in flight (its events still buffered)
// the partitions keep fetching the next ones.
func (b *memBudget) batchBytes() int64 { return b.limit / 4 }

// usage returns the bytes buffered now and the most so far.
func (b *memBudget) usage() (total, peak int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.total, b.peak
}
