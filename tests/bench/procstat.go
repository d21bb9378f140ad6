package bench

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the kernel's USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat: 100 on every Linux architecture Go supports.
const clockTick = 100

// usage is what a process group has used so far.
type usage struct {
	CPU time.Duration // user + system time of every process in the group
	// PeakRSS is the largest VmHWM (peak resident set) of the group's
	// processes since the last resetPeak.
	PeakRSS int64
	RSS     int64 // current VmRSS, summed over the group
}

// groupUsage reads /proc for every process whose process group is pgid.
// Each service the harness starts leads a group of its own, and so does
// the broker (its start script and the JVM).
func groupUsage(pgid int) (usage, error) {
	var u usage
	pids, err := groupPIDs(pgid)
	if err != nil {
		return u, err
	}
	if len(pids) == 0 {
		return u, fmt.Errorf("bench: no process in group %d", pgid)
	}
	for _, pid := range pids {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue // exited meanwhile
		}
		f := statFields(st)
		if len(f) < 13 {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		stime, _ := strconv.ParseInt(f[12], 10, 64)
		u.CPU += time.Duration(ut+stime) * time.Second / clockTick
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			continue
		}
		u.PeakRSS = max(u.PeakRSS, statusKB(status, "VmHWM:"))
		u.RSS += statusKB(status, "VmRSS:")
	}
	return u, nil
}

// resetPeak resets VmHWM of the group's processes to their current RSS
// (clear_refs value 5), so that the next groupUsage reports the peak of
// one run only.
func resetPeak(pgid int) {
	pids, _ := groupPIDs(pgid)
	for _, pid := range pids {
		_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
	}
}

func groupPIDs(pgid int) ([]int, error) {
	if pgid == os.Getpid() {
		return []int{pgid}, nil
	}
	dirs, err := filepath.Glob("/proc/[0-9]*")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		st, err := os.ReadFile(d + "/stat")
		if err != nil {
			continue
		}
		f := statFields(st)
		if len(f) < 3 {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// statFields returns the fields of /proc/<pid>/stat after the command name
// (which may contain spaces): f[0] is the state, f[2] the process group,
// f[11] utime, f[12] stime.
func statFields(st []byte) []string {
	i := bytes.LastIndexByte(st, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(string(st[i+1:]))
}

func statusKB(status []byte, key string) int64 {
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// meter measures the CPU time and the peak RSS of a set of process groups
// over one run.
type meter struct {
	names []string
	pgids []int
	start []usage
}

func newMeter(names []string, pgids []int) *meter {
	m := &meter{names: names, pgids: pgids, start: make([]usage, len(pgids))}
	for i, g := range pgids {
		resetPeak(g)
		m.start[i], _ = groupUsage(g)
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
		u, _ := groupUsage(g)
		out[i] = procFigures{Name: m.names[i], CPU: u.CPU - m.start[i].CPU, PeakRSS: u.PeakRSS}
	}
	return out
}
