package event

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// This file computes the Parsing Canonical Form of an Avro schema and its
// CRC-64-AVRO fingerprint, as the Avro specification defines them ("Schema
// Fingerprints" and "Parsing Canonical Form for Schemas"), so that the
// envelope's fingerprint is the one Java, Python or any other conforming
// implementation computes for Schema.
//
// It is not delegated to goavro: goavro keeps {"type": "long", ...} as an
// object when the schema carries a logicalType, where the specification (and
// the Java reference implementation) reduce it to "long"; with the time
// field's timestamp-micros that would give the envelope a fingerprint no
// other reader agrees with.

// primitiveTypes are the Avro primitive type names; their canonical form is
// the quoted name.
var primitiveTypes = map[string]bool{
	"null": true, "boolean": true, "int": true, "long": true,
	"float": true, "double": true, "bytes": true, "string": true,
}

// parsingCanonicalForm returns the Parsing Canonical Form of the JSON Avro
// schema: primitive types in their simple form, full names, only the
// attributes that matter for parsing (name, type, fields, symbols, items,
// values, size) in that order, and no whitespace. A named type that
// appears again is written as its full name, like the Java implementation
// does. It expects a schema that an Avro parser accepts; it returns an
// error for what it cannot make sense of, never a wrong form.
func parsingCanonicalForm(schema string) (string, error) {
	dec := json.NewDecoder(strings.NewReader(schema))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return "", fmt.Errorf("parse schema: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return "", errors.New("parse schema: data after the schema")
	}
	c := canonicalizer{defined: make(map[string]bool)}
	if err := c.write(v, ""); err != nil {
		return "", err
	}
	return c.b.String(), nil
}

type canonicalizer struct {
	b       strings.Builder
	defined map[string]bool // full names of the named types written so far
}

// write writes the canonical form of the schema v, in which unqualified
// names belong to namespace ns.
func (c *canonicalizer) write(v any, ns string) error {
	switch v := v.(type) {
	case string:
		return c.writeReference(v, ns)
	case []any: // a union
		c.b.WriteByte('[')
		for i, branch := range v {
			if i > 0 {
				c.b.WriteByte(',')
			}
			if err := c.write(branch, ns); err != nil {
				return err
			}
		}
		c.b.WriteByte(']')
		return nil
	case map[string]any:
		return c.writeObject(v, ns)
	default:
		return fmt.Errorf("schema: unexpected %T where a type belongs", v)
	}
}

// writeReference writes a type given by name: a primitive type, or a named
// type defined earlier, looked up in ns first and then in the null
// namespace, as Avro parsers resolve names.
func (c *canonicalizer) writeReference(name, ns string) error {
	if primitiveTypes[name] {
		c.quote(name)
		return nil
	}
	if !strings.Contains(name, ".") && ns != "" && c.defined[ns+"."+name] {
		c.quote(ns + "." + name)
		return nil
	}
	if c.defined[name] {
		c.quote(name)
		return nil
	}
	return fmt.Errorf("schema: unknown type %q", name)
}

func (c *canonicalizer) writeObject(v map[string]any, ns string) error {
	t, ok := v["type"].(string)
	if !ok {
		return fmt.Errorf("schema: type is %T, want a string", v["type"])
	}
	switch t {
	case "array", "map":
		attr := "items"
		if t == "map" {
			attr = "values"
		}
		c.b.WriteString(`{"type":`)
		c.quote(t)
		c.b.WriteString(`,"` + attr + `":`)
		if err := c.write(v[attr], ns); err != nil {
			return err
		}
		c.b.WriteByte('}')
		return nil
	case "record", "error", "enum", "fixed":
		return c.writeNamed(t, v, ns)
	default: // a primitive, with attributes such as logicalType, or a reference
		return c.writeReference(t, ns)
	}
}

// writeNamed writes a record, error, enum or fixed: its full name, its type
// and its fields, symbols or size.
func (c *canonicalizer) writeNamed(t string, v map[string]any, ns string) error {
	name, ok := v["name"].(string)
	if !ok || name == "" {
		return fmt.Errorf("schema: %s without a name", t)
	}
	full := name
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		ns = name[:i]
	} else {
		if space, ok := v["namespace"].(string); ok {
			ns = space // "" puts the type in the null namespace
		}
		if ns != "" {
			full = ns + "." + name
		}
	}
	if c.defined[full] {
		c.quote(full)
		return nil
	}
	c.defined[full] = true

	if t == "error" {
		t = "record" // an error is a record, as far as parsing goes
	}
	c.b.WriteString(`{"name":`)
	c.quote(full)
	c.b.WriteString(`,"type":`)
	c.quote(t)
	switch t {
	case "record":
		fields, ok := v["fields"].([]any)
		if !ok {
			return fmt.Errorf("schema: record %s: fields is %T, want an array", full, v["fields"])
		}
		c.b.WriteString(`,"fields":[`)
		for i, f := range fields {
			field, ok := f.(map[string]any)
			if !ok {
				return fmt.Errorf("schema: record %s: field %d is %T, want an object", full, i, f)
			}
			fname, ok := field["name"].(string)
			if !ok {
				return fmt.Errorf("schema: record %s: field %d without a name", full, i)
			}
			if i > 0 {
				c.b.WriteByte(',')
			}
			c.b.WriteString(`{"name":`)
			c.quote(fname)
			c.b.WriteString(`,"type":`)
			if err := c.write(field["type"], ns); err != nil {
				return fmt.Errorf("%w (record %s, field %s)", err, full, fname)
			}
			c.b.WriteByte('}')
		}
		c.b.WriteByte(']')
	case "enum":
		symbols, ok := v["symbols"].([]any)
		if !ok {
			return fmt.Errorf("schema: enum %s: symbols is %T, want an array", full, v["symbols"])
		}
		c.b.WriteString(`,"symbols":[`)
		for i, s := range symbols {
			sym, ok := s.(string)
			if !ok {
				return fmt.Errorf("schema: enum %s: symbol %d is %T, want a string", full, i, s)
			}
			if i > 0 {
				c.b.WriteByte(',')
			}
			c.quote(sym)
		}
		c.b.WriteByte(']')
	case "fixed":
		size, err := strconv.ParseUint(fmt.Sprint(v["size"]), 10, 31)
		if err != nil {
			return fmt.Errorf("schema: fixed %s: size %v is not a non-negative integer", full, v["size"])
		}
		c.b.WriteString(`,"size":`)
		c.b.WriteString(strconv.FormatUint(size, 10))
	}
	c.b.WriteByte('}')
	return nil
}

// quote writes s as a JSON string. Avro names and symbols never need
// escaping; anything else is escaped as JSON requires, without the HTML
// escaping of encoding/json.
func (c *canonicalizer) quote(s string) {
	c.b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			c.b.WriteByte('\\')
			c.b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&c.b, `\u%04x`, r)
		default:
			c.b.WriteRune(r)
		}
	}
	c.b.WriteByte('"')
}

// rabinEmpty is the CRC-64-AVRO fingerprint of no bytes, and the polynomial
// of the Rabin fingerprint the Avro specification uses.
const rabinEmpty uint64 = 0xc15d213aa4d7a795

// rabinTable is the byte-at-a-time lookup table of CRC-64-AVRO.
var rabinTable = func() (t [256]uint64) {
	for i := range t {
		fp := uint64(i)
		for range 8 {
			fp = (fp >> 1) ^ (rabinEmpty & -(fp & 1))
		}
		t[i] = fp
	}
	return t
}()

// rabin returns the CRC-64-AVRO fingerprint of b, the 64-bit Rabin
// fingerprint that single-object encoding puts in its header.
func rabin(b []byte) uint64 {
	fp := rabinEmpty
	for _, c := range b {
		fp = (fp >> 8) ^ rabinTable[byte(fp)^c]
	}
	return fp
}
