package server

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/secret"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// TestSecretsNeverInTopicOrResponses puts a secret of every kind and checks
// the raw records of samsa.flows and every API response for it.
func TestSecretsNeverInTopicOrResponses(t *testing.T) {
	e := newEnv(t)
	in := e.start(t)
	ctx := as(editorTok)
	cert, key := certPair(t)
	src := uniqueName("orders")
	apiKey := "ingest-key-SECRET-0001-abcdef"
	secrets := []string{
		"SIGNATURE-SECRET-0001", apiKey, "SIGNING-SECRET-0002", "Bearer AUTH-HEADER-SECRET-0003",
		"SASL-PASSWORD-SECRET-0004", "DSNPASSWORDSECRET0005", key,
	}
	var responses [][]byte
	record := func(m proto.Message) {
		b, err := protojson.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		responses = append(responses, b)
	}

	ps, err := in.src.PutSource(ctx, &samsav1.PutSourceRequest{Source: &samsav1.Source{Name: src, Auth: &samsav1.SourceAuth{
		ApiKeys:   []*samsav1.ApiKey{{Name: "shop", Key: apiKey}},
		Signature: &samsav1.Signature{Preset: "github", Secret: "SIGNATURE-SECRET-0001"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	record(ps)
	if got := ps.Source.Auth.Signature.Secret; got != secret.Redacted {
		t.Fatalf("signature secret in the response: %q", got)
	}
	if ps.Source.Auth.ApiKeys[0].Hash != secret.HashKey(apiKey) {
		t.Fatalf("api key hash: %v", ps.Source.Auth.ApiKeys[0])
	}

	flows := []*samsav1.Flow{
		{Name: "http-" + src, Source: src, Destination: &samsav1.Destination{Kind: &samsav1.Destination_Http{Http: &samsav1.HttpDestination{
			Url:           "https://crm.example.com/hooks",
			SigningSecret: "SIGNING-SECRET-0002",
			SecretHeaders: map[string]string{"Authorization": "Bearer AUTH-HEADER-SECRET-0003"},
			Tls:           &samsav1.Tls{Enabled: true, CertPem: cert, KeyPem: key},
		}}}},
		{Name: "kafka-" + src, Source: src, Destination: &samsav1.Destination{Kind: &samsav1.Destination_Kafka{Kafka: &samsav1.KafkaDestination{
			Topic: "crm", Brokers: []string{"kafka.example.com:9093"},
			Sasl: &samsav1.Sasl{Mechanism: "SCRAM-SHA-512", Username: "samsa", Password: "SASL-PASSWORD-SECRET-0004"},
			Tls:  &samsav1.Tls{Enabled: true, CertPem: cert, KeyPem: key},
		}}}},
		{Name: "pg-" + src, Source: src, Destination: &samsav1.Destination{Kind: &samsav1.Destination_Postgres{Postgres: &samsav1.PostgresDestination{
			Dsn: "postgres://samsa:DSNPASSWORDSECRET0005@db.example.com:5432/shop", Table: "orders",
		}}}},
	}
	for _, f := range flows {
		pf, err := in.flows.PutFlow(ctx, &samsav1.PutFlowRequest{Flow: f})
		if err != nil {
			t.Fatalf("put %s: %v", f.Name, err)
		}
		record(pf)
		p, err := in.flows.PauseFlow(ctx, &samsav1.PauseFlowRequest{Name: f.Name})
		if err != nil {
			t.Fatal(err)
		}
		record(p)
		g, err := in.flows.GetFlow(ctx, &samsav1.GetFlowRequest{Name: f.Name})
		if err != nil {
			t.Fatal(err)
		}
		record(g)
	}
	lf, err := in.flows.ListFlows(ctx, &samsav1.ListFlowsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	record(lf)
	ls, err := in.src.ListSources(ctx, &samsav1.ListSourcesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	record(ls)
	for _, p := range []string{"/v1/flows", "/v1/sources", "/v1/sources/" + src, "/v1/flows/http-" + src} {
		_, b := in.rest(t, "GET", p, viewerTok, "")
		responses = append(responses, b)
	}

	raw := readTopic(t, e, e.flows)
	if len(raw) == 0 {
		t.Fatal("nothing read from the topic")
	}
	for _, s := range secrets {
		// The PEM key is checked by its base64 body, which is what would leak.
		needle := s
		if strings.HasPrefix(s, "-----BEGIN") {
			needle = strings.Split(s, "\n")[1]
		}
		if bytes.Contains(raw, []byte(needle)) {
			t.Errorf("secret %q in plain text in %s", needle, e.flows)
		}
		for i, r := range responses {
			if bytes.Contains(r, []byte(needle)) {
				t.Errorf("secret %q in API response %d: %s", needle, i, r)
			}
		}
	}
	if !bytes.Contains(raw, []byte("enc:v1:k1:")) {
		t.Error("no sealed value in the topic")
	}

	// The stored secrets are sealed, not lost: the data plane opens them.
	box, err := secret.New(testKey)
	if err != nil {
		t.Fatal(err)
	}
	stored, ok := in.srv.Store().Flow("http-" + src)
	if !ok {
		t.Fatal("flow not in the store")
	}
	opened, err := flow.OpenSecrets(box, stored)
	if err != nil {
		t.Fatal(err)
	}
	if h := opened.Destination.GetHttp(); h.SigningSecret != "SIGNING-SECRET-0002" || h.SecretHeaders["Authorization"] != "Bearer AUTH-HEADER-SECRET-0003" || h.Tls.KeyPem != key {
		t.Fatalf("opened secrets: %v", h)
	}
}

// readTopic returns the values of every record of topic, concatenated.
func readTopic(t *testing.T, e *env, topic string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := e.kcfg.NewClient(nil, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchIsolationLevel(kgo.ReadUncommitted()), kgo.KeepControlRecords())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	var all []byte
	next := int64(0)
	for next < end.Offset {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatal(fmt.Errorf("reading %s: %w", topic, err))
		}
		fs.EachRecord(func(r *kgo.Record) {
			all = append(all, r.Key...)
			all = append(all, r.Value...)
			next = r.Offset + 1
		})
	}
	return all
}
