package stats

import (
	"encoding/json"
	"strings"
)

// ServiceDeliverer is the service name of the deliverer's reports.
const ServiceDeliverer = "deliverer"

// Delivered and dead-lettered counts of the deliverer advance with its
// committed offsets, not with its reports.
//
// An event is delivered (or dead-lettered) before the offset that covers it
// is committed. A deliverer that dies in between (SIGKILL, a lost session,
// a broker outage that fails its commits) leaves the event to the next
// owner of the partition, which delivers it again: counted when attempted,
// it would be counted twice; counted in a report published later, not at
// all if the process died first. So the deliverer keeps, per delivery-topic
// partition, the cumulative number of events delivered and dead-lettered
// before its committed offset, and stores it in the metadata of that offset
// commit. The count and the offset are one write (inside the transaction
// for transactional destinations), and a new owner starts from the
// metadata of the offset it starts from, so every offset is counted exactly
// once whatever happens to the processes in between. The control service
// reads the numbers with the group's offsets (Aggregator.RefreshCommitted).
//
// Consequences: delivered counts lag deliveries by up to the commit
// interval; events delivered again after a crash are real extra deliveries
// (at-least-once) but are counted once, like the offsets; resetting the
// group's offsets with a tool that writes no metadata restarts that
// partition's counts from zero.

// commitMetadata is the JSON form of a partition's committed counts in the
// offset-commit metadata. "samsa" versions the format.
type commitMetadata struct {
	Samsa        int   `json:"samsa"`
	Delivered    int64 `json:"delivered"`
	DeadLettered int64 `json:"dead_lettered"`
}

// CommitMetadata renders a partition's cumulative delivered and
// dead-lettered counts (the other fields of c are ignored) as offset-commit
// metadata, well below the brokers' 4 KiB default limit.
func CommitMetadata(c Counts) string {
	b, _ := json.Marshal(commitMetadata{Samsa: 1, Delivered: c.Delivered, DeadLettered: c.DeadLettered})
	return string(b)
}

// ParseCommitMetadata reads counts written by CommitMetadata. ok is false
// for any other metadata (none, or a client's default, its member id).
func ParseCommitMetadata(md string) (c Counts, ok bool) {
	if !strings.HasPrefix(md, `{"samsa":`) {
		return Counts{}, false
	}
	var m commitMetadata
	if err := json.Unmarshal([]byte(md), &m); err != nil || m.Samsa != 1 || m.Delivered < 0 || m.DeadLettered < 0 {
		return Counts{}, false
	}
	return Counts{Delivered: m.Delivered, DeadLettered: m.DeadLettered}, true
}
