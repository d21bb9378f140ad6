package delivery

import (
	"time"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/stats"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

// item is one event between fetch and commit.
//
// Items are small on purpose: a deliverer working off a backlog holds tens
// of thousands of them. The record's key, value and headers are copies, cut
// from one buffer per slab of items (see flowRuntime.accept), not slices
// into franz-go's fetch buffers: those hold a whole fetched batch, which a
// single retrying event would keep alive. What only a failed attempt needs
// lives in att.
type item struct {
	lane *lane
	ev   *event.Event // nil when the record could not be decoded
	att  *attemptState
	// key, value and headers are the delivery record's.
	key, value []byte
	headers    []kgo.RecordHeader
	offset     int64
	// first is when the first attempt started (Unix nanoseconds), 0
	// before it.
	first    int64
	size     int64 // bytes accounted against the memory budget (itemSize)
	epoch    int32 // the record's leader epoch
	attempts int32
	// finished: delivered or handed to the dead-letter topic; its lane
	// has moved on. done: delivered, or its dead letter is acknowledged;
	// its offset may be committed.
	finished bool
	done     bool
	inFlight bool
	// alone: the next attempt goes in a batch of its own.
	alone bool
	// finishing marks items whose outcome is being committed in a
	// transaction (transactional destinations), for wmIfFinishing.
	finishing bool
	// dead: its outcome is (or, while finishing, would be) a dead letter,
	// not a delivery; counted as such when the watermark passes it.
	dead bool
	// control: a transaction marker of the delivery topic, not an event.
	// It is done from the start: the watermark, and so the committed
	// offset, moves past it, so that a drained partition shows no lag.
	control bool
}

// attemptState is what an item keeps of failed attempts (and of a failed
// decode): most items are delivered at the first attempt and never need it.
type attemptState struct {
	last      time.Time
	result    destination.Result
	decodeErr error
}

// result is the outcome of the item's last attempt (a success when it
// has not failed).
func (it *item) result() destination.Result {
	if it.att == nil {
		return destination.Result{Class: destination.Success}
	}
	return it.att.result
}

// firstAttempt is when the first attempt started (zero before it).
func (it *item) firstAttempt() time.Time {
	if it.first == 0 {
		return time.Time{}
	}
	return time.Unix(0, it.first)
}

// itemOverhead is what an item costs besides the bytes of its record and
// of its decoded event: the item itself, its slots in the partition's and
// its lane's queues, and the decoded event's struct.
const itemOverhead = int64(unsafe.Sizeof(item{})) + 2*8 + int64(unsafe.Sizeof(event.Event{}))

// itemSize is the memory an item holds, as the memory budget counts it:
// its record's key, value and headers, its decoded event (which copies the
// payload and the attributes) and itemOverhead.
func itemSize(it *item) int64 {
	n := itemOverhead + int64(len(it.key)+len(it.value))
	for _, h := range it.headers {
		n += int64(len(h.Key)+len(h.Value)) + int64(unsafe.Sizeof(h))
	}
	if ev := it.ev; ev != nil {
		n += int64(len(ev.ID) + len(ev.Source) + len(ev.Type) + len(ev.Subject) + len(ev.Key) +
			len(ev.ContentType) + len(ev.Data) + len(ev.TraceParent) + len(ev.TraceState))
		for k, v := range ev.Attributes {
			n += int64(len(k)+len(v)) + 48 // and the map's own entry
		}
	}
	return n
}

// lane is the ordered queue of one partition key's events on one
// partition: its events are attempted one after the other (or, for
// destinations with ordered batches, several in order in one batch), also
// across retries. Events without a key (or of flows ordered "none") each get
// a lane of their own.
type lane struct {
	key   string
	keyed bool // registered in partition.lanes
	p     *partition
	items []*item
	head  int // items before head are finished
	// busy: the head is in flight. waiting: the head waits for a retry.
	// queued: the lane is in the flow's ready queue.
	busy, waiting, queued bool
}

// next returns the first unfinished item, or nil.
func (l *lane) next() *item {
	for l.head < len(l.items) && l.items[l.head].finished {
		l.items[l.head] = nil
		l.head++
	}
	switch {
	case l.head == len(l.items):
		l.items, l.head = l.items[:0], 0
		return nil
	case l.head >= 1024 && l.head*2 >= len(l.items):
		// A lane that never empties (a partition's single lane under a
		// steady backlog) must not grow with every item it ever held.
		k := copy(l.items, l.items[l.head:])
		clear(l.items[k:])
		l.items, l.head = l.items[:k], 0
	}
	return l.items[l.head]
}

// dispatchable reports whether the lane can go into the ready queue.
func (l *lane) dispatchable() bool {
	return !l.busy && !l.waiting && !l.queued && !l.p.revoking && l.next() != nil
}

// partition is the deliverer's state of one assigned partition of a
// delivery topic: its events in offset order from the last committed
// offset on, and the lanes of its keys.
type partition struct {
	id      int32
	pending []*item // offset order; pending[head:] are not yet committed-over
	head    int
	lanes   map[string]*lane
	// whole is the partition's single lane when events are delivered in
	// partition order (transactional destinations).
	whole *lane
	// next is the offset after the last record taken from a fetch (-1
	// until the first).
	next int64
	// wm is the offset after the last of the contiguous finished events
	// from the start: what may be committed. -1 until known.
	wm      int64
	wmEpoch int32
	// counts are the partition's cumulative delivered and dead-lettered
	// events before wm, starting from the counts in the metadata of the
	// offset it was assigned at: what a commit of wm stores with it.
	counts    stats.Counts
	committed int64
	// end is the partition's last stable offset as last fetched: the end
	// of what a read_committed consumer can read.
	end int64
	// inFlight counts attempts in flight and dead letters not yet
	// acknowledged: a rebalance waits for them.
	inFlight int
	// revoking: the partition is being taken away: nothing new starts.
	// gone: it was released; late outcomes are ignored.
	revoking, gone bool
	// bytes is what pending[head:] holds (itemSize), mirrored in mem,
	// which decides when fetching the partition pauses.
	bytes int64
	mem   *memPart
}

func newPartition(id int32) *partition {
	return &partition{id: id, lanes: map[string]*lane{}, next: -1, wm: -1, committed: -1, end: -1}
}

// buffered is the number of events held for the partition.
func (p *partition) buffered() int { return len(p.pending) - p.head }

// count adds an item's outcome to c.
func (it *item) count(c *stats.Counts) {
	switch {
	case it.control:
	case it.dead:
		c.DeadLettered++
	default:
		c.Delivered++
	}
}

// advance moves the watermark over done events, counts them and releases
// them. It returns how many were released and their bytes.
func (p *partition) advance() (n int, bytes int64) {
	for p.head < len(p.pending) && p.pending[p.head].done {
		it := p.pending[p.head]
		p.wm, p.wmEpoch = it.offset+1, it.epoch
		it.count(&p.counts)
		bytes += it.size
		p.pending[p.head] = nil
		p.head++
		n++
	}
	switch {
	case p.head == len(p.pending):
		p.pending, p.head = p.pending[:0], 0
	case p.head >= 1024 && p.head*2 >= len(p.pending):
		k := copy(p.pending, p.pending[p.head:])
		clear(p.pending[k:])
		p.pending, p.head = p.pending[:k], 0
	}
	p.bytes -= bytes
	return n, bytes
}

// wmIfFinishing is the watermark the partition would have, and its counts
// there, if every item marked finishing were done.
func (p *partition) wmIfFinishing() (int64, int32, stats.Counts) {
	wm, epoch, c := p.wm, p.wmEpoch, p.counts
	for _, it := range p.pending[p.head:] {
		if !it.done && !it.finishing {
			break
		}
		wm, epoch = it.offset+1, it.epoch
		it.count(&c)
	}
	return wm, epoch, c
}

// lag is the number of offsets between the watermark and the end of the
// partition.
func (p *partition) lag() int64 {
	if p.end < 0 {
		return 0
	}
	wm := p.wm
	if wm < 0 {
		if p.head < len(p.pending) {
			wm = p.pending[p.head].offset
		} else {
			return 0
		}
	}
	if l := p.end - wm; l > 0 {
		return l
	}
	return 0
}

// laneQueue is a FIFO of lanes ready to dispatch.
type laneQueue struct {
	q    []*lane
	head int
}

func (q *laneQueue) push(l *lane) {
	l.queued = true
	q.q = append(q.q, l)
}

func (q *laneQueue) pop() *lane {
	if q.head == len(q.q) {
		return nil
	}
	l := q.q[q.head]
	q.q[q.head] = nil
	q.head++
	if q.head == len(q.q) {
		q.q, q.head = q.q[:0], 0
	} else if q.head >= 1024 && q.head*2 >= len(q.q) {
		k := copy(q.q, q.q[q.head:])
		clear(q.q[k:])
		q.q, q.head = q.q[:k], 0
	}
	l.queued = false
	return l
}

func (q *laneQueue) len() int { return len(q.q) - q.head }
