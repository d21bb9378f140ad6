package bench

import (
	"time"

	"github.com/samsa-dev/samsa/internal/procstat"
)

// meter measures the CPU time and the peak RSS of a set of process groups
// over one run.
type meter struct {
	names []string
	pgids []int
	start []procstat.Usage
}

func newMeter(names []string, pgids []int) *meter {
	m := &meter{names: names, pgids: pgids, start: make([]procstat.Usage, len(pgids))}
	for i, g := range pgids {
		procstat.ResetGroupPeak(g)
		m.start[i], _ = procstat.Group(g)
	}
	return m
}

// procFigures is one process group's use over a run.
type procFigures struct {
	Name    string
	CPU     time.Duration
	PeakRSS int64
}

func (m *meter) stop() []procFigures {
	out := make([]procFigures, len(m.pgids))
	for i, g := range m.pgids {
		u, _ := procstat.Group(g)
		out[i] = procFigures{Name: m.names[i], CPU: u.CPU - m.start[i].CPU, PeakRSS: u.PeakRSS}
	}
	return out
}
