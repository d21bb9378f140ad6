package flow

import (
	"time"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Window is a maintenance window in effect or coming up.
type Window struct {
	Window *samsav1.MaintenanceWindow
	// Start and End bound the occurrence.
	Start, End time.Time
}

// Maintenance returns the maintenance window of d in effect at now (ok
// false when none is), the one ending last if several overlap. Windows that
// do not parse are ignored (validation refuses them before they are stored).
func Maintenance(d *samsav1.Delivery, now time.Time) (w Window, ok bool) {
	for _, mw := range d.GetMaintenanceWindows() {
		sched, loc, dur, valid := parseWindow(mw)
		if !valid {
			continue
		}
		// The first start after now-dur is the only one whose window can
		// still be open at now.
		start := sched.Next(now.Add(-dur).In(loc))
		if start.IsZero() || start.After(now) {
			continue
		}
		end := start.Add(dur)
		if !ok || end.After(w.End) {
			w, ok = Window{Window: mw, Start: start, End: end}, true
		}
	}
	return w, ok
}

// NextMaintenance returns the first maintenance window of d that starts
// after now.
func NextMaintenance(d *samsav1.Delivery, now time.Time) (w Window, ok bool) {
	for _, mw := range d.GetMaintenanceWindows() {
		sched, loc, dur, valid := parseWindow(mw)
		if !valid {
			continue
		}
		start := sched.Next(now.In(loc))
		if start.IsZero() {
			continue
		}
		if !ok || start.Before(w.Start) {
			w, ok = Window{Window: mw, Start: start, End: start.Add(dur)}, true
		}
	}
	return w, ok
}

type schedule interface{ Next(time.Time) time.Time }

func parseWindow(mw *samsav1.MaintenanceWindow) (schedule, *time.Location, time.Duration, bool) {
	sched, err := ParseCron(mw.GetCron())
	if err != nil {
		return nil, nil, 0, false
	}
	loc, err := LoadZone(mw.GetTimeZone())
	if err != nil {
		return nil, nil, 0, false
	}
	dur, err := time.ParseDuration(mw.GetDuration())
	if err != nil || dur <= 0 {
		return nil, nil, 0, false
	}
	return sched, loc, dur, true
}
