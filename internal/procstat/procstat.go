// Package procstat reads what processes use from Linux's /proc: CPU time,
// resident memory and its peak. The benchmarks measure the services, the
// broker and themselves with it; it is not for production code (it reads
// files a container may not expose).
package procstat

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// clockTick is the kernel's USER_HZ, the unit of utime and stime in
// /proc/<pid>/stat: 100 on every Linux architecture Go supports.
const clockTick = 100

// Usage is what a process, or a group of processes, has used so far.
type Usage struct {
	CPU time.Duration // user + system time
	RSS int64         // current resident set (VmRSS), bytes; summed over a group
	// PeakRSS is the largest peak resident set (VmHWM) since the process
	// started or since the last ResetPeak, bytes; the largest of a group.
	PeakRSS int64
}

// Process reads the usage of process pid.
func Process(pid int) (Usage, error) {
	var u Usage
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	f := statFields(st)
	if len(f) < 13 {
		return u, fmt.Errorf("procstat: /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	u.CPU = time.Duration(ut+stime) * time.Second / clockTick
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	u.PeakRSS = statusKB(status, "VmHWM:")
	u.RSS = statusKB(status, "VmRSS:")
	return u, nil
}

// Group reads the usage of every process whose process group is pgid (a
// process started with Setpgid leads a group holding its children too).
func Group(pgid int) (Usage, error) {
	var u Usage
	pids, err := groupPIDs(pgid)
	if err != nil {
		return u, err
	}
	if len(pids) == 0 {
		return u, fmt.Errorf("procstat: no process in group %d", pgid)
	}
	for _, pid := range pids {
		p, err := Process(pid)
		if err != nil {
			continue // exited meanwhile
		}
		u.CPU += p.CPU
		u.RSS += p.RSS
		u.PeakRSS = max(u.PeakRSS, p.PeakRSS)
	}
	return u, nil
}

// ResetPeak resets the peak resident set (VmHWM) of process pid to its
// current one (clear_refs value 5), so that the next reading reports the
// peak since now.
func ResetPeak(pid int) {
	_ = os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// ResetGroupPeak is ResetPeak for every process of group pgid.
func ResetGroupPeak(pgid int) {
	pids, _ := groupPIDs(pgid)
	for _, pid := range pids {
		ResetPeak(pid)
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

// statusKB returns the "key: N kB" line of a /proc status or meminfo file
// in bytes, or 0.
func statusKB(status []byte, key string) int64 {
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// Machine describes this machine for a benchmark report: cores, CPU model,
// memory and the Go version.
func Machine() string {
	cpu := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		mem = fmt.Sprintf(", %.0f GiB", float64(statusKB(b, "MemTotal:"))/(1<<30))
	}
	return fmt.Sprintf("%d cores (%s)%s, %s", runtime.NumCPU(), cpu, mem, runtime.Version())
}

// LoadAvg is the 1-minute load average, or "?".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// SystemCPU returns the time all CPUs of the machine were busy and the time
// that passed on all of them, since boot: the difference of two readings
// is the machine's load over an interval.
func SystemCPU() (busy, total time.Duration) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 2 {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, _ := strconv.ParseInt(v, 10, 64)
		d := time.Duration(n) * time.Second / clockTick
		total += d
		if i != 3 && i != 4 { // idle, iowait
			busy += d
		}
	}
	return busy, total
}
