package ingest

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/valyala/fasthttp"
	"google.golang.org/protobuf/proto"

	"github.com/samsa-dev/samsa/internal/procstat"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
)

// TestLoad is the load run of docs/benchmarks.md: the receiver binary
// against the real broker, driven by fasthttp clients over loopback. It
// runs only when SAMSA_LOAD=1:
//
//	SAMSA_LOAD=1 go test -run TestLoad -v -timeout 20m ./services/receiver/ingest/
//
// SAMSA_LOAD_DURATION (default 30s) is the measured time per scenario,
// SAMSA_LOAD_CONNS (default 64) the concurrent connections, and
// SAMSA_LOAD_SCENARIOS (default "ndjson,single") which scenarios run.
// SAMSA_LOAD_INPROC=1 runs the receiver inside the test process instead,
// for profiling with -cpuprofile.
func TestLoad(t *testing.T) {
	if os.Getenv("SAMSA_LOAD") == "" {
		t.Skip("load run: set SAMSA_LOAD=1")
	}
	dur := envDuration("SAMSA_LOAD_DURATION", 30*time.Second)
	conns := envInt("SAMSA_LOAD_CONNS", 64)
	brokers := kafkatest.Brokers(t)
	kcfg := &kafka.Config{Brokers: brokers, ReplicationFactor: 1}
	name := uniqueName("load")

	var (
		url    string
		rss    func() int64 // receiver resident memory
		metric func(string) float64
		pid    = os.Getpid()
	)
	if os.Getenv("SAMSA_LOAD_INPROC") != "" {
		h := newHarness(t, brokers, nil)
		h.putSource(keyedSource(name))
		url = h.url
		rss = func() int64 { return rssOf(os.Getpid()) }
		metric = func(n string) float64 { return h.metric(n, nil) }
	} else {
		url, rss, metric, pid = startReceiverBinary(t, kcfg, name)
	}

	type scenario struct {
		name      string
		ct        string
		body      []byte
		perReq    int
		eventSize int
	}
	nd := ndjsonBody(100, 300)
	single := ndjsonBody(1, 300)
	all := map[string]scenario{
		"ndjson": {"NDJSON, 100 events of 300 B per request", "application/x-ndjson", nd, 100, 300},
		"single": {"application/json, 1 event of 300 B per request", "application/json", single[:len(single)-1], 1, 300},
	}
	t.Logf("machine: %s; load average before: %s", procstat.Machine(), procstat.LoadAvg())
	var acked int64
	for _, sc := range strings.Split(envString("SAMSA_LOAD_SCENARIOS", "ndjson,single"), ",") {
		s, ok := all[sc]
		if !ok {
			t.Fatalf("unknown scenario %q", sc)
		}
		t.Run(sc, func(t *testing.T) {
			bpid := brokerPID(brokers[0])
			var cpu0, cpu1, self0, self1, b0, b1 time.Duration
			var busy0, busy1, total0, total1 time.Duration
			res := drive(t, url+"/v1/sources/"+name+"/events", s.ct, s.body, conns, 3*time.Second, dur, rss,
				func() {
					cpu0, self0, b0 = cpuOf(pid), cpuOf(os.Getpid()), cpuOf(bpid)
					busy0, total0 = procstat.SystemCPU()
				},
				func() {
					cpu1, self1, b1 = cpuOf(pid), cpuOf(os.Getpid()), cpuOf(bpid)
					busy1, total1 = procstat.SystemCPU()
				})
			evps := float64(res.ok*s.perReq) / res.elapsed.Seconds()
			t.Logf("%s: %d connections, %s", s.name, conns, res.elapsed.Round(time.Millisecond))
			t.Logf("  %.0f requests/s, %.0f events/s, %.1f MB/s of payload", float64(res.ok)/res.elapsed.Seconds(), evps, evps*float64(s.eventSize)/1e6)
			t.Logf("  latency p50 %s p99 %s max %s; errors %v", res.p50, res.p99, res.max, res.errors)
			t.Logf("  receiver CPU %.2f cores (%.1f µs per request, %.2f µs per event); whole machine busy %.0f%%",
				(cpu1-cpu0).Seconds()/res.elapsed.Seconds(), float64((cpu1-cpu0).Microseconds())/float64(res.ok),
				float64((cpu1-cpu0).Microseconds())/float64(res.ok*s.perReq), 100*float64(busy1-busy0)/float64(total1-total0))
			if pid != os.Getpid() {
				t.Logf("  load client (this test process) CPU %.2f cores", (self1-self0).Seconds()/res.elapsed.Seconds())
			}
			if bpid > 0 {
				t.Logf("  Kafka broker CPU %.2f cores", (b1-b0).Seconds()/res.elapsed.Seconds())
			}
			t.Logf("  receiver RSS MiB per second: %v", res.rss)
			t.Logf("  receiver heap in use %.1f MiB, buffered bytes now %.0f", metric("go_memstats_heap_inuse_bytes")/(1<<20), metric("samsa_receiver_buffered_bytes"))
			t.Logf("  load average after: %s", procstat.LoadAvg())
			if res.ok == 0 {
				t.Fatal("no request succeeded")
			}
			acked += int64(res.acked * s.perReq)
		})
	}
	// Every acknowledged event is in the topic (warm-up included).
	cl, err := kcfg.NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	h := &harness{t: t, cl: cl}
	if n := h.endOffsets(kafka.SourceTopic(name)); n < acked {
		t.Fatalf("%d records in the topic, fewer than the %d events acknowledged", n, acked)
	} else {
		t.Logf("topic %s holds %d records for %d acknowledged events", kafka.SourceTopic(name), n, acked)
	}
}

type loadResult struct {
	ok            int
	acked         int // 202s including the warm-up
	errors        map[int]int
	elapsed       time.Duration
	p50, p99, max time.Duration
	rss           []int64 // MiB, sampled every second
}

// drive posts body with conns concurrent keep-alive connections: warmup,
// then dur measured.
func drive(t *testing.T, url, ct string, body []byte, conns int, warmup, dur time.Duration, rss func() int64, onStart, onStop func()) loadResult {
	// fasthttp, not net/http: the client shares the machine with the
	// receiver and the broker, and per request it needs a fraction of
	// net/http's CPU (which is what a client on another machine would
	// leave to the receiver).
	host := strings.TrimPrefix(url, "http://")
	host = host[:strings.IndexByte(host, '/')]
	client := &fasthttp.HostClient{Addr: host, MaxConns: conns, ReadTimeout: 30 * time.Second,
		WriteTimeout: 30 * time.Second, MaxIdleConnDuration: time.Minute}
	defer client.CloseIdleConnections()
	var (
		measuring atomic.Bool
		stop      atomic.Bool
		mu        sync.Mutex
		lat       []time.Duration
		errs      = map[int]int{}
		ok        int
		acked     atomic.Int64
		wg        sync.WaitGroup
	)
	for c := 0; c < conns; c++ {
		wg.Go(func() {
			local := make([]time.Duration, 0, 1<<16)
			localOK := 0
			localErr := map[int]int{}
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			defer fasthttp.ReleaseRequest(req)
			defer fasthttp.ReleaseResponse(resp)
			req.SetRequestURI(url)
			req.Header.SetMethod(http.MethodPost)
			req.Header.SetContentType(ct)
			req.Header.Set("Authorization", "Bearer "+apiKey)
			req.SetBodyRaw(body)
			for !stop.Load() {
				start := time.Now()
				code := -1
				if err := client.Do(req, resp); err == nil {
					code = resp.StatusCode()
				}
				if code == http.StatusAccepted {
					acked.Add(1)
				}
				if !measuring.Load() {
					continue
				}
				if code == http.StatusAccepted {
					localOK++
					local = append(local, time.Since(start))
				} else {
					localErr[code]++
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			ok += localOK
			for k, v := range localErr {
				errs[k] += v
			}
			mu.Unlock()
		})
	}
	time.Sleep(warmup) // a fixed warm-up period, not a wait for a condition
	onStart()
	measuring.Store(true)
	start := time.Now()
	var samples []int64
	for time.Since(start) < dur {
		time.Sleep(time.Second)
		samples = append(samples, rss()>>20)
	}
	measuring.Store(false)
	elapsed := time.Since(start)
	onStop()
	stop.Store(true)
	wg.Wait()
	slices.Sort(lat)
	r := loadResult{ok: ok, acked: int(acked.Load()), errors: errs, elapsed: elapsed, rss: samples}
	if len(lat) > 0 {
		r.p50, r.p99, r.max = lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
	}
	return r
}

// startReceiverBinary builds and starts services/receiver against kcfg with
// one source (API key auth) and returns its URL, an RSS probe and a metric
// reader.
func startReceiverBinary(t *testing.T, kcfg *kafka.Config, source string) (string, func() int64, func(string) float64, int) {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "receiver")
	build := exec.Command("go", "build", "-o", bin, "github.com/samsa-dev/samsa/services/receiver")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build receiver: %v\n%s", err, out)
	}
	// The binary reads samsa.flows: put the source there.
	cl, err := kcfg.NewClient(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kcfg.EnsureTopics(ctx, cl, kafka.FlowsTopicSpec()); err != nil {
		t.Fatal(err)
	}
	v, _ := proto.Marshal(keyedSource(source))
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: kafka.FlowsTopic, Key: []byte("source/" + source), Value: v}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := exec.Command(bin, "--kafka-brokers", strings.Join(kcfg.Brokers, ","), "--kafka-replication-factor", "1",
		"--http-addr", addr, "--grpc-addr", "", "--secret-keys", testSecretKey, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(runtime.NumCPU()))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Wait()
	})
	url := "http://" + addr
	waitFor(t, time.Minute, "the receiver binary to be ready", func() bool {
		resp, err := http.Get(url + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	metric := func(name string) float64 {
		resp, err := http.Get(url + "/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			if len(f) == 2 && f[0] == name {
				v, _ := strconv.ParseFloat(f[1], 64)
				return v
			}
		}
		return -1
	}
	return url, func() int64 { return rssOf(cmd.Process.Pid) }, metric, cmd.Process.Pid
}

// brokerPID finds the process of the Kafka broker listening on addr (one
// started by scripts/kafka.sh), or returns 0.
func brokerPID(addr string) int {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
		if len(args) < 2 || args[len(args)-2] != "kafka.Kafka" {
			continue
		}
		props, _ := os.ReadFile(args[len(args)-1])
		if strings.Contains(string(props), "PLAINTEXT://"+addr+",") || strings.Contains(string(props), "PLAINTEXT://"+addr+"\n") {
			return pid
		}
	}
	return 0
}

func envString(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envInt(k string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

func envDuration(k string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(k)); err == nil && v > 0 {
		return v
	}
	return def
}

// cpuOf is the CPU time process pid used so far; 0 when pid is 0.
func cpuOf(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	u, _ := procstat.Process(pid)
	return u.CPU
}

// rssOf is the resident set of process pid in bytes, -1 if unknown.
func rssOf(pid int) int64 {
	u, err := procstat.Process(pid)
	if err != nil {
		return -1
	}
	return u.RSS
}
