// Package pipeline is the transformer: it runs every flow's filter and
// transform on the events of the flow's source and writes the results to
// the flow's delivery topic, exactly once.
//
// # Data path
//
// All replicas form one consumer group (kafka.TransformerGroup) over the
// topics of the sources that have at least one flow: a source's Topic, or
// samsa.src.<source>. For each record, every flow of the record's source
// runs its filter and then its transform (pkg/script, compiled once per
// flow version). Each output becomes an envelope record in
// samsa.out.<flow>; a failure (filter or transform error, step or time
// limit, a result that cannot be encoded, a record that cannot be decoded)
// becomes a dead letter in samsa.dlq.<flow> carrying the event's original
// envelope and the pkg/dlq headers (flow, version, stage, error, time,
// source topic, partition and offset). A failing event never stops its
// partition or its flow.
//
// Records of sources with format "envelope" are decoded with pkg/event.
// Records of native topics (format "json" or "bytes") are wrapped in an
// envelope whose id is "<topic>-<partition>-<offset>" (see NativeID), with
// the record's key and timestamp; CloudEvents ce_* headers and W3C trace
// headers are carried over. A transform's first output keeps the input's
// id and each further output n gets "<id>#<n>" (see OutputID): the same
// input always yields the same ids, which destinations deduplicate on.
//
// # Exactly once
//
// The records of one poll (at most MaxBatch) are processed in one Kafka
// transaction that also commits their offsets (franz-go's
// GroupTransactSession, consuming read_committed): either all of a batch's
// outputs, dead letters and offsets are committed, or none are and the
// records are read again. A rebalance during a batch aborts it; the
// partitions' next owner starts from the last committed offsets, and
// franz-go's stable offset fetching (KIP-447) makes it wait for any
// transaction still committing them. A replica restarted with its
// transactional id (stable per replica, see Config.TransactionalID) fences
// its previous incarnation and aborts the transaction it left open.
//
// Workers run filters and transforms in parallel, on runs of up to 256
// records of one partition; results are written in source order per
// partition. Keyed outputs are partitioned like Kafka's default
// partitioner (same key, same partition, in order); keyless outputs go to
// the partition with the number of their source partition.
//
// # Flows change at runtime
//
// The pipeline follows the flow store (pkg/flow): flows are added, changed,
// paused and deleted without a restart. Each batch runs with the flows of
// the store's snapshot taken when the batch starts; the set of consumed
// topics follows (a new source topic is subscribed at once, a topic with
// no flows left is dropped). Every transaction stamps its committed offsets
// with the position in samsa.flows of the flows it ran, and a replica that
// is assigned a partition waits for its own store to reach that position
// before consuming it, so a partition never goes back to older flows when
// it moves between replicas. In short:
//
//   - A flow added to a source that is already consumed sees the source's
//     records from the transformer's current position on: the group's
//     offset is shared by all flows of a source, so a new flow starts with
//     the first batch after the transformer applied the change, with no
//     gap and no repeat per partition (records still in the consumer lag
//     when it was added are included).
//   - A source topic the group has never committed for (its first flow) is
//     read from the first record stamped at or after the creation time of
//     the source's oldest flow minus Config.StartLookback (a margin for
//     clock skew), or from the start of the topic when the creation time
//     is unknown.
//   - A changed flow (new filter or transform) applies from the next
//     batch; every event is processed by exactly one version.
//   - A deleted flow stops with the batch in progress: no further outputs.
//     When a source's last flow is deleted its topic is no longer
//     consumed; if a flow is added again while Kafka still keeps the
//     group's offsets (offsets.retention.minutes, 7 days by default),
//     consumption resumes where it stopped, so the records written in
//     between are processed too.
//   - Pause applies at delivery, not here: a paused flow's events are
//     still transformed and wait, committed, in its delivery topic until
//     the flow is resumed. Holding them here instead would hold the
//     source's offsets, shared by every flow of the source, and so stall
//     the source's other flows (or, if the offsets moved on, lose the
//     paused flow's events).
//
// # Topics
//
// The control service creates samsa.out.<flow> and samsa.dlq.<flow> when a
// flow is written. As a fallback (unless Config.NoTopicCreation), when a write
// fails because one of them is missing, the transformer creates both (with
// the flow's partition count, or its source topic's) and retries the batch.
//
// # Observability
//
// Metrics (samsa_transformer_*): per flow, events in, filtered out, out,
// errors by stage and the transform time histogram; per assigned source
// partition, the lag; transactions by outcome and their duration. Counters
// receives each committed transaction's per-flow counts (for statistics
// publishing); only committed work is ever counted.
package pipeline
