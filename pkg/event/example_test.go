package event_test

import (
	"errors"
	"fmt"
	"time"

	"github.com/samsa-dev/samsa/pkg/event"
)

func ExampleEncode() {
	b, err := event.Encode(&event.Event{
		ID:          "evt-1",
		Source:      "orders",
		Type:        "order.created",
		Time:        time.Date(2024, 5, 1, 12, 34, 56, 0, time.UTC),
		ContentType: "application/json",
		Data:        []byte(`{"total":42}`),
	})
	if err != nil {
		panic(err)
	}
	// b is the value of a Kafka record.
	fmt.Printf("% x\n", b[:2])
	// Output: c3 01
}

func ExampleDecode() {
	b, _ := event.Encode(&event.Event{ID: "evt-1", Source: "orders", Data: []byte(`{"total":42}`)})

	e, err := event.Decode(b)
	switch {
	case errors.Is(err, event.ErrNotSingleObject), errors.Is(err, event.ErrUnknownSchema):
		// Not an envelope: a record from another producer.
	case err != nil:
		// A corrupt envelope: dead-letter it with err as the reason.
	default:
		fmt.Println(e.ID, e.Source, string(e.Data), len(e.Attributes))
	}
	// Output: evt-1 orders {"total":42} 0
}
