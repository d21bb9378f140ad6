package delivery

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/samsa-dev/samsa/pkg/secret"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
	"github.com/samsa-dev/samsa/services/deliverer/destination/httpdest"
)

func TestOpenSecrets(t *testing.T) {
	box, err := secret.New("k1:" + base64.StdEncoding.EncodeToString(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	seal := func(s string) string {
		v, err := box.Seal(s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	fl := &samsav1.Flow{Name: "f", Destination: &samsav1.Destination{Kind: &samsav1.Destination_Http{Http: &samsav1.HttpDestination{
		Url: "https://example.com/hook", SigningSecret: seal("whsec_c2VjcmV0"),
		Headers:       map[string]string{"X-Plain": "p"},
		SecretHeaders: map[string]string{"Authorization": seal("Bearer t0k")},
	}}}}
	opened, err := openSecrets(box, fl)
	if err != nil {
		t.Fatal(err)
	}
	h := opened.GetDestination().GetHttp()
	if h.SigningSecret != "whsec_c2VjcmV0" || h.SecretHeaders["Authorization"] != "Bearer t0k" || h.Headers["X-Plain"] != "p" {
		t.Fatalf("opened %v", h)
	}
	if !secret.IsSealed(fl.GetDestination().GetHttp().SigningSecret) {
		t.Fatal("openSecrets modified the stored flow")
	}
	// Without a key, sealed secrets cannot be opened: the flow is held
	// with an error naming the field, not dead-lettered.
	if _, err := openSecrets(nil, fl); err == nil || !strings.Contains(err.Error(), "destination.http.signingSecret") {
		t.Fatalf("without a box: %v", err)
	}
	pg := &samsav1.Flow{Name: "p", Destination: &samsav1.Destination{Kind: &samsav1.Destination_Postgres{Postgres: &samsav1.PostgresDestination{Dsn: seal("postgres://u:pw@h/db")}}}}
	if o, err := openSecrets(box, pg); err != nil || o.GetDestination().GetPostgres().GetDsn() != "postgres://u:pw@h/db" {
		t.Fatalf("postgres dsn: %v %v", o, err)
	}
}

func TestDefaultFactory(t *testing.T) {
	d := &Deliverer{cfg: Config{InstanceID: "i"}}
	dest, typ, err := d.defaultFactory(&samsav1.Flow{Name: "f", Destination: &samsav1.Destination{Kind: &samsav1.Destination_Http{Http: &samsav1.HttpDestination{Url: "https://example.com/"}}}}, time.Second, 4)
	if err != nil || typ != "http" {
		t.Fatalf("%v %v", typ, err)
	}
	if _, ok := dest.(*httpdest.Destination); !ok {
		t.Fatalf("%T", dest)
	}
	dest.Close()
	if _, _, err := d.defaultFactory(&samsav1.Flow{Name: "f"}, time.Second, 4); !errors.Is(err, ErrNoDestination) {
		t.Fatalf("no destination: %v", err)
	}
	if _, _, err := d.defaultFactory(&samsav1.Flow{Name: "f", Destination: &samsav1.Destination{Kind: &samsav1.Destination_Http{Http: &samsav1.HttpDestination{Url: "ftp://x"}}}}, time.Second, 4); err == nil {
		t.Fatal("bad url accepted")
	}
}
