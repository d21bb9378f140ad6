package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/samsa-dev/samsa/pkg/telemetry"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
	"github.com/samsa-dev/samsa/services/control/ui"
)

// httpHandler serves REST through the gateway, which calls the in-memory
// gRPC server: authentication, logging and error mapping are the gRPC
// interceptors, for both transports.
func (s *Server) httpHandler(g prometheus.Gatherer) (http.Handler, error) {
	gw := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			MarshalOptions: protojson.MarshalOptions{},
			// A misspelt field must fail, not be ignored.
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}),
		runtime.WithIncomingHeaderMatcher(func(k string) (string, bool) {
			if strings.EqualFold(k, requestIDHeader) {
				return requestIDKey, true
			}
			return runtime.DefaultHeaderMatcher(k)
		}),
		// The request id is the only response metadata, and the REST
		// middleware sets it already.
		runtime.WithOutgoingHeaderMatcher(func(string) (string, bool) { return "", false }),
		runtime.WithErrorHandler(gatewayError),
		runtime.WithRoutingErrorHandler(routingError),
		runtime.WithDisableHTTPMethodOverride(),
		// A form POST to a GET route is a 405, not a read.
		runtime.WithDisablePathLengthFallback(),
	)
	ctx := context.Background()
	for _, reg := range []func(context.Context, *runtime.ServeMux, *grpc.ClientConn) error{
		samsav1.RegisterSourceServiceHandler,
		samsav1.RegisterFlowServiceHandler,
		samsav1.RegisterTransformServiceHandler,
		samsav1.RegisterAuthServiceHandler,
	} {
		if err := reg(ctx, gw, s.gwConn); err != nil {
			return nil, fmt.Errorf("control: gateway: %w", err)
		}
	}

	mux := http.NewServeMux()
	telemetry.Mount(mux, g, s.health)
	mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(samsav1.OpenAPI)
	})
	mux.Handle("/v1/", s.authenticate(s.limitBody(gw)))
	mux.Handle("/ui/", ui.Handler("/ui/"))
	mux.Handle("GET /{$}", http.RedirectHandler("/ui/", http.StatusFound))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, r, http.StatusNotFound, status.New(codes.NotFound, "no such endpoint: see /openapi.json"))
	})
	return withRequestIDHeader(withAuthChallenge(mux)), nil
}

// withAuthChallenge adds WWW-Authenticate to every 401, also to those the
// gateway writes itself (errors of streaming calls).
func withAuthChallenge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&challengeWriter{ResponseWriter: w}, r)
	})
}

type challengeWriter struct{ http.ResponseWriter }

func (w *challengeWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized && w.Header().Get("WWW-Authenticate") == "" {
		w.Header().Set("WWW-Authenticate", `Bearer realm="samsa"`)
	}
	w.ResponseWriter.WriteHeader(code)
}

// Flush keeps streaming answers (the DLQ redrive) streaming.
func (w *challengeWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection.
func (w *challengeWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withRequestIDHeader gives every request an X-Request-Id (the caller's,
// if usable) and echoes it in the response; the gateway forwards it to the
// gRPC side, so logs of both carry the same id.
func withRequestIDHeader(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get(requestIDHeader)
		if !validRequestID(id) {
			id = newRequestID()
			r.Header.Set(requestIDHeader, id)
		}
		w.Header().Set(requestIDHeader, id)
		next.ServeHTTP(w, r)
	})
}

// maxBodyDepth bounds the nesting of a REST request body. Resources nest a
// few levels; sample events of a transform test carry payloads, which the
// receiver bounds at 64 levels by default. Far deeper bodies would pass
// the JSON decoder and then fail protobuf's recursion limit inside the
// server (an internal error instead of a 400).
const maxBodyDepth = 512

// checkJSON refuses a body that is not one JSON value, saying where, before
// the gateway's decoder does with less helpful messages (or accepts
// trailing garbage after the first value).
func checkJSON(b []byte) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil // no body: the gateway treats it as {}
	}
	depth, inStr, esc := 0, false, false
	for _, c := range b {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '{' || c == '[':
			if depth++; depth > maxBodyDepth {
				return fmt.Errorf("JSON nested deeper than %d levels", maxBodyDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	if json.Valid(b) {
		return nil
	}
	var v any
	var se *json.SyntaxError
	if err := json.Unmarshal(b, &v); !errors.As(err, &se) || strings.HasPrefix(se.Error(), "unexpected end") {
		return errors.New("invalid JSON: unexpected end of input")
	}
	line, col := lineCol(b, se.Offset)
	return fmt.Errorf("line %d, column %d: invalid JSON: %s", line, col, se.Error())
}

// lineCol is the 1-based line and column of the byte before offset (the
// one a json.SyntaxError points after).
func lineCol(b []byte, offset int64) (line, col int) {
	offset = min(max(offset, 1), int64(len(b)))
	line = 1 + bytes.Count(b[:offset-1], []byte("\n"))
	col = int(offset) - (bytes.LastIndexByte(b[:offset-1], '\n') + 1)
	return line, col
}

// authenticate checks the bearer token before anything reads the request:
// a caller without a valid token learns nothing about its body. The role is
// checked later, against the method the gateway routes to.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if h := r.Header.Values("Authorization"); len(h) > 0 {
			ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", h[0]))
		}
		if _, err := s.authn.Authenticate(ctx); err != nil {
			writeError(w, r, err)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// checkPathName refuses a PUT whose body names another resource than its
// path: the gateway would silently take the path's name.
func checkPathName(r *http.Request, body []byte) error {
	if r.Method != http.MethodPut {
		return nil
	}
	var kind string
	name, ok := strings.CutPrefix(r.URL.Path, "/v1/sources/")
	if ok {
		kind = "source"
	} else if name, ok = strings.CutPrefix(r.URL.Path, "/v1/flows/"); ok {
		kind = "flow"
	}
	if !ok || strings.ContainsAny(name, "/:") {
		return nil
	}
	var res struct {
		Name *string `json:"name"`
	}
	if json.Unmarshal(body, &res) != nil || res.Name == nil || *res.Name == "" || *res.Name == name {
		return nil // the gateway reports other problems
	}
	return fmt.Errorf("%s.name: %q does not match the name in the path, %q", kind, *res.Name, name)
}

// limitBody refuses bodies over Config.MaxBodyBytes with 413 before the
// gateway decodes them.
func (s *Server) limitBody(next http.Handler) http.Handler {
	limit := s.cfg.MaxBodyBytes
	tooLarge := func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, r, http.StatusRequestEntityTooLarge,
			status.New(codes.ResourceExhausted, fmt.Sprintf("request body larger than %d bytes", limit)))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			tooLarge(w, r)
			return
		}
		if r.Body != nil && r.Body != http.NoBody {
			b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
			var mbe *http.MaxBytesError
			switch {
			case errors.As(err, &mbe):
				tooLarge(w, r)
				return
			case err != nil:
				writeStatus(w, r, http.StatusBadRequest, status.New(codes.InvalidArgument, "reading the request body: "+err.Error()))
				return
			}
			if err := checkJSON(b); err != nil {
				writeStatus(w, r, http.StatusBadRequest, status.New(codes.InvalidArgument, "request body: "+err.Error()))
				return
			}
			if err := checkPathName(r, b); err != nil {
				writeStatus(w, r, http.StatusBadRequest, status.New(codes.InvalidArgument, err.Error()))
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		next.ServeHTTP(w, r)
	})
}
