package main

import (
	"context"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

func init() {
	register(&command{name: "get", summary: "show sources or flows (table, -o json, -o yaml)", run: runGet})
}

// kindArg maps the resource words people type to a kind.
func kindArg(s string) (string, bool) {
	switch strings.ToLower(s) {
	case "source", "sources", "src":
		return kindSource, true
	case "flow", "flows":
		return kindFlow, true
	}
	return "", false
}

func runGet(ctx context.Context, e *env, args []string) error {
	var f apiFlags
	var source string
	fs := newFlagSet("get", "sources|flows [NAME] [-o table|json|yaml]", e)
	f.register(fs, e, true)
	fs.StringVar(&source, "source", "", "list only the flows of this source")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if err := wantArgs(pos, 1, 2, "get sources|flows [NAME]"); err != nil {
		return err
	}
	if err := f.checkOutput(); err != nil {
		return err
	}
	kind, ok := kindArg(pos[0])
	if !ok {
		return usagef("get %q: want sources or flows", pos[0])
	}
	if len(pos) == 2 {
		if err := checkName(strings.ToLower(kind), pos[1]); err != nil {
			return err
		}
	}
	if source != "" {
		if err := checkName("--source", source); err != nil {
			return err
		}
	}
	c := f.client()
	switch {
	case kind == kindSource && len(pos) == 2:
		var s samsav1.Source
		if err := c.do(ctx, "GET", path("/v1/sources/%s", pos[1]), nil, &s); err != nil {
			return err
		}
		return printOne(e.stdout, f.output, kind, &s, func(w io.Writer) { sourceTable(w, []*samsav1.Source{&s}) })
	case kind == kindSource:
		var l samsav1.ListSourcesResponse
		if err := c.do(ctx, "GET", "/v1/sources", nil, &l); err != nil {
			return err
		}
		return printList(e.stdout, f.output, kind, &l, asMessages(l.GetSources()), func(w io.Writer) { sourceTable(w, l.GetSources()) })
	case len(pos) == 2:
		var fl samsav1.Flow
		if err := c.do(ctx, "GET", path("/v1/flows/%s", pos[1]), nil, &fl); err != nil {
			return err
		}
		return printOne(e.stdout, f.output, kind, &fl, func(w io.Writer) { flowTable(w, []*samsav1.Flow{&fl}) })
	default:
		p := "/v1/flows"
		if source != "" {
			p += "?source=" + url.QueryEscape(source)
		}
		var l samsav1.ListFlowsResponse
		if err := c.do(ctx, "GET", p, nil, &l); err != nil {
			return err
		}
		return printList(e.stdout, f.output, kind, &l, asMessages(l.GetFlows()), func(w io.Writer) { flowTable(w, l.GetFlows()) })
	}
}

func asMessages[T proto.Message](xs []T) []proto.Message {
	out := make([]proto.Message, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// printOne prints one resource: YAML that apply accepts, JSON as the API
// returns it, or a table.
func printOne(w io.Writer, output, kind string, m proto.Message, table func(io.Writer)) error {
	switch output {
	case "json":
		return encodeJSON(w, m)
	case "yaml":
		return encodeYAML(w, kind, m)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

// printList prints a list: YAML documents, one per resource, the API's list
// response as JSON, or a table.
func printList(w io.Writer, output, kind string, list proto.Message, items []proto.Message, table func(io.Writer)) error {
	switch output {
	case "json":
		return encodeJSON(w, list)
	case "yaml":
		return encodeYAML(w, kind, items...)
	}
	if len(items) == 0 {
		_, err := fmt.Fprintf(w, "No %ss.\n", strings.ToLower(kind))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	table(tw)
	return tw.Flush()
}

func sourceTable(w io.Writer, srcs []*samsav1.Source) {
	fmt.Fprintln(w, "NAME\tTOPIC\tFORMAT\tAUTH\tVERSION\tUPDATED")
	for _, s := range srcs {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", s.GetName(), s.GetTopic(), s.GetFormat(), sourceAuth(s), s.GetVersion(), age(s.GetUpdateTime()))
	}
}

func sourceAuth(s *samsav1.Source) string {
	var parts []string
	if n := len(s.GetAuth().GetApiKeys()); n > 0 {
		parts = append(parts, fmt.Sprintf("%d api key(s)", n))
	}
	if sig := s.GetAuth().GetSignature(); sig != nil {
		parts = append(parts, "signature:"+sig.GetPreset())
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func flowTable(w io.Writer, flows []*samsav1.Flow) {
	fmt.Fprintln(w, "NAME\tSOURCE\tDESTINATION\tSTATE\tVERSION\tUPDATED")
	for _, f := range flows {
		state := "active"
		if f.GetPaused() {
			state = "paused"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\n", f.GetName(), f.GetSource(), destination(f.GetDestination()), state, f.GetVersion(), age(f.GetUpdateTime()))
	}
}

func destination(d *samsav1.Destination) string {
	switch {
	case d.GetHttp() != nil:
		return d.GetHttp().GetUrl()
	case d.GetKafka() != nil:
		return "kafka:" + d.GetKafka().GetTopic()
	case d.GetPostgres() != nil:
		return "postgres:" + d.GetPostgres().GetTable()
	}
	return "-"
}

// age renders a time as how long ago it was.
func age(ts *timestamppb.Timestamp) string {
	if ts == nil {
		return "-"
	}
	d := time.Since(ts.AsTime())
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}
