package pipeline

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/samsa-dev/samsa/pkg/event"
)

// Content types of events read from native topics.
const (
	contentJSON  = "application/json"
	contentBytes = "application/octet-stream"
)

var errNoValue = errors.New("record has no value (a tombstone)")

// decodeRecord turns a source record into an event. Envelope records are
// decoded; records of native topics (format json or bytes) are wrapped in
// a new envelope whose id is derived from the record's position, so that
// reading the same record again always yields the same event.
func decodeRecord(format, source string, r *kgo.Record) (*event.Event, error) {
	switch format {
	case formatEnvelope:
		return event.Decode(r.Value)
	case formatJSON:
		if r.Value == nil {
			return nil, errNoValue
		}
		if !json.Valid(r.Value) {
			return nil, errors.New("record value is not valid JSON")
		}
		return wrap(source, contentJSON, r), nil
	case formatBytes:
		return wrap(source, contentBytes, r), nil
	}
	return nil, fmt.Errorf("unsupported source format %q", format)
}

// NativeID is the id of the event wrapping the record at offset of
// partition of topic: "<topic>-<partition>-<offset>". Within one source
// (one topic) it is unique, and it is the same every time the record is read.
func NativeID(topic string, partition int32, offset int64) string {
	b := make([]byte, 0, len(topic)+24)
	b = append(b, topic...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(partition), 10)
	b = append(b, '-')
	b = strconv.AppendInt(b, offset, 10)
	return string(b)
}

// wrap builds the event of a native record. Its time is the record's
// timestamp; its key is the record key (base64 when it is not UTF-8, as an
// envelope key must be text); CloudEvents headers of the Kafka protocol
// binding (ce_type, ce_subject, other ce_* as attributes, content-type for
// bytes) and the W3C trace headers are carried over.
func wrap(source, contentType string, r *kgo.Record) *event.Event {
	ev := &event.Event{
		ID:          NativeID(r.Topic, r.Partition, r.Offset),
		Source:      source,
		Time:        r.Timestamp.UTC().Truncate(time.Microsecond),
		ContentType: contentType,
		Data:        r.Value,
	}
	if len(r.Key) > 0 {
		if utf8.Valid(r.Key) {
			ev.Key = string(r.Key)
		} else {
			ev.Key = base64.StdEncoding.EncodeToString(r.Key)
		}
	}
	for _, h := range r.Headers {
		if !utf8.Valid(h.Value) {
			continue
		}
		k := strings.ToLower(h.Key)
		switch {
		case k == "ce_type":
			ev.Type = string(h.Value)
		case k == "ce_subject":
			ev.Subject = string(h.Value)
		case k == "traceparent":
			ev.TraceParent = string(h.Value)
		case k == "tracestate":
			ev.TraceState = string(h.Value)
		case k == "content-type" && contentType == contentBytes:
			ev.ContentType = string(h.Value)
		case strings.HasPrefix(k, "ce_") && len(k) > 3 && k != "ce_id" && k != "ce_source" && k != "ce_time" && k != "ce_specversion" && utf8.ValidString(k):
			if ev.Attributes == nil {
				ev.Attributes = map[string]string{}
			}
			ev.Attributes[k[3:]] = string(h.Value)
		}
	}
	return ev
}

// OutputID is the id of a transform's n-th output (from 0) for the input
// event id: output 0 keeps the input's id, output n is "<id>#<n>". The same
// input always yields the same ids, which is what destinations deduplicate
// on.
func OutputID(id string, n int) string {
	if n == 0 {
		return id
	}
	return id + "#" + strconv.Itoa(n)
}
