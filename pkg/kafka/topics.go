package kafka

import (
	"fmt"
	"regexp"
	"strings"
)

// Topic names are derived here and nowhere else.
const (
	// FlowsTopic holds sources and flows, compacted, written by control only.
	FlowsTopic = "samsa.flows"
	// StatsTopic holds the periodic per-flow statistics of every replica, compacted.
	StatsTopic = "samsa.stats"

	sourcePrefix   = "samsa.src."
	deliveryPrefix = "samsa.out."
	dlqPrefix      = "samsa.dlq."
)

// nameRE is what a user-chosen name (source, flow) must match: it keeps
// topic names, consumer group ids, URLs and metric labels unambiguous.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,62}$`)

// ValidateName reports why name cannot name a source or flow, or nil.
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("name is empty")
	}
	if !nameRE.MatchString(name) {
		return fmt.Errorf("name %q must match %s (lowercase letters, digits and '-', starting with a letter, at most 63 characters)", name, nameRE)
	}
	return nil
}

// SourceTopic is the default topic of a source fed by the receiver.
func SourceTopic(source string) string { return sourcePrefix + source }

// DeliveryTopic is the topic the transformer writes a flow's results to.
func DeliveryTopic(flow string) string { return deliveryPrefix + flow }

// DLQTopic is a flow's dead-letter topic.
func DLQTopic(flow string) string { return dlqPrefix + flow }

// FlowOfDeliveryTopic returns the flow a delivery topic belongs to.
func FlowOfDeliveryTopic(topic string) (string, bool) {
	return strings.CutPrefix(topic, deliveryPrefix)
}

// ValidateTopic checks a topic name the way Kafka does.
func ValidateTopic(topic string) error {
	if topic == "" || topic == "." || topic == ".." {
		return fmt.Errorf("topic %q is not a valid name", topic)
	}
	if len(topic) > 249 {
		return fmt.Errorf("topic %q is longer than 249 characters", topic)
	}
	for _, r := range topic {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return fmt.Errorf("topic %q: character %q not allowed (letters, digits, '.', '_', '-')", topic, r)
		}
	}
	return nil
}

// Group ids of the services' consumer groups.
const (
	TransformerGroup = "samsa-transformer"
	DelivererGroup   = "samsa-deliverer"
)
