// Package event defines the envelope every Samsa topic carries: a
// CloudEvents-shaped Avro record, written in Avro single-object encoding so
// that any reader can tell which schema wrote it.
//
// An encoded envelope is the value of one Kafka record:
//
//	C3 01                  the single-object encoding marker
//	8 bytes                CRC-64-AVRO fingerprint of the schema's Parsing
//	                       Canonical Form, little-endian (see Fingerprint)
//	Avro binary body       a dev.samsa.Envelope record (see Schema)
//
// Encode and Decode implement the one schema this package embeds
// (envelope.avsc) directly, without a generic Avro library, because every
// service encodes or decodes every event. They are tested against goavro as
// an independent implementation, and any Avro reader given Schema can decode
// what Encode writes.
//
// Encode, AppendEncode, Decode and Fingerprint are safe for concurrent use.
package event

import "time"

// Event is one event on its way through Samsa. Its ID is stable from ingest
// to delivery and is the destinations' idempotency key (the webhook-id header,
// the PostgreSQL primary key).
type Event struct {
	// ID is unique and stable: given by the producer (ce-id, Idempotency-Key)
	// or generated at ingest.
	ID string
	// Source is the name of the Samsa source the event came in through.
	Source string
	// Type is the CloudEvents type, e.g. "order.created". May be empty.
	Type string
	// Subject is the CloudEvents subject. May be empty.
	Subject string
	// Time is when the event happened (or was received), with microsecond precision.
	Time time.Time
	// Key is the partition key; events with the same key keep their order.
	// Empty means no key.
	Key string
	// ContentType of Data, "application/json" for JSON payloads.
	ContentType string
	// Data is the payload, as received.
	Data []byte
	// Attributes are extension attributes (CloudEvents extensions, ce-* headers).
	Attributes map[string]string
	// TraceParent and TraceState carry W3C trace context from ingest to delivery.
	TraceParent string
	TraceState  string
}
