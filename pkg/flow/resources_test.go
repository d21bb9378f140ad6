package flow

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap/zaptest"
	"google.golang.org/protobuf/proto"

	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/kafkatest"
	"github.com/samsa-dev/samsa/pkg/secret"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func testBox(t testing.TB, ids ...string) *secret.Box {
	t.Helper()
	if len(ids) == 0 {
		ids = []string{"k1"}
	}
	var keys []string
	for _, id := range ids {
		keys = append(keys, id+":"+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte(id[len(id)-1:]), 32)))
	}
	b, err := secret.New(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// snapshotOf builds a snapshot holding the given stored resources.
func snapshotOf(srcs []*samsav1.Source, flows []*samsav1.Flow) *Snapshot {
	s := &Snapshot{Sources: map[string]*samsav1.Source{}, Flows: map[string]*samsav1.Flow{}}
	for _, x := range srcs {
		s.Sources[x.Name] = x
	}
	for _, x := range flows {
		s.Flows[x.Name] = x
	}
	return s
}

// stored turns a planned write into what the store would hold.
func stored[T proto.Message](t *testing.T, p *plan[T], version int64) T {
	t.Helper()
	var out T
	out = out.ProtoReflect().New().Interface().(T)
	if err := proto.Unmarshal(p.value, out); err != nil {
		t.Fatal(err)
	}
	switch v := any(out).(type) {
	case *samsav1.Source:
		v.Version = version
	case *samsav1.Flow:
		v.Version = version
	}
	return out
}

func TestPlanSecretsAndResults(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	r := &Resources{box: testBox(t), now: func() time.Time { return now }}
	srcSnap := snapshotOf([]*samsav1.Source{{Name: "orders", Topic: "samsa.src.orders", Version: 1}}, nil)

	// Created: secrets sealed, times set, version cleared.
	in := validFlow()
	p, err := r.planFlow(srcSnap, in)
	if err != nil || p.result != Created {
		t.Fatalf("plan: %v %v", p, err)
	}
	if bytes.Contains(p.value, []byte("Bearer x")) || bytes.Contains(p.value, []byte("whsec_c2VjcmV0")) {
		t.Fatal("plain-text secret in the value to write")
	}
	cur := stored(t, p, 7)
	h := cur.Destination.GetHttp()
	if !secret.IsSealed(h.SigningSecret) || !secret.IsSealed(h.SecretHeaders["Authorization"]) {
		t.Fatalf("secrets not sealed: %v", h)
	}
	if !cur.CreateTime.AsTime().Equal(now) || !cur.UpdateTime.AsTime().Equal(now) || cur.Version != 7 {
		t.Fatalf("times/version: %v", cur)
	}
	snap := snapshotOf(srcSnap.SourceList(), []*samsav1.Flow{cur})

	// The same flow again: unchanged, although sealing is randomized.
	now = now.Add(time.Hour)
	if p, err := r.planFlow(snap, validFlow()); err != nil || p.result != Unchanged || p.value != nil {
		t.Fatalf("same flow: %v %v", p, err)
	}
	// What a GET returned, sent back: unchanged.
	if p, err := r.planFlow(snap, RedactFlow(cur)); err != nil || p.result != Unchanged {
		t.Fatalf("redacted round trip: %v %v", p, err)
	}
	// A changed secret: updated, create time kept.
	in = validFlow()
	in.Destination.GetHttp().SigningSecret = "other"
	p, err = r.planFlow(snap, in)
	if err != nil || p.result != Updated {
		t.Fatalf("changed secret: %v %v", p, err)
	}
	upd := stored(t, p, 9)
	if !upd.CreateTime.AsTime().Equal(cur.CreateTime.AsTime()) || !upd.UpdateTime.AsTime().Equal(now) {
		t.Fatalf("create time not kept: %v", upd)
	}
	// An edit of a redacted GET keeps the secrets it does not touch.
	edit := RedactFlow(cur)
	edit.Description = "edited"
	p, err = r.planFlow(snap, edit)
	if err != nil || p.result != Updated {
		t.Fatalf("edit: %v %v", p, err)
	}
	opened, err := OpenSecrets(r.box, stored(t, p, 10))
	if err != nil || opened.Destination.GetHttp().SigningSecret != "whsec_c2VjcmV0" || opened.Destination.GetHttp().SecretHeaders["Authorization"] != "Bearer x" {
		t.Fatalf("kept secrets: %v %v", opened, err)
	}
	// <redacted> for a secret that is not stored; a sealed value sent in.
	in = validFlow()
	in.Destination.GetHttp().SecretHeaders["X-New"] = secret.Redacted
	_, err = r.planFlow(snap, in)
	checkErr(t, err, `flow.destination.http.secretHeaders[X-New]: "<redacted>" keeps the stored secret, but there is none: send the secret itself`)
	in = validFlow()
	in.Destination.GetHttp().SigningSecret = h.SigningSecret
	_, err = r.planFlow(snap, in)
	checkErr(t, err, "flow.destination.http.signingSecret: looks like a sealed value: send the secret in plain text (it is encrypted before it is stored)")

	// Unknown source.
	in = validFlow()
	in.Source = "payments"
	_, err = r.planFlow(snap, in)
	checkErr(t, err, `flow.source: unknown source "payments"`)

	// Versions.
	in = validFlow()
	in.Version = 6
	if _, err := r.planFlow(snap, in); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale version: %v", err)
	}
	in.Version = 7
	if _, err := r.planFlow(snap, in); err != nil {
		t.Fatalf("current version: %v", err)
	}
	in.Name = "new-flow"
	if _, err := r.planFlow(snap, in); !errors.Is(err, ErrConflict) {
		t.Fatalf("version of a flow that does not exist: %v", err)
	}

	// Key rotation: a new primary key makes the same flow an update.
	r2 := &Resources{box: testBox(t, "k2", "k1"), now: r.now}
	if p, err := r2.planFlow(snap, validFlow()); err != nil || p.result != Updated || !bytes.Contains(p.value, []byte("enc:v1:k2:")) {
		t.Fatalf("rotation: %v %v", p, err)
	}
}

func TestPlanSourceAPIKeys(t *testing.T) {
	r := &Resources{box: testBox(t), now: time.Now}
	key := "sk_live_0123456789abcdef"
	in := &samsav1.Source{Name: "orders", Auth: &samsav1.SourceAuth{
		ApiKeys:   []*samsav1.ApiKey{{Name: "shop", Key: key}, {Name: "ci", Hash: strings.Repeat("AB", 32)}},
		Signature: &samsav1.Signature{Preset: "stripe", Secret: "whsec_stripe"},
	}}
	p, err := r.planSource(snapshotOf(nil, nil), in)
	if err != nil || p.result != Created {
		t.Fatalf("plan: %v", err)
	}
	if bytes.Contains(p.value, []byte(key)) || bytes.Contains(p.value, []byte("whsec_stripe")) {
		t.Fatal("plain-text key or secret in the value to write")
	}
	cur := stored(t, p, 3)
	keys := cur.Auth.ApiKeys
	if keys[0].Key != "" || keys[0].Hash != secret.HashKey(key) || keys[1].Hash != strings.Repeat("ab", 32) {
		t.Fatalf("keys: %v", keys)
	}
	if cur.Topic != "samsa.src.orders" || cur.Format != "envelope" || cur.Partitions != 6 || cur.Retention != "168h" {
		t.Fatalf("defaults: %v", cur)
	}
	snap := snapshotOf([]*samsav1.Source{cur}, nil)
	// Same input (plain key): unchanged. Redacted GET: unchanged.
	for _, again := range []*samsav1.Source{in, RedactSource(cur)} {
		if p, err := r.planSource(snap, again); err != nil || p.result != Unchanged {
			t.Fatalf("again: %v %v", p, err)
		}
	}
	red := RedactSource(cur)
	if red.Auth.Signature.Secret != secret.Redacted || red.Auth.ApiKeys[0].Key != "" {
		t.Fatalf("redaction: %v", red)
	}
	// A key that is not stored cannot be kept; a short key is refused; a
	// key and a hash that disagree are refused.
	for _, c := range []struct {
		k    *samsav1.ApiKey
		want string
	}{
		{&samsav1.ApiKey{Name: "new", Key: secret.Redacted}, "source.auth.apiKeys[0].key: required (no stored key of this name to keep)"},
		{&samsav1.ApiKey{Name: "new", Key: "short"}, "source.auth.apiKeys[0].key: at least 16 characters: use a long random string (e.g. openssl rand -hex 24)"},
		{&samsav1.ApiKey{Name: "new", Key: key, Hash: strings.Repeat("0", 64)}, "source.auth.apiKeys[0].hash: does not match key"},
	} {
		in := &samsav1.Source{Name: "orders", Auth: &samsav1.SourceAuth{ApiKeys: []*samsav1.ApiKey{c.k}}}
		_, err := r.planSource(snap, in)
		checkErr(t, err, c.want)
	}
}

func TestOpenSecretsWithoutBox(t *testing.T) {
	f := validFlow()
	sealed := proto.Clone(f).(*samsav1.Flow)
	if err := seal(testBox(t), flowSecrets(sealed)); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSecrets(nil, sealed); !errors.Is(err, ErrNoBox) {
		t.Fatalf("sealed without a box: %v", err)
	}
	// Plain-text secrets (insecure mode) open without a box.
	g, err := OpenSecrets(nil, f)
	if err != nil || !proto.Equal(f, g) {
		t.Fatalf("plain text: %v", err)
	}
	o, err := OpenSecrets(testBox(t), sealed)
	if err != nil || !proto.Equal(f, o) {
		t.Fatalf("open: %v", err)
	}
}

// resourcesOn starts a replica with the resource layer on topic.
func resourcesOn(t *testing.T, cfg *kafka.Config, topic string, box *secret.Box) (*Resources, *replica) {
	t.Helper()
	rep := startReplica(t, cfg, topic)
	return NewResources(rep.store, rep.writer, WithBox(box)), rep
}

func TestResourcesIntegration(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cfg := &kafka.Config{Brokers: kafkatest.Brokers(t)}
	topic := kafkatest.Topic(t)
	cl, err := cfg.NewClient(zaptest.NewLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	spec := kafka.FlowsTopicSpec()
	spec.Name = topic
	if err := cfg.EnsureTopics(ctx, cl, spec); err != nil {
		t.Fatal(err)
	}
	box := testBox(t)
	res, rep := resourcesOn(t, cfg, topic, box)

	if _, r, err := res.PutSource(ctx, &samsav1.Source{Name: "orders"}); err != nil || r != Created {
		t.Fatalf("put source: %v %v", r, err)
	}
	f, r, err := res.PutFlow(ctx, validFlow())
	if err != nil || r != Created {
		t.Fatalf("put flow: %v %v", r, err)
	}
	// An unchanged put writes nothing.
	end := rep.store.Snapshot().Offset
	f2, r, err := res.PutFlow(ctx, validFlow())
	if err != nil || r != Unchanged || f2.Version != f.Version {
		t.Fatalf("put again: %v %v", r, err)
	}
	if err := rep.store.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := rep.store.Snapshot().Offset; got != end {
		t.Fatalf("unchanged put moved the topic from %d to %d", end, got)
	}

	// Pause through the same compare-and-set; pausing twice writes once.
	p, err := res.SetPaused(ctx, f.Name, true)
	if err != nil || !p.Paused || p.Version <= f.Version {
		t.Fatalf("pause: %v %v", p, err)
	}
	p2, err := res.SetPaused(ctx, f.Name, true)
	if err != nil || p2.Version != p.Version {
		t.Fatalf("pause again: %v %v", p2, err)
	}
	// A put with the version before the pause conflicts.
	stale := validFlow()
	stale.Version = f.Version
	if _, _, err := res.PutFlow(ctx, stale); !errors.Is(err, ErrConflict) {
		t.Fatalf("stale put: %v", err)
	}

	// A source that flows read cannot be deleted.
	if err := res.DeleteSource(ctx, "orders", 0); !errors.Is(err, ErrFailedPrecondition) {
		t.Fatalf("delete used source: %v", err)
	}
	if err := res.DeleteFlow(ctx, f.Name, f.Version); !errors.Is(err, ErrConflict) {
		t.Fatalf("delete with stale version: %v", err)
	}
	if err := res.DeleteFlow(ctx, f.Name, p.Version); err != nil {
		t.Fatalf("delete flow: %v", err)
	}
	if err := res.DeleteFlow(ctx, f.Name, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("delete deleted flow: %v", err)
	}
	if err := res.DeleteSource(ctx, "orders", 0); err != nil {
		t.Fatalf("delete source: %v", err)
	}

	// No secret in plain text anywhere in the topic.
	raw := readAll(ctx, t, cfg, topic)
	for _, s := range []string{"Bearer x", "whsec_c2VjcmV0"} {
		if bytes.Contains(raw, []byte(s)) {
			t.Fatalf("secret %q in plain text in %s", s, topic)
		}
	}
}

// readAll returns every record value of topic, concatenated.
func readAll(ctx context.Context, t *testing.T, cfg *kafka.Config, topic string) []byte {
	t.Helper()
	cl, err := cfg.NewClient(nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	end, err := endOffset(ctx, cl, topic)
	if err != nil {
		t.Fatal(err)
	}
	var all []byte
	for {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(err)
		}
		last := int64(-1)
		fs.EachRecord(func(r *kgo.Record) {
			all = append(all, r.Value...)
			last = r.Offset
		})
		if last+1 >= end {
			return all
		}
	}
}
