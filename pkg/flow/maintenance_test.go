package flow

import (
	"testing"
	"time"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func TestMaintenance(t *testing.T) {
	berlin, _ := time.LoadLocation("Europe/Berlin")
	d := &samsav1.Delivery{MaintenanceWindows: []*samsav1.MaintenanceWindow{
		{Name: "sunday", Cron: "0 2 * * SUN", Duration: "2h", TimeZone: "Europe/Berlin"},
		{Name: "daily", Cron: "30 12 * * *", Duration: "15m"},
	}}
	// Sunday 2024-03-10.
	cases := []struct {
		now      time.Time
		inWindow string
		next     string
		nextAt   time.Time
	}{
		{time.Date(2024, 3, 10, 1, 59, 0, 0, berlin), "", "sunday", time.Date(2024, 3, 10, 2, 0, 0, 0, berlin)},
		{time.Date(2024, 3, 10, 2, 0, 0, 0, berlin), "sunday", "daily", time.Date(2024, 3, 10, 12, 30, 0, 0, time.UTC)},
		{time.Date(2024, 3, 10, 3, 59, 59, 0, berlin), "sunday", "daily", time.Date(2024, 3, 10, 12, 30, 0, 0, time.UTC)},
		{time.Date(2024, 3, 10, 4, 0, 0, 0, berlin), "", "daily", time.Date(2024, 3, 10, 12, 30, 0, 0, time.UTC)},
		{time.Date(2024, 3, 11, 12, 40, 0, 0, time.UTC), "daily", "daily", time.Date(2024, 3, 12, 12, 30, 0, 0, time.UTC)},
	}
	for _, c := range cases {
		w, ok := Maintenance(d, c.now)
		if got := w.Window.GetName(); ok != (c.inWindow != "") || got != c.inWindow {
			t.Errorf("%s: in window %q (%v), want %q", c.now, got, ok, c.inWindow)
		}
		n, ok := NextMaintenance(d, c.now)
		if !ok || n.Window.GetName() != c.next || !n.Start.Equal(c.nextAt) {
			t.Errorf("%s: next %q at %s, want %q at %s", c.now, n.Window.GetName(), n.Start, c.next, c.nextAt)
		}
	}
	if _, ok := NextMaintenance(nil, time.Now()); ok {
		t.Error("no windows, but a next one")
	}
}
