package server

import (
	"context"
	"maps"
	"sort"
	"strconv"
	"sync"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/samsa-dev/samsa/pkg/auth"
	"github.com/samsa-dev/samsa/pkg/dlq"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/stats"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// The calls of this file serve the dashboard (/ui/): one request per
// refresh, whatever the number of flows.

// maxHistoryPoints bounds history_points of ListFlowStatuses.
const maxHistoryPoints = 360

// ListFlowStatuses is GetFlowStatus for every flow. Kafka is asked in
// batches (end offsets of every topic at once, the offsets of each consumer
// group once), not per flow, so 200 flows cost a handful of requests.
func (s *flowService) ListFlowStatuses(ctx context.Context, req *samsav1.ListFlowStatusesRequest) (*samsav1.ListFlowStatusesResponse, error) {
	flows, err := s.res.Flows(ctx, req.GetSource())
	if err != nil {
		return nil, err
	}
	sources, err := s.res.Sources(ctx)
	if err != nil {
		return nil, err
	}
	srcByName := make(map[string]*samsav1.Source, len(sources))
	for _, src := range sources {
		srcByName[src.GetName()] = src
	}
	points := int(req.GetHistoryPoints())
	if points > maxHistoryPoints {
		points = maxHistoryPoints
	}
	now := s.now()
	var depths map[string]int64
	if s.stats != nil {
		s.stats.prefetchLags(ctx, flows, srcByName, now)
		depths = s.stats.dlqDepths(ctx, flows, func(ctx context.Context, flow string) (int64, error) {
			return dlq.Depth(ctx, s.kcl, flow)
		})
	}
	out := &samsav1.ListFlowStatusesResponse{Statuses: make([]*samsav1.FlowStatus, 0, len(flows))}
	for _, f := range flows {
		st := configuredStatus(f, now)
		if s.stats != nil {
			s.stats.fill(ctx, f, srcByName[f.GetSource()], st, now)
			st.DlqDepth = depths[f.GetName()]
			s.stats.addHistory(st, points)
		}
		out.Statuses = append(out.Statuses, st)
	}
	return out, nil
}

// addHistory adds up to points samples of the flow's history to st (all of
// them when points is negative).
func (fs *flowStats) addHistory(st *samsav1.FlowStatus, points int) {
	if points == 0 {
		return
	}
	h := fs.agg.Flow(st.GetName()).History
	st.History = make([]*samsav1.FlowSample, 0, min(len(h), max(points, 0)))
	for _, smp := range downsample(h, points) {
		st.History = append(st.History, &samsav1.FlowSample{
			Time:         timestamppb.New(smp.Time),
			Received:     smp.Counts.Received + smp.Counts.Expanded,
			FilteredOut:  smp.Counts.FilteredOut,
			Delivered:    smp.Counts.Delivered,
			DeadLettered: smp.Counts.DeadLettered,
		})
	}
}

// downsample picks points evenly spaced samples of h, the first and the
// newest included. Samples are cumulative, so rates between the picked ones
// stay exact. points < 0 keeps all.
func downsample(h []stats.Sample, points int) []stats.Sample {
	n := len(h)
	if points < 0 || n <= points {
		return h
	}
	if points == 1 {
		return h[n-1:]
	}
	out := make([]stats.Sample, points)
	for i := range out {
		out[i] = h[i*(n-1)/(points-1)]
	}
	return out
}

// prefetchLags reads the lag of every topic the flows read, in three
// requests, and caches it for fill.
func (fs *flowStats) prefetchLags(ctx context.Context, flows []*samsav1.Flow, sources map[string]*samsav1.Source, now time.Time) {
	byGroup := map[string][]string{}
	seen := map[string]bool{}
	add := func(group, topic string) {
		if !seen[group+"\x00"+topic] {
			seen[group+"\x00"+topic] = true
			byGroup[group] = append(byGroup[group], topic)
		}
	}
	var all []string
	for _, f := range flows {
		src := sources[f.GetSource()]
		srcTopic := src.GetTopic()
		if srcTopic == "" {
			srcTopic = kafka.SourceTopic(f.GetSource())
		}
		add(kafka.TransformerGroup, srcTopic)
		add(fs.delivererGroup, kafka.DeliveryTopic(f.GetName()))
	}
	for _, ts := range byGroup {
		all = append(all, ts...)
	}
	if len(all) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	ends, err := fs.adm.ListCommittedOffsets(ctx, all...)
	if err != nil {
		return // fill asks per topic
	}
	lags := map[string]int64{}
	for group, topics := range byGroup {
		committed, err := fs.adm.FetchOffsetsForTopics(ctx, group, topics...)
		if err != nil {
			continue
		}
		for _, topic := range topics {
			lag, ok := topicLag(ends, committed, topic)
			if ok {
				lags[group+"\x00"+topic] = lag
			}
		}
	}
	fs.mu.Lock()
	for k, lag := range lags {
		fs.lags[k] = lagEntry{lag: lag, at: now}
	}
	fs.mu.Unlock()
}

// depthEntry caches a DLQ depth for the offsets it was counted at: the
// depth changes only when one of them does.
type depthEntry struct {
	bounds string
	depth  int64
}

// dlqDepths returns the DLQ depth of every flow. An upper bound comes from
// batched offset requests; only flows whose bound is not zero and changed
// since the last call are counted exactly (dlq.Depth reads the records,
// skipping transaction markers).
func (fs *flowStats) dlqDepths(ctx context.Context, flows []*samsav1.Flow, depth func(context.Context, string) (int64, error)) map[string]int64 {
	out := make(map[string]int64, len(flows))
	if len(flows) == 0 {
		return out
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	topics := make([]string, 0, len(flows))
	groups := make([]string, 0, len(flows))
	for _, f := range flows {
		topics = append(topics, kafka.DLQTopic(f.GetName()))
		groups = append(groups, dlq.RedriveGroup(f.GetName()))
	}
	ends, err := fs.adm.ListCommittedOffsets(ctx, topics...)
	if err != nil {
		return out
	}
	starts, err := fs.adm.ListStartOffsets(ctx, topics...)
	if err != nil {
		return out
	}
	committed := fs.adm.FetchManyOffsets(ctx, groups...)
	type todo struct {
		flow, bounds string
	}
	var count []todo
	for i, f := range flows {
		topic, group := topics[i], groups[i]
		var upper int64
		bounds := ""
		for _, o := range ends[topic] {
			if o.Err != nil {
				continue
			}
			s := int64(0)
			if so, ok := starts.Lookup(topic, o.Partition); ok && so.Err == nil {
				s = so.Offset
			}
			if r, ok := committed[group]; ok && r.Err == nil {
				if c, ok := r.Fetched.Lookup(topic, o.Partition); ok && c.Err == nil && c.At > s {
					s = c.At
				}
			}
			if o.Offset > s {
				upper += o.Offset - s
			}
			bounds += strconv.Itoa(int(o.Partition)) + ":" + strconv.FormatInt(s, 10) + "-" + strconv.FormatInt(o.Offset, 10) + ","
		}
		if upper == 0 {
			out[f.GetName()] = 0
			continue
		}
		fs.mu.Lock()
		e, ok := fs.depths[f.GetName()]
		fs.mu.Unlock()
		if ok && e.bounds == bounds {
			out[f.GetName()] = e.depth
			continue
		}
		out[f.GetName()] = upper
		count = append(count, todo{f.GetName(), bounds})
	}
	// Count the changed ones, a few at a time.
	var wg sync.WaitGroup
	var mu sync.Mutex
	sem := make(chan struct{}, 8)
	for _, t := range count {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			d, err := depth(ctx, t.flow)
			if err != nil {
				return
			}
			mu.Lock()
			out[t.flow] = d
			mu.Unlock()
			fs.mu.Lock()
			fs.depths[t.flow] = depthEntry{bounds: t.bounds, depth: d}
			fs.mu.Unlock()
		}()
	}
	wg.Wait()
	return out
}

// authService answers who the caller is.
type authService struct {
	samsav1.UnimplementedAuthServiceServer
}

func (authService) GetCaller(ctx context.Context, _ *samsav1.GetCallerRequest) (*samsav1.Caller, error) {
	p, ok := auth.FromContext(ctx)
	if !ok {
		return &samsav1.Caller{Role: auth.RoleViewer.String()}, nil
	}
	return &samsav1.Caller{Role: p.Role.String(), Anonymous: p.Anonymous}, nil
}

// ListSourceStatuses reports every source with its ingest numbers, summed
// over every receiver replica.
//
// Every receiver instance publishes its per-source counts to samsa.stats
// (stats.SourceRecorder), which the aggregator sums: the numbers count
// since the source was created, across restarts and replicas, whatever
// process runs the receivers. When no receiver has published yet, the
// numbers come from the receiver's Prometheus metrics if the receiver runs
// in this process (samsa dev, before its first report) and are unknown
// otherwise. The two are never added: the in-process receiver publishes
// too, so its counts are in the reports already.
func (s *sourceService) ListSourceStatuses(ctx context.Context, _ *samsav1.ListSourceStatusesRequest) (*samsav1.ListSourceStatusesResponse, error) {
	sources, err := s.res.Sources(ctx)
	if err != nil {
		return nil, err
	}
	flows, err := s.res.Flows(ctx, "")
	if err != nil {
		return nil, err
	}
	out := &samsav1.ListSourceStatusesResponse{}
	byName := map[string]*samsav1.SourceStatus{}
	created := make(map[string]time.Time, len(sources))
	now := timestamppb.Now()
	for _, src := range sources {
		topic := src.GetTopic()
		if topic == "" {
			topic = kafka.SourceTopic(src.GetName())
		}
		st := &samsav1.SourceStatus{Name: src.GetName(), Topic: topic, Rejections: map[string]int64{}, AuthFailures: map[string]int64{}, UpdateTime: now}
		byName[src.GetName()] = st
		out.Statuses = append(out.Statuses, st)
		var at time.Time
		if ct := src.GetCreateTime(); ct != nil {
			at = ct.AsTime()
		}
		created[src.GetName()] = at
	}
	for _, f := range flows {
		if st := byName[f.GetSource()]; st != nil {
			st.Flows++
		}
	}
	sort.Slice(out.Statuses, func(i, j int) bool { return out.Statuses[i].Name < out.Statuses[j].Name })
	if s.agg != nil {
		if sums, known := s.agg.Ingest(created); known {
			out.IngestKnown = true
			for name, in := range sums {
				st := byName[name]
				st.Events, st.Requests, st.Bytes = in.Events, in.Requests, in.Bytes
				maps.Copy(st.Rejections, in.Rejections)
				maps.Copy(st.AuthFailures, in.AuthFailures)
			}
			return out, nil
		}
	}
	s.addLocalIngest(out, byName)
	return out, nil
}

// addLocalIngest fills in the ingest numbers of a receiver that runs in
// this process from its metrics, if it registers them in the registry the
// service gathers.
func (s *sourceService) addLocalIngest(out *samsav1.ListSourceStatusesResponse, byName map[string]*samsav1.SourceStatus) {
	if s.ingest == nil {
		return
	}
	mfs, err := s.ingest.Gather()
	if err != nil && len(mfs) == 0 {
		return
	}
	for _, mf := range mfs {
		switch mf.GetName() {
		case "samsa_receiver_buffered_bytes":
			out.IngestKnown = true
		case "samsa_receiver_events_total", "samsa_receiver_requests_total", "samsa_receiver_bytes_total",
			"samsa_receiver_rejections_total", "samsa_receiver_auth_failures_total":
		default:
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			st := byName[labels["source"]]
			if st == nil || m.GetCounter() == nil {
				continue
			}
			v := int64(m.GetCounter().GetValue())
			switch mf.GetName() {
			case "samsa_receiver_events_total":
				st.Events += v
			case "samsa_receiver_requests_total":
				st.Requests += v
			case "samsa_receiver_bytes_total":
				st.Bytes += v
			case "samsa_receiver_rejections_total":
				st.Rejections[labels["reason"]] += v
			case "samsa_receiver_auth_failures_total":
				st.AuthFailures[labels["reason"]] += v
			}
		}
	}
}
