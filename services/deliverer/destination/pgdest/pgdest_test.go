package pgdest

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/samsa-dev/samsa/pkg/event"
	"github.com/samsa-dev/samsa/pkg/pgtest"
	"github.com/samsa-dev/samsa/services/deliverer/destination"
)

func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m)) }

func db(t *testing.T, schema string) (string, *pgx.Conn) {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL; not under -short")
	}
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(ctx, schema); err != nil {
		t.Fatal(err)
	}
	return dsn, conn
}

func items(payloads ...string) []destination.Item {
	out := make([]destination.Item, len(payloads))
	for i, p := range payloads {
		out[i] = destination.Item{Event: &event.Event{ID: fmt.Sprintf("ev-%d", i), Data: []byte(p), ContentType: "application/json"}}
	}
	return out
}

func deliver(t *testing.T, d *Destination, its []destination.Item) []destination.Result {
	t.Helper()
	res := make([]destination.Result, len(its))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	d.Deliver(ctx, its, res)
	return res
}

func TestStatement(t *testing.T) {
	got := statement("audit.orders", []string{"event_id", "amount", "customer"}, ModeUpsert)
	want := `INSERT INTO "audit"."orders" ("event_id", "amount", "customer") VALUES ($1, $2, $3) ON CONFLICT ("event_id") DO UPDATE SET "amount" = EXCLUDED."amount", "customer" = EXCLUDED."customer"`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	got = statement(`we"ird`, []string{"id", "payload"}, ModeInsert)
	want = `INSERT INTO "we""ird" ("id", "payload") VALUES ($1, $2) ON CONFLICT ("id") DO NOTHING`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
}

func TestColumnMappingUpsert(t *testing.T) {
	dsn, conn := db(t, `CREATE SCHEMA shop; CREATE TABLE shop.orders (
		event_id text PRIMARY KEY, amount numeric, customer int, vip boolean, tags jsonb, note text)`)
	d, err := New(Config{DSN: dsn, Table: "shop.orders", Columns: map[string]string{
		"amount": "amount", "customer": "customer.id", "vip": "customer.vip", "tags": "tags", "note": "note",
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	its := items(
		`{"amount": 12.5, "customer": {"id": 7, "vip": true}, "tags": ["a", "b"], "note": "first"}`,
		`{"amount": 3, "customer": {"id": 8}}`,
	)
	for i, r := range deliver(t, d, its) {
		if r.Class != destination.Success {
			t.Fatalf("item %d: %+v", i, r)
		}
	}
	// Redelivery with a changed payload updates the row instead of adding one.
	its[0].Event.Data = []byte(`{"amount": 13, "customer": {"id": 7, "vip": false}, "note": "second"}`)
	if r := deliver(t, d, its[:1]); r[0].Class != destination.Success {
		t.Fatalf("redelivery: %+v", r[0])
	}
	var (
		n        int
		amount   string
		customer int
		vip      *bool
		tags     *string
		note     string
	)
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM shop.orders`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows, %v", n, err)
	}
	err = conn.QueryRow(context.Background(), `SELECT amount::text, customer, vip, tags::text, note FROM shop.orders WHERE event_id = 'ev-0'`).
		Scan(&amount, &customer, &vip, &tags, &note)
	if err != nil || amount != "13" || customer != 7 || vip == nil || *vip || tags != nil || note != "second" {
		t.Fatalf("row: %s %d %v %v %s %v", amount, customer, vip, tags, note, err)
	}
}

func TestJSONColumnInsertMode(t *testing.T) {
	dsn, conn := db(t, `CREATE TABLE events (id text PRIMARY KEY, body jsonb NOT NULL)`)
	d, err := New(Config{DSN: dsn, Table: "events", IDColumn: "id", JSONColumn: "body", Mode: ModeInsert})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	its := items(`{"a": 1}`, `{"b": [1, 2]}`)
	deliver(t, d, its)
	its[0].Event.Data = []byte(`{"a": 2}`)
	if r := deliver(t, d, its[:1]); r[0].Class != destination.Success {
		t.Fatalf("redelivery: %+v", r[0])
	}
	var body string
	if err := conn.QueryRow(context.Background(), `SELECT body::text FROM events WHERE id = 'ev-0'`).Scan(&body); err != nil || body != `{"a": 1}` {
		t.Fatalf("insert mode overwrote the row: %s %v", body, err)
	}
}

// A value of the wrong type fails only its own event: the batch is written
// one by one and the rest succeed.
func TestTypeMismatchIsolated(t *testing.T) {
	dsn, conn := db(t, `CREATE TABLE t (event_id text PRIMARY KEY, n int)`)
	d, err := New(Config{DSN: dsn, Table: "t", Columns: map[string]string{"n": "n"}})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	res := deliver(t, d, items(`{"n": 1}`, `{"n": "many"}`, `{"n": 3}`, `not json`))
	if res[0].Class != destination.Success || res[2].Class != destination.Success {
		t.Fatalf("good rows failed: %+v", res)
	}
	if res[1].Class != destination.Permanent || res[1].Status != "pg-22P02" || !strings.Contains(res[1].Err, `invalid input syntax for type integer: "many"`) {
		t.Fatalf("type mismatch: %+v", res[1])
	}
	if res[3].Class != destination.Permanent || res[3].Status != "payload" {
		t.Fatalf("non-JSON payload: %+v", res[3])
	}
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(*) FROM t`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("%d rows, %v", n, err)
	}
}

func TestSchemaErrorsArePermanent(t *testing.T) {
	dsn, _ := db(t, `CREATE TABLE nokey (event_id text, payload jsonb)`)
	for _, tc := range []struct {
		cfg    Config
		status string
		text   string
	}{
		{Config{DSN: dsn, Table: "missing"}, "pg-42P01", `relation "missing" does not exist`},
		{Config{DSN: dsn, Table: "nokey"}, "pg-42P10", "no unique or exclusion constraint"},
		{Config{DSN: dsn, Table: "nokey", JSONColumn: "nope"}, "pg-42703", `column "nope"`},
	} {
		d, err := New(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		res := deliver(t, d, items(`{}`, `{}`))
		d.Close()
		for _, r := range res {
			if r.Class != destination.Permanent || r.Status != tc.status || !strings.Contains(r.Err, tc.text) {
				t.Errorf("%s: %+v", tc.cfg.Table, r)
			}
		}
	}
}

func TestUnreachableIsRetryable(t *testing.T) {
	if testing.Short() {
		t.Skip("slow connection timeouts; not under -short")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d, err := New(Config{DSN: "postgres://u:secretpw@" + addr + "/db?sslmode=disable", Table: "t", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	for _, r := range deliver(t, d, items(`{}`, `{}`)) {
		if r.Class != destination.Retryable || strings.Contains(r.Err, "secretpw") {
			t.Fatalf("%+v", r)
		}
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	for _, c := range []Config{
		{DSN: "postgres://x/y"},
		{DSN: "postgres://x/y", Table: "t", Mode: "merge"},
		{DSN: "postgres://x/y", Table: "t", Columns: map[string]string{"event_id": "id"}},
		{DSN: "postgres://x/y", Table: "t", Columns: map[string]string{"a": ""}},
		{DSN: "::not a dsn", Table: "t"},
	} {
		if d, err := New(c); err == nil {
			d.Close()
			t.Errorf("New(%+v) succeeded", c)
		}
	}
}
