package server

import (
	"testing"
	"time"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestConfiguredStatus(t *testing.T) {
	windows := &samsav1.Delivery{MaintenanceWindows: []*samsav1.MaintenanceWindow{{Name: "nightly", Cron: "0 2 * * *", Duration: "1h"}}}
	at := func(h, m int) time.Time { return time.Date(2026, 5, 4, h, m, 0, 0, time.UTC) }
	cases := []struct {
		name   string
		flow   *samsav1.Flow
		now    time.Time
		state  string
		reason string
		next   time.Time
	}{
		{"active", &samsav1.Flow{Name: "f"}, at(1, 0), "active", "", time.Time{}},
		{"paused", &samsav1.Flow{Name: "f", Paused: true, Delivery: windows}, at(2, 30), "paused", "paused by an operator (resume it to deliver again)", at(2, 0).Add(24 * time.Hour)},
		{"before window", &samsav1.Flow{Name: "f", Delivery: windows}, at(1, 59), "active", "", at(2, 0)},
		{"in window", &samsav1.Flow{Name: "f", Delivery: windows}, at(2, 30), "maintenance", `maintenance window "nightly" until 2026-05-04T03:00:00Z`, at(2, 0).Add(24 * time.Hour)},
		{"after window", &samsav1.Flow{Name: "f", Delivery: windows}, at(3, 0), "active", "", at(2, 0).Add(24 * time.Hour)},
	}
	for _, c := range cases {
		st := configuredStatus(c.flow, c.now)
		if st.State != c.state || st.Reason != c.reason || st.Name != "f" {
			t.Errorf("%s: %s %q", c.name, st.State, st.Reason)
		}
		if got := st.GetNextMaintenance(); (got == nil) != c.next.IsZero() || got != nil && !got.AsTime().Equal(c.next) {
			t.Errorf("%s: next maintenance %v, want %v", c.name, got, c.next)
		}
	}
}
