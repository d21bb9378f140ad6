package event

import (
	_ "embed" // for the envelope schema
	"encoding/binary"
)

// Schema is the envelope's Avro schema (record dev.samsa.Envelope), exactly
// as written in envelope.avsc. Readers outside Go decode envelopes with it;
// publish it to a schema registry or pass it to avro-tools. It must not be
// modified: Encode and Decode implement this schema by hand (they do not
// read it), and Fingerprint was computed from it when the package was
// initialized.
//
//go:embed envelope.avsc
var Schema string

// The envelope schema's Parsing Canonical Form, its fingerprint, and the
// single-object header that every encoded envelope starts with. They are
// computed once, from Schema, when the package is initialized.
var (
	canonicalSchema string
	fingerprint     uint64
	header          [headerLen]byte
)

const (
	// magic0 and magic1 are the marker that starts every single-object
	// encoded Avro datum (format version 1).
	magic0, magic1 = 0xC3, 0x01
	// headerLen is the marker plus the 8-byte little-endian fingerprint.
	headerLen = 2 + 8
)

func init() {
	// The canonical form and fingerprint follow the file, so they cannot
	// drift from it; the golden tests notice any change.
	var err error
	if canonicalSchema, err = parsingCanonicalForm(Schema); err != nil {
		panic("event: invalid embedded envelope.avsc: " + err.Error())
	}
	fingerprint = rabin([]byte(canonicalSchema))
	header[0], header[1] = magic0, magic1
	binary.LittleEndian.PutUint64(header[2:], fingerprint)
}

// Fingerprint returns the CRC-64-AVRO (Rabin) fingerprint of the Parsing
// Canonical Form of Schema: the 8 bytes, little-endian, that follow the
// C3 01 marker in every encoded envelope. Any change to the schema that
// changes how records are encoded changes the fingerprint.
func Fingerprint() uint64 { return fingerprint }
