package auth

import (
	"context"
	"fmt"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// RequiredRole is the role a gRPC method (full name, "/pkg.Service/Method")
// needs, by the verb its name starts with.
func RequiredRole(fullMethod string) Role {
	name := fullMethod[strings.LastIndex(fullMethod, "/")+1:]
	for _, v := range []string{"Get", "List", "Status", "Test"} {
		if verb(name, v) {
			return RoleViewer
		}
	}
	for _, v := range []string{"Put", "Delete", "Pause", "Resume", "Redrive"} {
		if verb(name, v) {
			return RoleEditor
		}
	}
	return RoleAdmin
}

// verb reports whether name is v or starts with v followed by a capital.
func verb(name, v string) bool {
	rest, ok := strings.CutPrefix(name, v)
	return ok && (rest == "" || rest[0] >= 'A' && rest[0] <= 'Z')
}

// Principal is the authenticated caller.
type Principal struct {
	Role Role
	// Anonymous is set when authentication is off (insecure mode).
	Anonymous bool
}

type principalKey struct{}

// FromContext returns the caller a request was authenticated as.
func FromContext(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// Authenticator checks the bearer token of every gRPC call.
type Authenticator struct {
	tokens *Tokens
	public map[string]bool
}

// AuthenticatorOpt configures an Authenticator.
type AuthenticatorOpt func(*Authenticator)

// PublicMethods lets the full methods through without a token (health
// checks). Default: none.
func PublicMethods(methods ...string) AuthenticatorOpt {
	return func(a *Authenticator) {
		for _, m := range methods {
			a.public[m] = true
		}
	}
}

// NewAuthenticator authenticates against tokens. Without tokens every
// caller is an anonymous admin: the caller of NewAuthenticator must only
// allow that when told to run insecurely.
func NewAuthenticator(tokens *Tokens, opts ...AuthenticatorOpt) *Authenticator {
	a := &Authenticator{tokens: tokens, public: map[string]bool{}}
	for _, o := range opts {
		o(a)
	}
	return a
}

// Enabled reports whether tokens are required.
func (a *Authenticator) Enabled() bool { return a.tokens.Len() > 0 }

// Authorize authenticates the call's token and checks its role against
// the method's; the error is a gRPC status (Unauthenticated or
// PermissionDenied).
func (a *Authenticator) Authorize(ctx context.Context, fullMethod string) (context.Context, error) {
	if a.public[fullMethod] {
		return ctx, nil
	}
	if !a.Enabled() {
		return context.WithValue(ctx, principalKey{}, Principal{Role: RoleAdmin, Anonymous: true}), nil
	}
	role, err := a.Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if need := RequiredRole(fullMethod); role < need {
		return nil, status.Error(codes.PermissionDenied, fmt.Sprintf("role %s may not call %s (needs %s)", role, strings.TrimPrefix(fullMethod, "/"), need))
	}
	return context.WithValue(ctx, principalKey{}, Principal{Role: role}), nil
}

// Authenticate returns the role of the call's bearer token, without
// checking it against a method: the REST front checks the token before it
// reads a request body. With authentication off every caller is an admin.
// The error is a gRPC status (Unauthenticated).
func (a *Authenticator) Authenticate(ctx context.Context) (Role, error) {
	if !a.Enabled() {
		return RoleAdmin, nil
	}
	tok, err := bearer(ctx)
	if err != nil {
		return RoleNone, err
	}
	role := a.tokens.Role(tok)
	if role == RoleNone {
		return RoleNone, status.Error(codes.Unauthenticated, "invalid token")
	}
	return role, nil
}

func bearer(ctx context.Context) (string, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) == 0 {
		return "", status.Error(codes.Unauthenticated, "missing token: send Authorization: Bearer <token>")
	}
	scheme, tok, ok := strings.Cut(strings.TrimSpace(vals[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return "", status.Error(codes.Unauthenticated, "malformed Authorization header: want Bearer <token>")
	}
	return strings.TrimSpace(tok), nil
}

// UnaryInterceptor authorizes unary calls.
func (a *Authenticator) UnaryInterceptor() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.Authorize(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authorizes streaming calls.
func (a *Authenticator) StreamInterceptor() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.Authorize(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &wrappedStream{ServerStream: ss, ctx: ctx})
	}
}

type wrappedStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrappedStream) Context() context.Context { return w.ctx }
