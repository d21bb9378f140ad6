package bench

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"
)

// stageResult is one throughput run.
type stageResult struct {
	Name   string
	What   string // one line: what was measured
	Events int64
	Rate   float64 // events/s
	Procs  []procFigures
	Dups   int64
}

// latencyResult is one paced run.
type latencyResult struct {
	Dest     string  // "kafka" or "http"
	Fraction float64 // of the saturation rate; 0 for a fixed rate
	Rate     float64 // events/s offered
	Achieved float64 // events/s delivered
	Ack      []time.Duration
	Mid      []time.Duration // to the flow's delivery topic (read_committed)
	E2E      []time.Duration
}

// soakResult is the RSS of each service over a long run.
type soakResult struct {
	Duration time.Duration
	Rate     float64
	Events   int64
	Samples  []rssSample
}

type rssSample struct {
	At  time.Duration
	RSS map[string]int64
}

// report is everything one `make bench` measured.
type report struct {
	Started time.Time
	Took    time.Duration
	Machine string
	LoadAvg string
	Ceiling float64 // the raw loop on the events the ingest stage wrote
	// CeilingSynthetic is the raw loop on generated 300-byte records, which
	// compress far better than events (when the ingest stage did not run,
	// it is the ceiling).
	CeilingSynthetic float64
	Stages           []stageResult
	Latency          []latencyResult
	Soak             *soakResult
	services         []string
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return sorted[i]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f", float64(d)/float64(time.Millisecond)) }

func pcts(d []time.Duration) string {
	s := slices.Clone(d)
	slices.Sort(s)
	if len(s) == 0 {
		return "– / – / –"
	}
	return ms(percentile(s, 0.50)) + " / " + ms(percentile(s, 0.99)) + " / " + ms(percentile(s, 0.999))
}

func thousands(v float64) string {
	n := int64(v + 0.5)
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// markdown renders the report as the section of docs/benchmarks.md
// between the markers.
func (r *report) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Last run: %s, %s (1-minute load average before the run: %s); took %s.\n\n",
		r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Machine, r.LoadAvg, r.Took.Round(time.Second))
	if len(r.Stages) > 0 || r.Ceiling > 0 {
		b.WriteString("**Throughput** (events/s; \"of ceiling\" is the fraction of the raw franz-go consume→produce loop measured in the same run):\n\n")
		b.WriteString("| run | what | events | events/s | of ceiling |\n| --- | --- | --- | --- | --- |\n")
		if r.CeilingSynthetic > 0 && r.CeilingSynthetic != r.Ceiling {
			fmt.Fprintf(&b, "| raw loop, generated records | the same loop on generated 300-byte records (they compress far better than events) | | %s | %.0f%% |\n",
				thousands(r.CeilingSynthetic), 100*r.CeilingSynthetic/r.Ceiling)
		}
		if r.Ceiling > 0 {
			fmt.Fprintf(&b, "| ceiling | raw franz-go transactional loop, topic → topic, copying the events the ingest stage wrote (the transform stage's input) unchanged | | %s | 100%% |\n", thousands(r.Ceiling))
		}
		for _, s := range r.Stages {
			frac := ""
			if r.Ceiling > 0 {
				frac = fmt.Sprintf("%.0f%%", 100*s.Rate/r.Ceiling)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | **%s** | %s |\n", s.Name, s.What, thousands(float64(s.Events)), thousands(s.Rate), frac)
		}
		b.WriteString("\n**CPU seconds per million events and peak RSS** (MiB) of each process group during each run (`bench` is the load client, the HTTP sink and the Kafka readers):\n\n")
		names := r.services
		b.WriteString("| run |")
		for _, n := range names {
			fmt.Fprintf(&b, " %s CPU s/M |", n)
		}
		for _, n := range names {
			if n != "bench" && n != "broker" {
				fmt.Fprintf(&b, " %s RSS |", n)
			}
		}
		b.WriteString("\n|" + strings.Repeat(" --- |", 1+len(names)+len(names)-2) + "\n")
		for _, s := range r.Stages {
			if len(s.Procs) == 0 {
				continue
			}
			fmt.Fprintf(&b, "| %s |", s.Name)
			for _, p := range s.Procs {
				fmt.Fprintf(&b, " %.1f |", p.CPU.Seconds()*1e6/float64(s.Events))
			}
			for _, p := range s.Procs {
				if p.Name != "bench" && p.Name != "broker" {
					fmt.Fprintf(&b, " %.0f |", float64(p.PeakRSS)/(1<<20))
				}
			}
			b.WriteString("\n")
		}
	}
	if len(r.Latency) > 0 {
		b.WriteString("\n**Latency** in ms, p50 / p99 / p99.9, at a paced rate (each request due at a fixed time; a late request counts its wait): ingest-ack is the REST request until its `202`; transformed is until the event is readable (read_committed) in the flow's delivery topic; end to end is from the event's send time to its arrival at the destination (read_committed for Kafka):\n\n")
		b.WriteString("| destination | load | offered events/s | delivered events/s | ingest-ack | transformed | end to end |\n| --- | --- | --- | --- | --- | --- | --- |\n")
		for _, l := range r.Latency {
			load := "fixed"
			if l.Fraction > 0 {
				load = fmt.Sprintf("%.0f%% of saturation", 100*l.Fraction)
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", l.Dest, load, thousands(l.Rate), thousands(l.Achieved), pcts(l.Ack), pcts(l.Mid), pcts(l.E2E))
		}
	}
	return b.String()
}

// soakMarkdown renders the soak run for its own section.
func (r *report) soakMarkdown() string {
	var b strings.Builder
	s := r.Soak
	fmt.Fprintf(&b, "Last run: %s, %s.\n", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Machine)
	fmt.Fprintf(&b, "\n**Soak**: %s at %s events/s to the HTTP sink (%s events, all delivered); RSS in MiB:\n\n",
		s.Duration.Round(time.Second), thousands(s.Rate), thousands(float64(s.Events)))
	b.WriteString("| after |")
	for _, n := range r.services {
		if n != "bench" {
			fmt.Fprintf(&b, " %s |", n)
		}
	}
	b.WriteString("\n|" + strings.Repeat(" --- |", len(r.services)) + "\n")
	for _, smp := range s.Samples {
		fmt.Fprintf(&b, "| %s |", smp.At.Round(time.Second))
		for _, n := range r.services {
			if n != "bench" {
				fmt.Fprintf(&b, " %.0f |", float64(smp.RSS[n])/(1<<20))
			}
		}
		b.WriteString("\n")
	}

	return b.String()
}

// writeInto replaces the text between the markers <!-- name: begin -->
// and <!-- name: end --> of the file at path.
func writeInto(path, name, section string) error {
	beginMarker, endMarker := "<!-- "+name+": begin -->", "<!-- "+name+": end -->"
	doc, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i := bytes.Index(doc, []byte(beginMarker))
	j := bytes.Index(doc, []byte(endMarker))
	if i < 0 || j < i {
		return errors.New("bench: " + path + " has no " + beginMarker + " … " + endMarker + " section")
	}
	var out bytes.Buffer
	out.Write(doc[:i+len(beginMarker)])
	out.WriteString("\n")
	out.WriteString(section)
	out.Write(doc[j:])
	return os.WriteFile(path, out.Bytes(), 0o644)
}
