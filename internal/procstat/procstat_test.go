package procstat

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcessSeesItsOwnWork(t *testing.T) {
	before, err := Process(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Burn CPU and touch 64 MiB until the counters show it.
	buf := make([]byte, 64<<20)
	deadline := time.Now().Add(10 * time.Second)
	var after Usage
	for i := 0; ; i++ {
		for j := 0; j < len(buf); j += 4096 {
			buf[j] = byte(i)
		}
		if after, err = Process(os.Getpid()); err != nil {
			t.Fatal(err)
		}
		if after.CPU > before.CPU && after.PeakRSS >= 64<<20 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("usage did not grow: before %+v, after %+v", before, after)
		}
	}
	if after.RSS <= 0 || after.PeakRSS < after.RSS {
		t.Fatalf("RSS %d, peak %d", after.RSS, after.PeakRSS)
	}
}

func TestGroup(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	u, err := Group(cmd.Process.Pid)
	if err != nil || u.RSS <= 0 {
		t.Fatalf("group of sleep: %+v %v", u, err)
	}
	if _, err := Group(1 << 30); err == nil {
		t.Fatal("no error for a group without processes")
	}
}

func TestMachine(t *testing.T) {
	if m := Machine(); !strings.Contains(m, "cores") || !strings.Contains(m, "go1") {
		t.Fatalf("Machine() = %q", m)
	}
	if busy, total := SystemCPU(); busy <= 0 || total < busy {
		t.Fatalf("SystemCPU() = %v, %v", busy, total)
	}
	if LoadAvg() == "?" {
		t.Fatal("no load average")
	}
}
