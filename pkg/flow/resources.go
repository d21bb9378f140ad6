package flow

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/script"
	"github.com/samsa-dev/samsa/pkg/secret"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Result says what a put did.
type Result string

const (
	Created   Result = "created"
	Updated   Result = "updated"
	Unchanged Result = "unchanged"
)

// Defaults applied to a source before it is stored, so that every service
// reads the same values.
const (
	DefaultSourcePartitions = 6
	DefaultSourceRetention  = "168h"
)

// Provisioner creates what a resource needs before it is written, so that a
// data-plane service that sees the resource never has to create anything
// (the control service creates topics). It is called for a new resource and
// for a change of the fields that shape its topics (a source's topic,
// partitions and retention; a flow's source and partitions).
type Provisioner interface {
	ProvisionSource(ctx context.Context, src *samsav1.Source) error
	// ProvisionFlow is given the flow's source as stored.
	ProvisionFlow(ctx context.Context, f *samsav1.Flow, src *samsav1.Source) error
}

// Resources is the resource layer of the control service on top of a
// Writer: validated, versioned, create-or-replace puts with sealed secrets,
// deletes, pause and resume. Every write goes through the Writer's
// compare-and-set, so checks against the current state (versions, a flow's
// source, a source's flows) hold across control replicas.
//
// Resources returns messages as stored (secrets sealed); API responses must
// go through RedactSource and RedactFlow.
type Resources struct {
	store      *Store
	w          *Writer
	box        *secret.Box
	prov       Provisioner
	now        func() time.Time
	scriptOpts []script.Option
}

// ResourcesOpt configures Resources.
type ResourcesOpt func(*Resources)

// WithBox seals secrets with box before they are written. Default: none,
// secrets are stored in plain text (allowed only in insecure mode).
func WithBox(box *secret.Box) ResourcesOpt { return func(r *Resources) { r.box = box } }

// WithProvisioner calls p after validation and before a changed resource is
// written. Default: none.
func WithProvisioner(p Provisioner) ResourcesOpt { return func(r *Resources) { r.prov = p } }

// WithClock sets the clock of create and update times. Default time.Now.
func WithClock(now func() time.Time) ResourcesOpt { return func(r *Resources) { r.now = now } }

// WithScriptOptions compiles filters and transforms with opts during
// validation. Default: the sandbox's defaults.
func WithScriptOptions(opts ...script.Option) ResourcesOpt {
	return func(r *Resources) { r.scriptOpts = opts }
}

// NewResources returns the resource layer over store and w, which must work
// on the same topic.
func NewResources(store *Store, w *Writer, opts ...ResourcesOpt) *Resources {
	r := &Resources{store: store, w: w, now: time.Now}
	for _, o := range opts {
		o(r)
	}
	return r
}

// errUnchanged aborts a write that would not change anything.
var errUnchanged = errors.New("unchanged")

// readTimeout bounds the catch-up of a read; when samsa.flows cannot be
// reached in time, reads are served from the local view.
const readTimeout = 2 * time.Second

// ready fails fast until the store has caught up with samsa.flows: an API
// call should not hang while a replica starts.
func (r *Resources) ready() error {
	select {
	case <-r.store.Ready():
		return nil
	default:
		return ErrNotReady
	}
}

// view returns the local view, caught up with samsa.flows if possible, so
// that a read after a write on another replica sees the write.
func (r *Resources) view(ctx context.Context) (*Snapshot, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	_ = r.store.CatchUp(cctx) // best effort: a stale view beats no view
	return r.store.Snapshot(), nil
}

// Source returns the stored source.
func (r *Resources) Source(ctx context.Context, name string) (*samsav1.Source, error) {
	if err := kafka.ValidateName(name); err != nil {
		return nil, invalid("name", "%v", err)
	}
	snap, err := r.view(ctx)
	if err != nil {
		return nil, err
	}
	s, ok := snap.Sources[name]
	if !ok {
		return nil, fmt.Errorf("source %q: %w", name, ErrNotFound)
	}
	return s, nil
}

// Flow returns the stored flow.
func (r *Resources) Flow(ctx context.Context, name string) (*samsav1.Flow, error) {
	if err := kafka.ValidateName(name); err != nil {
		return nil, invalid("name", "%v", err)
	}
	snap, err := r.view(ctx)
	if err != nil {
		return nil, err
	}
	f, ok := snap.Flows[name]
	if !ok {
		return nil, fmt.Errorf("flow %q: %w", name, ErrNotFound)
	}
	return f, nil
}

// Sources returns every source in name order.
func (r *Resources) Sources(ctx context.Context) ([]*samsav1.Source, error) {
	snap, err := r.view(ctx)
	if err != nil {
		return nil, err
	}
	return snap.SourceList(), nil
}

// Flows returns the flows in name order, only those of source if it is set.
func (r *Resources) Flows(ctx context.Context, source string) ([]*samsav1.Flow, error) {
	snap, err := r.view(ctx)
	if err != nil {
		return nil, err
	}
	if source != "" {
		return snap.FlowsOf(source), nil
	}
	return snap.FlowList(), nil
}

// plan is the outcome of checking a put against one snapshot.
type plan[T proto.Message] struct {
	result Result
	cur    T      // the stored resource (zero when created)
	next   T      // what will be stored (sealed), without version
	key    string // record key
	value  []byte
}

// PutSource creates or replaces a source. in.Version 0 replaces whatever is
// stored; otherwise it must be the stored version (ErrConflict). It returns
// the source as stored, with its new version (the old one when unchanged).
func (r *Resources) PutSource(ctx context.Context, in *samsav1.Source) (*samsav1.Source, Result, error) {
	if in == nil {
		return nil, "", invalid("source", "required")
	}
	snap, err := r.writeView(ctx)
	if err != nil {
		return nil, "", err
	}
	p, err := r.planSource(snap, in)
	if err != nil {
		return nil, "", err
	}
	if p.result == Unchanged {
		return p.cur, Unchanged, nil
	}
	if r.prov != nil && (p.result == Created || p.cur.GetTopic() != p.next.GetTopic() ||
		p.cur.GetPartitions() != p.next.GetPartitions() || p.cur.GetRetention() != p.next.GetRetention()) {
		if err := r.prov.ProvisionSource(ctx, p.next); err != nil {
			return nil, "", fmt.Errorf("%w: source %s: %w", ErrUnavailable, in.GetName(), err)
		}
	}
	v, err := r.w.Write(ctx, func(snap *Snapshot) (string, []byte, error) {
		np, err := r.planSource(snap, in)
		if err != nil {
			return "", nil, err
		}
		p = np
		if p.result == Unchanged {
			return "", nil, errUnchanged
		}
		return p.key, p.value, nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		return p.cur, Unchanged, nil
	case err != nil:
		return nil, "", writeErr(err)
	}
	p.next.Version = v
	return p.next, p.result, nil
}

// PutFlow creates or replaces a flow; see PutSource. Its source must exist.
func (r *Resources) PutFlow(ctx context.Context, in *samsav1.Flow) (*samsav1.Flow, Result, error) {
	if in == nil {
		return nil, "", invalid("flow", "required")
	}
	snap, err := r.writeView(ctx)
	if err != nil {
		return nil, "", err
	}
	p, err := r.planFlow(snap, in)
	if err != nil {
		return nil, "", err
	}
	if p.result == Unchanged {
		return p.cur, Unchanged, nil
	}
	if r.prov != nil && (p.result == Created || p.cur.GetSource() != p.next.GetSource() || p.cur.GetPartitions() != p.next.GetPartitions()) {
		if err := r.prov.ProvisionFlow(ctx, p.next, snap.Sources[p.next.GetSource()]); err != nil {
			return nil, "", fmt.Errorf("%w: flow %s: %w", ErrUnavailable, in.GetName(), err)
		}
	}
	v, err := r.w.Write(ctx, func(snap *Snapshot) (string, []byte, error) {
		np, err := r.planFlow(snap, in)
		if err != nil {
			return "", nil, err
		}
		p = np
		if p.result == Unchanged {
			return "", nil, errUnchanged
		}
		return p.key, p.value, nil
	})
	switch {
	case errors.Is(err, errUnchanged):
		return p.cur, Unchanged, nil
	case err != nil:
		return nil, "", writeErr(err)
	}
	p.next.Version = v
	return p.next, p.result, nil
}

// DeleteSource deletes a source that no flow reads. version 0 deletes
// whatever is stored; otherwise it must be the stored version. The source's
// topic and its records are kept.
func (r *Resources) DeleteSource(ctx context.Context, name string, version int64) error {
	if err := r.ready(); err != nil {
		return err
	}
	if err := kafka.ValidateName(name); err != nil {
		return invalid("name", "%v", err)
	}
	_, err := r.w.Write(ctx, func(snap *Snapshot) (string, []byte, error) {
		cur, ok := snap.Sources[name]
		if !ok {
			return "", nil, fmt.Errorf("source %q: %w", name, ErrNotFound)
		}
		if err := checkVersion("source", name, cur.GetVersion(), version); err != nil {
			return "", nil, err
		}
		if flows := snap.FlowsOf(name); len(flows) > 0 {
			names := make([]string, len(flows))
			for i, f := range flows {
				names[i] = f.GetName()
			}
			return "", nil, fmt.Errorf("%w: source %s is read by flow %s: delete or move them first", ErrFailedPrecondition, name, strings.Join(names, ", "))
		}
		return Key(KindSource, name), nil, nil
	})
	return writeErr(err)
}

// DeleteFlow deletes a flow; see DeleteSource. Its delivery and dead-letter
// topics are kept.
func (r *Resources) DeleteFlow(ctx context.Context, name string, version int64) error {
	if err := r.ready(); err != nil {
		return err
	}
	if err := kafka.ValidateName(name); err != nil {
		return invalid("name", "%v", err)
	}
	_, err := r.w.Write(ctx, func(snap *Snapshot) (string, []byte, error) {
		cur, ok := snap.Flows[name]
		if !ok {
			return "", nil, fmt.Errorf("flow %q: %w", name, ErrNotFound)
		}
		if err := checkVersion("flow", name, cur.GetVersion(), version); err != nil {
			return "", nil, err
		}
		return Key(KindFlow, name), nil, nil
	})
	return writeErr(err)
}

// SetPaused pauses or resumes a flow through the same compare-and-set as
// every write, so it never undoes a concurrent change to the flow. Pausing
// a paused flow writes nothing. It returns the flow as stored.
func (r *Resources) SetPaused(ctx context.Context, name string, paused bool) (*samsav1.Flow, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	if err := kafka.ValidateName(name); err != nil {
		return nil, invalid("name", "%v", err)
	}
	var out *samsav1.Flow
	v, err := r.w.Write(ctx, func(snap *Snapshot) (string, []byte, error) {
		cur, ok := snap.Flows[name]
		if !ok {
			return "", nil, fmt.Errorf("flow %q: %w", name, ErrNotFound)
		}
		if cur.GetPaused() == paused {
			out = cur
			return "", nil, errUnchanged
		}
		next := proto.Clone(cur).(*samsav1.Flow)
		next.Paused = paused
		next.Version = 0
		next.UpdateTime = timestamppb.New(r.now())
		b, err := marshal(next)
		out = next
		return Key(KindFlow, name), b, err
	})
	switch {
	case errors.Is(err, errUnchanged):
		return out, nil
	case err != nil:
		return nil, writeErr(err)
	}
	out.Version = v
	return out, nil
}

// writeView is the view a put is planned against before it is written:
// caught up, or an error (a put must not be planned on a stale view, or a
// provisioner would run for nothing).
func (r *Resources) writeView(ctx context.Context) (*Snapshot, error) {
	if err := r.ready(); err != nil {
		return nil, err
	}
	if err := r.store.CatchUp(ctx); err != nil {
		return nil, writeErr(err)
	}
	return r.store.Snapshot(), nil
}

func (r *Resources) planSource(snap *Snapshot, in *samsav1.Source) (*plan[*samsav1.Source], error) {
	name := in.GetName()
	if err := kafka.ValidateName(name); err != nil {
		return nil, invalid("source.name", "%v", err)
	}
	cur, exists := snap.Sources[name]
	if err := checkPutVersion("source", name, cur.GetVersion(), exists, in.GetVersion()); err != nil {
		return nil, err
	}
	cand := proto.Clone(in).(*samsav1.Source)
	cand.CreateTime, cand.UpdateTime = nil, nil
	var curOpen *samsav1.Source
	if exists {
		var err error
		if curOpen, err = OpenSourceSecrets(r.box, cur); err != nil {
			return nil, err
		}
	}
	if err := resolveSecrets(sourceSecrets(cand), sourceSecrets(curOpen)); err != nil {
		return nil, err
	}
	if err := hashAPIKeys(cand, curOpen); err != nil {
		return nil, err
	}
	applySourceDefaults(cand)
	if err := ValidateSource(cand); err != nil {
		return nil, err
	}
	cand.Version = 0
	p := &plan[*samsav1.Source]{result: Created, cur: cur, next: cand, key: Key(KindSource, name)}
	if exists {
		if sameSource(cand, curOpen) && !r.needsReseal(sourceSecrets(cur)) {
			p.result = Unchanged
			return p, nil
		}
		p.result = Updated
	}
	if err := seal(r.box, sourceSecrets(cand)); err != nil {
		return nil, err
	}
	cand.CreateTime, cand.UpdateTime = r.stamps(cur.GetCreateTime())
	var err error
	p.value, err = marshal(cand)
	return p, err
}

func (r *Resources) planFlow(snap *Snapshot, in *samsav1.Flow) (*plan[*samsav1.Flow], error) {
	name := in.GetName()
	if err := kafka.ValidateName(name); err != nil {
		return nil, invalid("flow.name", "%v", err)
	}
	cur, exists := snap.Flows[name]
	if err := checkPutVersion("flow", name, cur.GetVersion(), exists, in.GetVersion()); err != nil {
		return nil, err
	}
	cand := proto.Clone(in).(*samsav1.Flow)
	cand.CreateTime, cand.UpdateTime = nil, nil
	var curOpen *samsav1.Flow
	if exists {
		var err error
		if curOpen, err = OpenSecrets(r.box, cur); err != nil {
			return nil, err
		}
	}
	if err := resolveSecrets(flowSecrets(cand), flowSecrets(curOpen)); err != nil {
		return nil, err
	}
	err := ValidateFlow(cand, r.scriptOpts...)
	if cand.GetSource() != "" && kafka.ValidateName(cand.GetSource()) == nil {
		if _, ok := snap.Sources[cand.GetSource()]; !ok {
			err = addField(err, FieldError{"flow.source", fmt.Sprintf("unknown source %q", cand.GetSource())})
		}
	}
	if err != nil {
		return nil, err
	}
	cand.Version = 0
	p := &plan[*samsav1.Flow]{result: Created, cur: cur, next: cand, key: Key(KindFlow, name)}
	if exists {
		if sameFlow(cand, curOpen) && !r.needsReseal(flowSecrets(cur)) {
			p.result = Unchanged
			return p, nil
		}
		p.result = Updated
	}
	if err := seal(r.box, flowSecrets(cand)); err != nil {
		return nil, err
	}
	cand.CreateTime, cand.UpdateTime = r.stamps(cur.GetCreateTime())
	p.value, err = marshal(cand)
	return p, err
}

// stamps returns the create and update times of a new version of a
// resource created at created (nil when it is new).
func (r *Resources) stamps(created *timestamppb.Timestamp) (*timestamppb.Timestamp, *timestamppb.Timestamp) {
	now := timestamppb.New(r.now())
	if created == nil {
		created = now
	}
	return created, now
}

// needsReseal reports whether stored secrets should be written again: in
// plain text although a key is configured now, or sealed with a key that is
// no longer the primary one (key rotation: re-applying a resource moves it
// to the new key).
func (r *Resources) needsReseal(stored []secretRef) bool {
	if r.box == nil {
		return false
	}
	want := "enc:v1:" + r.box.Primary() + ":"
	for _, s := range stored {
		if v := s.get(); v != "" && !strings.HasPrefix(v, want) {
			return true
		}
	}
	return false
}

func checkPutVersion(kind, name string, cur int64, exists bool, want int64) error {
	switch {
	case want == 0:
		return nil
	case want < 0:
		return invalid(kind+".version", "must not be negative")
	case !exists:
		return fmt.Errorf("%w: %s %s does not exist, but version %d was expected (send version 0 to create it)", ErrConflict, kind, name, want)
	}
	return checkVersion(kind, name, cur, want)
}

func checkVersion(kind, name string, cur, want int64) error {
	if want != 0 && cur != want {
		return fmt.Errorf("%w: %s %s is at version %d, not %d: read it again and retry", ErrConflict, kind, name, cur, want)
	}
	return nil
}

// writeErr passes domain errors through and marks everything else (Kafka
// trouble) as ErrUnavailable.
func writeErr(err error) error {
	switch {
	case err == nil,
		errors.Is(err, ErrInvalid), errors.Is(err, ErrNotFound), errors.Is(err, ErrConflict),
		errors.Is(err, ErrFailedPrecondition), errors.Is(err, ErrNotReady), errors.Is(err, ErrUnavailable),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

func addField(err error, fe FieldError) error {
	var ve *ValidationError
	if errors.As(err, &ve) {
		ve.Fields = append(ve.Fields, fe)
		return ve
	}
	return &ValidationError{Fields: []FieldError{fe}}
}

func marshal(m proto.Message) ([]byte, error) {
	return proto.MarshalOptions{Deterministic: true}.Marshal(m)
}

// applySourceDefaults fills in what a source left empty.
func applySourceDefaults(s *samsav1.Source) {
	own := kafka.SourceTopic(s.GetName())
	if s.Topic == "" {
		s.Topic = own
	}
	if s.Topic != own {
		if s.Format == "" {
			s.Format = "json"
		}
		return
	}
	if s.Format == "" {
		s.Format = "envelope"
	}
	if s.Partitions == 0 {
		s.Partitions = DefaultSourcePartitions
	}
	if s.Retention == "" {
		s.Retention = DefaultSourceRetention
	}
}

// hashAPIKeys replaces every API key by its hash. A key of secret.Redacted,
// or neither key nor hash, keeps the stored hash of the key of that name; a
// hash alone is taken as is (keys can be registered without sending them).
func hashAPIKeys(s, stored *samsav1.Source) error {
	storedHash := map[string]string{}
	for _, k := range stored.GetAuth().GetApiKeys() {
		storedHash[k.GetName()] = k.GetHash()
	}
	var errs []FieldError
	for i, k := range s.GetAuth().GetApiKeys() {
		f := fmt.Sprintf("source.auth.apiKeys[%d]", i)
		switch {
		case k.Key == secret.Redacted || (k.Key == "" && k.Hash == ""):
			h, ok := storedHash[k.GetName()]
			if !ok || h == "" {
				errs = append(errs, FieldError{f + ".key", "required (no stored key of this name to keep)"})
				continue
			}
			k.Key, k.Hash = "", h
		case k.Key != "":
			if len(k.Key) < MinAPIKeyLength {
				errs = append(errs, FieldError{f + ".key", fmt.Sprintf("at least %d characters: use a long random string (e.g. openssl rand -hex 24)", MinAPIKeyLength)})
				continue
			}
			h := secret.HashKey(k.Key)
			if k.Hash != "" && !strings.EqualFold(k.Hash, h) {
				errs = append(errs, FieldError{f + ".hash", "does not match key"})
				continue
			}
			k.Key, k.Hash = "", h
		default:
			k.Hash = strings.ToLower(k.Hash)
		}
	}
	if len(errs) > 0 {
		return &ValidationError{Fields: errs}
	}
	return nil
}

// sameSource reports whether two sources are equal apart from version and
// timestamps; secrets are compared in plain text.
func sameSource(a, b *samsav1.Source) bool {
	a, b = proto.Clone(a).(*samsav1.Source), proto.Clone(b).(*samsav1.Source)
	for _, s := range []*samsav1.Source{a, b} {
		s.Version, s.CreateTime, s.UpdateTime = 0, nil, nil
	}
	return proto.Equal(a, b)
}

// sameFlow is sameSource for flows.
func sameFlow(a, b *samsav1.Flow) bool {
	a, b = proto.Clone(a).(*samsav1.Flow), proto.Clone(b).(*samsav1.Flow)
	for _, f := range []*samsav1.Flow{a, b} {
		f.Version, f.CreateTime, f.UpdateTime = 0, nil, nil
	}
	return proto.Equal(a, b)
}
