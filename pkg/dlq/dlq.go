// Package dlq is the format of dead letters: a dead-lettered event keeps its
// envelope as the record value, unchanged, and the reason travels in record
// headers, so that a redrive delivers exactly what would have been
// delivered.
package dlq

import (
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Header names of a dead letter.
const (
	HeaderFlow        = "samsa-dlq-flow"
	HeaderFlowVersion = "samsa-dlq-flow-version"
	// HeaderStage is "filter", "transform", "encode" or "deliver".
	HeaderStage    = "samsa-dlq-stage"
	HeaderError    = "samsa-dlq-error"
	HeaderTime     = "samsa-dlq-time"
	HeaderAttempts = "samsa-dlq-attempts"
	// HeaderStatus is the destination's last status (an HTTP code, or a
	// class such as "timeout" or "connection").
	HeaderStatus = "samsa-dlq-status"
	// HeaderResponse is an excerpt of the destination's last response.
	HeaderResponse     = "samsa-dlq-response"
	HeaderFirstAttempt = "samsa-dlq-first-attempt"
	// HeaderSource* locate the record the event came from.
	HeaderSourceTopic     = "samsa-dlq-source-topic"
	HeaderSourcePartition = "samsa-dlq-source-partition"
	HeaderSourceOffset    = "samsa-dlq-source-offset"
	// HeaderRedriven counts how often an event was redriven; set on the
	// record written back to the delivery topic.
	HeaderRedriven = "samsa-redriven"
)

// MaxResponseExcerpt bounds HeaderResponse and HeaderError.
const MaxResponseExcerpt = 1024

// Failure is why an event was dead-lettered.
type Failure struct {
	Flow         string
	FlowVersion  int64
	Stage        string
	Err          string
	Time         time.Time
	Attempts     int
	Status       string
	Response     string
	FirstAttempt time.Time
	// SourceTopic, SourcePartition and SourceOffset locate the input record.
	SourceTopic     string
	SourcePartition int32
	SourceOffset    int64
}

// Headers renders f as record headers. Empty fields are left out.
func (f Failure) Headers() []kgo.RecordHeader {
	h := make([]kgo.RecordHeader, 0, 12)
	add := func(k, v string) {
		if v != "" {
			h = append(h, kgo.RecordHeader{Key: k, Value: []byte(v)})
		}
	}
	add(HeaderFlow, f.Flow)
	if f.FlowVersion != 0 {
		add(HeaderFlowVersion, strconv.FormatInt(f.FlowVersion, 10))
	}
	add(HeaderStage, f.Stage)
	add(HeaderError, truncate(f.Err))
	if f.Time.IsZero() {
		f.Time = time.Now()
	}
	add(HeaderTime, f.Time.UTC().Format(time.RFC3339Nano))
	if f.Attempts > 0 {
		add(HeaderAttempts, strconv.Itoa(f.Attempts))
	}
	add(HeaderStatus, f.Status)
	add(HeaderResponse, truncate(f.Response))
	if !f.FirstAttempt.IsZero() {
		add(HeaderFirstAttempt, f.FirstAttempt.UTC().Format(time.RFC3339Nano))
	}
	if f.SourceTopic != "" {
		add(HeaderSourceTopic, f.SourceTopic)
		add(HeaderSourcePartition, strconv.FormatInt(int64(f.SourcePartition), 10))
		add(HeaderSourceOffset, strconv.FormatInt(f.SourceOffset, 10))
	}
	return h
}

// Parse reads a Failure back from record headers; unknown headers are ignored.
func Parse(headers []kgo.RecordHeader) Failure {
	var f Failure
	for _, h := range headers {
		v := string(h.Value)
		switch h.Key {
		case HeaderFlow:
			f.Flow = v
		case HeaderFlowVersion:
			f.FlowVersion, _ = strconv.ParseInt(v, 10, 64)
		case HeaderStage:
			f.Stage = v
		case HeaderError:
			f.Err = v
		case HeaderTime:
			f.Time, _ = time.Parse(time.RFC3339Nano, v)
		case HeaderAttempts:
			f.Attempts, _ = strconv.Atoi(v)
		case HeaderStatus:
			f.Status = v
		case HeaderResponse:
			f.Response = v
		case HeaderFirstAttempt:
			f.FirstAttempt, _ = time.Parse(time.RFC3339Nano, v)
		case HeaderSourceTopic:
			f.SourceTopic = v
		case HeaderSourcePartition:
			p, _ := strconv.ParseInt(v, 10, 32)
			f.SourcePartition = int32(p)
		case HeaderSourceOffset:
			f.SourceOffset, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return f
}

func truncate(s string) string {
	if len(s) <= MaxResponseExcerpt {
		return s
	}
	// Cut on a rune boundary.
	cut := MaxResponseExcerpt
	for cut > 0 && s[cut]&0xC0 == 0x80 {
		cut--
	}
	return s[:cut] + "…"
}
