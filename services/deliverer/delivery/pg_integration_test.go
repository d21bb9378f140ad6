package delivery

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/samsa-dev/samsa/pkg/pgtest"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func pgFlow(name, dsn string) *samsav1.Flow {
	return &samsav1.Flow{
		Name: name, Source: "src",
		Destination: &samsav1.Destination{Kind: &samsav1.Destination_Postgres{Postgres: &samsav1.PostgresDestination{
			Dsn: dsn, Table: "events", Columns: map[string]string{"k": "key", "seq": "seq"},
		}}},
		Delivery: &samsav1.Delivery{Retry: &samsav1.Retry{InitialBackoff: "20ms", MaxBackoff: "200ms"}, RampUp: "0s"},
	}
}

func pgCount(t *testing.T, conn *pgx.Conn, q string) int {
	t.Helper()
	var n int
	if err := conn.QueryRow(context.Background(), q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// PostgreSQL holds exactly one row per event, also when events are
// delivered more than once (the same events produced twice here).
func TestPostgresOneRowPerEvent(t *testing.T) {
	needPostgres(t)
	e := newEnv(t)
	dsn := pgtest.DSN(t)
	conn, err := pgx.Connect(e.ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(e.ctx, `CREATE TABLE events (event_id text PRIMARY KEY, k text NOT NULL, seq int NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	name := flowName()
	e.createTopics(name, 3)
	e.putFlow(pgFlow(name, dsn))
	e.start()
	evs := events(name, 2000, 40)
	e.produce(name, evs...)
	e.produce(name, evs[:500]...) // duplicates
	waitFor(t, 60*time.Second, "every row", func() bool {
		return pgCount(t, conn, `SELECT count(*) FROM events`) == len(evs)
	})
	waitFor(t, 30*time.Second, "offsets committed to the end", func() bool { return e.groupLag(name) == 0 })
	if n := pgCount(t, conn, `SELECT count(*) FROM events`); n != len(evs) {
		t.Fatalf("%d rows for %d events", n, len(evs))
	}
	// Per key, the seq values are those of the events: 0..49 for each of 40 keys.
	if n := pgCount(t, conn, `SELECT count(*) FROM (SELECT k FROM events GROUP BY k HAVING max(seq) = 49 AND count(*) = 50) x`); n != 40 {
		t.Fatalf("%d keys complete, want 40", n)
	}
}
