package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/samsa-dev/samsa/pkg/flow"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// grpcError is the one place where domain errors become gRPC statuses (and,
// through the gateway, HTTP codes): handlers return the errors of pkg/flow
// as they are, an interceptor calls grpcError.
func grpcError(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	c := codes.Internal
	switch {
	case errors.Is(err, flow.ErrInvalid):
		c = codes.InvalidArgument
	case errors.Is(err, flow.ErrNotFound):
		c = codes.NotFound
	case errors.Is(err, flow.ErrConflict):
		c = codes.Aborted // HTTP 409
	case errors.Is(err, flow.ErrFailedPrecondition):
		c = codes.FailedPrecondition
	case errors.Is(err, flow.ErrNotReady), errors.Is(err, flow.ErrUnavailable):
		c = codes.Unavailable
	case errors.Is(err, context.Canceled):
		c = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		c = codes.DeadlineExceeded
	}
	st := status.New(c, err.Error())
	var ve *flow.ValidationError
	if c == codes.InvalidArgument && errors.As(err, &ve) {
		br := &errdetails.BadRequest{}
		for _, f := range ve.Fields {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: f.Field, Description: f.Msg})
		}
		if withDetails, err := st.WithDetails(br); err == nil {
			st = withDetails
		}
	}
	return st.Err()
}

// errorBody renders a status as the REST error body.
func errorBody(st *status.Status, requestID string) *samsav1.Error {
	body := &samsav1.Error{Error: st.Message(), Code: code.Code(st.Code()).String(), RequestId: requestID}
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				body.Fields = append(body.Fields, &samsav1.FieldViolation{Field: v.GetField(), Description: v.GetDescription()})
			}
		}
	}
	return body
}

var errorJSON = protojson.MarshalOptions{UseProtoNames: false}

// writeError writes err as the REST error body with the HTTP status of its
// gRPC code (Aborted is 409, Unauthenticated 401, PermissionDenied 403).
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	st := status.Convert(grpcError(err))
	writeStatus(w, r, runtime.HTTPStatusFromCode(st.Code()), st)
}

func writeStatus(w http.ResponseWriter, r *http.Request, httpCode int, st *status.Status) {
	b, _ := errorJSON.Marshal(errorBody(st, r.Header.Get(requestIDHeader)))
	h := w.Header()
	h.Del("Content-Length")
	h.Set("Content-Type", "application/json")
	if st.Code() == codes.Unauthenticated {
		h.Set("WWW-Authenticate", `Bearer realm="samsa"`)
	}
	w.WriteHeader(httpCode)
	_, _ = w.Write(append(b, '\n'))
}

// gatewayError is the gateway's error handler.
func gatewayError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	var he *runtime.HTTPStatusError
	if errors.As(err, &he) {
		// Routing errors (405) carry their own HTTP status.
		writeStatus(w, r, he.HTTPStatus, status.Convert(he.Err))
		return
	}
	writeError(w, r, err)
}

// routingError answers requests the gateway has no route for with the
// HTTP status the gateway chose (404, 405, 400) and the usual error body.
func routingError(_ context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	c := codes.InvalidArgument
	switch httpStatus {
	case http.StatusNotFound:
		c = codes.NotFound
	case http.StatusMethodNotAllowed:
		c = codes.Unimplemented
	}
	writeStatus(w, r, httpStatus, status.New(c, fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, http.StatusText(httpStatus))))
}
