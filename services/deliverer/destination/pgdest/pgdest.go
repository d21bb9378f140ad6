// Package pgdest writes events into a PostgreSQL table, one row per event
// keyed by the event id: INSERT ... ON CONFLICT (id) DO UPDATE (upsert) or
// DO NOTHING (insert), so that delivering an event again never duplicates a
// row (effectively-once).
//
// Columns come from the payload: each configured column takes the value at
// a dotted path of the JSON payload ("customer.id"), or, without a mapping,
// the whole payload goes into one json/jsonb column. Values are sent in
// PostgreSQL's text format and converted by the server to the column's
// type, so any type that accepts the JSON value's text works, and a value
// that does not fit (a word into an integer column) fails with the
// server's own message.
//
// A batch runs as one transaction of pipelined statements. If it fails
// because of the data, the events are written one by one so that only the
// offending ones are dead-lettered; if the database cannot be reached, the
// batch is retried.
package pgdest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

// Modes of writing a row.
const (
	ModeUpsert = "upsert"
	ModeInsert = "insert"
)

// Config is one PostgreSQL destination. DSN must be opened already.
type Config struct {
	// DSN is a libpq connection string or URL.
	DSN string
	// Table, optionally schema-qualified ("audit.orders").
	Table string
	// IDColumn holds the event id; it needs a unique constraint. Default
	// "event_id".
	IDColumn string
	// Columns maps a column to a dotted path into the payload.
	Columns map[string]string
	// JSONColumn receives the payload when Columns is empty. Default "payload".
	JSONColumn string
	// Mode is ModeUpsert (default) or ModeInsert.
	Mode string
	// MaxConns caps the pool (unless the DSN sets pool_max_conns). Default 8.
	MaxConns int
	// Timeout bounds connecting. Default 10s.
	Timeout time.Duration
}

// Destination is a PostgreSQL destination.
type Destination struct {
	cfg   Config
	pool  *pgxpool.Pool
	sql   string
	paths [][]string // per mapped column, in statement order; nil: the payload
	conns int
}

// MaxBatch is the most events written in one transaction.
const MaxBatch = 500

// New validates cfg, prepares the statement and creates the pool; it
// connects lazily.
func New(cfg Config) (*Destination, error) {
	if cfg.Table == "" {
		return nil, errors.New("postgres destination: no table")
	}
	if cfg.IDColumn == "" {
		cfg.IDColumn = "event_id"
	}
	if cfg.JSONColumn == "" {
		cfg.JSONColumn = "payload"
	}
	switch cfg.Mode {
	case "":
		cfg.Mode = ModeUpsert
	case ModeUpsert, ModeInsert:
	default:
		return nil, fmt.Errorf("postgres destination: mode %q: want upsert or insert", cfg.Mode)
	}
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 8
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	d := &Destination{cfg: cfg}
	cols := []string{cfg.IDColumn}
	if len(cfg.Columns) == 0 {
		cols = append(cols, cfg.JSONColumn)
		d.paths = [][]string{nil}
	} else {
		names := make([]string, 0, len(cfg.Columns))
		for c := range cfg.Columns {
			names = append(names, c)
		}
		sort.Strings(names)
		for _, c := range names {
			if c == cfg.IDColumn {
				return nil, fmt.Errorf("postgres destination: column %q is the id column", c)
			}
			p := cfg.Columns[c]
			if p == "" {
				return nil, fmt.Errorf("postgres destination: column %q maps no field", c)
			}
			cols = append(cols, c)
			d.paths = append(d.paths, strings.Split(p, "."))
		}
	}
	d.sql = statement(cfg.Table, cols, cfg.Mode)

	pc, err := pgxpool.ParseConfig(cfg.DSN)
	if err != nil {
		return nil, fmt.Errorf("postgres destination: dsn: %w", redactErr(err))
	}
	if !strings.Contains(cfg.DSN, "pool_max_conns") {
		pc.MaxConns = int32(cfg.MaxConns)
	}
	pc.MinConns = 0
	if pc.ConnConfig.ConnectTimeout == 0 || pc.ConnConfig.ConnectTimeout > cfg.Timeout {
		pc.ConnConfig.ConnectTimeout = cfg.Timeout
	}
	if pc.ConnConfig.RuntimeParams == nil {
		pc.ConnConfig.RuntimeParams = map[string]string{}
	}
	pc.ConnConfig.RuntimeParams["application_name"] = "samsa-deliverer"
	d.conns = int(pc.MaxConns)
	pool, err := pgxpool.NewWithConfig(context.Background(), pc)
	if err != nil {
		return nil, fmt.Errorf("postgres destination: %w", redactErr(err))
	}
	d.pool = pool
	return d, nil
}

// statement is the INSERT of one row.
func statement(table string, cols []string, mode string) string {
	var b strings.Builder
	b.WriteString("INSERT INTO ")
	b.WriteString(pgx.Identifier(strings.Split(table, ".")).Sanitize())
	b.WriteString(" (")
	for i, c := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgx.Identifier{c}.Sanitize())
	}
	b.WriteString(") VALUES (")
	for i := range cols {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", i+1)
	}
	b.WriteString(") ON CONFLICT (")
	b.WriteString(pgx.Identifier{cols[0]}.Sanitize())
	b.WriteString(") DO ")
	if mode == ModeInsert {
		b.WriteString("NOTHING")
		return b.String()
	}
	b.WriteString("UPDATE SET ")
	for i, c := range cols[1:] {
		if i > 0 {
			b.WriteString(", ")
		}
		id := pgx.Identifier{c}.Sanitize()
		b.WriteString(id + " = EXCLUDED." + id)
	}
	return b.String()
}

// Capabilities: ordered batches of up to MaxBatch rows, one per connection.
func (d *Destination) Capabilities() destination.Capabilities {
	return destination.Capabilities{MaxBatch: MaxBatch, OrderedBatch: true, MaxConcurrency: d.conns}
}

// Close closes the pool.
func (d *Destination) Close() error {
	d.pool.Close()
	return nil
}

// Deliver writes the batch in one transaction; see the package comment.
func (d *Destination) Deliver(ctx context.Context, items []destination.Item, results []destination.Result) {
	args := make([][]any, len(items))
	for i := range items {
		a, err := d.args(&items[i])
		if err != nil {
			results[i] = destination.Result{Class: destination.Permanent, Status: "payload", Err: err.Error()}
			continue
		}
		args[i] = a
	}
	err := d.writeBatch(ctx, args)
	if err == nil {
		for i := range items {
			if args[i] != nil {
				results[i] = destination.Result{Class: destination.Success}
			}
		}
		return
	}
	r := classify(ctx, err, d.cfg.Table)
	if r.Class != destination.Permanent || countArgs(args) == 1 {
		for i := range items {
			if args[i] != nil {
				results[i] = r
			}
		}
		return
	}
	// The data is at fault: write one by one, in order, to find out which.
	for i := range items {
		if args[i] == nil {
			continue
		}
		_, err := d.pool.Exec(ctx, d.sql, args[i]...)
		if err == nil {
			results[i] = destination.Result{Class: destination.Success}
			continue
		}
		results[i] = classify(ctx, err, d.cfg.Table)
		if results[i].Class != destination.Permanent {
			// Later events of the same key must not overtake this one.
			for j := i + 1; j < len(items); j++ {
				if args[j] != nil {
					results[j] = destination.Result{Class: destination.Requeue, Status: results[i].Status, Err: results[i].Err}
				}
			}
			return
		}
	}
}

func countArgs(args [][]any) int {
	n := 0
	for _, a := range args {
		if a != nil {
			n++
		}
	}
	return n
}

func (d *Destination) writeBatch(ctx context.Context, args [][]any) error {
	var b pgx.Batch
	for _, a := range args {
		if a != nil {
			b.Queue(d.sql, a...)
		}
	}
	if b.Len() == 0 {
		return nil
	}
	tx, err := d.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if err := tx.SendBatch(ctx, &b).Close(); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// args are the statement's parameters for an event: its id, then the
// mapped values (or the payload).
func (d *Destination) args(it *destination.Item) ([]any, error) {
	ev := it.Event
	out := make([]any, 0, 1+len(d.paths))
	out = append(out, ev.ID)
	if len(d.paths) == 1 && d.paths[0] == nil {
		return append(out, string(ev.Data)), nil
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(ev.Data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("payload is not JSON, so no columns can be taken from it: %w", err)
	}
	for _, p := range d.paths {
		v, err := textValue(lookup(doc, p))
		if err != nil {
			return nil, fmt.Errorf("field %s: %w", strings.Join(p, "."), err)
		}
		out = append(out, v)
	}
	return out, nil
}

// lookup follows a dotted path through objects (and arrays, by index).
func lookup(v any, path []string) any {
	for _, k := range path {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			if _, err := fmt.Sscanf(k, "%d", &i); err != nil || i < 0 || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// textValue renders a JSON value in PostgreSQL's text format: strings as
// they are, numbers and booleans as written, objects and arrays as JSON
// (for json and jsonb columns), null and missing fields as NULL.
func textValue(v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		return x, nil
	case json.Number:
		return x.String(), nil
	case bool:
		if x {
			return "true", nil
		}
		return "false", nil
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		return string(b), nil
	}
}

// classify tells database and network trouble (retry) from errors about
// the data or the schema (dead-letter).
func classify(ctx context.Context, err error, table string) destination.Result {
	if ctx.Err() == context.Canceled {
		return destination.Result{Class: destination.Requeue, Status: "canceled", Err: err.Error()}
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		r := destination.Result{Status: "pg-" + pgErr.Code, Err: fmt.Sprintf("table %s: %s", table, describe(pgErr))}
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"), // insufficient resources
			strings.HasPrefix(pgErr.Code, "57"), // operator intervention (shutdown, cannot connect now)
			strings.HasPrefix(pgErr.Code, "58"), // system error
			pgErr.Code == "40001", pgErr.Code == "40P01", pgErr.Code == "55P03", pgErr.Code == "55006":
			r.Class = destination.Retryable
		default:
			r.Class = destination.Permanent
		}
		return r
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return destination.Result{Class: destination.Retryable, Status: "timeout", Err: err.Error()}
	}
	var netErr net.Error
	var connErr *pgconn.ConnectError
	if errors.As(err, &connErr) || errors.As(err, &netErr) || pgconn.SafeToRetry(err) || pgconn.Timeout(err) ||
		errors.Is(err, pgx.ErrTxClosed) || strings.Contains(err.Error(), "conn closed") {
		return destination.Result{Class: destination.Retryable, Status: "connection", Err: redactErr(err).Error()}
	}
	// Errors raised before the statement reached the server: encoding a
	// value for the column's type.
	return destination.Result{Class: destination.Permanent, Status: "pg-client", Err: fmt.Sprintf("table %s: %v", table, err)}
}

func describe(e *pgconn.PgError) string {
	s := e.Message
	if e.Detail != "" {
		s += "; " + e.Detail
	}
	if e.Hint != "" {
		s += "; hint: " + e.Hint
	}
	if e.ColumnName != "" {
		s += "; column " + e.ColumnName
	}
	return s + " (SQLSTATE " + e.Code + ")"
}

// redactErr keeps passwords out of connection errors.
func redactErr(err error) error {
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && ce.Config != nil && ce.Config.Password != "" {
		return errors.New(strings.ReplaceAll(err.Error(), ce.Config.Password, "xxxxx"))
	}
	return err
}
