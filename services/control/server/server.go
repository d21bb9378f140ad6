package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.uber.org/zap"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/test/bufconn"

	"github.com/samsa-dev/samsa/pkg/auth"
	"github.com/samsa-dev/samsa/pkg/flow"
	"github.com/samsa-dev/samsa/pkg/kafka"
	"github.com/samsa-dev/samsa/pkg/secret"
	"github.com/samsa-dev/samsa/pkg/stats"
	"github.com/samsa-dev/samsa/pkg/telemetry"
	samsav1 "github.com/samsa-dev/samsa/proto/samsa/v1"
)

// Server is the control service. New binds its ports; Run serves until its
// context is cancelled.
type Server struct {
	cfg  Config
	log  *zap.Logger
	kcfg *kafka.Config

	store    *flow.Store
	ownStore bool
	writer   *flow.Writer
	res      *flow.Resources
	admin    *kgo.Client
	authn    *auth.Authenticator
	health   *telemetry.Health
	topicsOK chan struct{}
	agg      *stats.Aggregator

	grpcSrv   *grpc.Server // the public gRPC port
	innerSrv  *grpc.Server // the same API, in memory, for the gateway
	healthSrv *health.Server
	gwConn    *grpc.ClientConn
	httpSrv   *http.Server

	grpcLn, httpLn net.Listener
	innerLn        *bufconn.Listener
}

type options struct {
	store    *flow.Store
	gatherer prometheus.Gatherer
	now      func() time.Time
}

// Option configures a Server.
type Option func(*options)

// WithStore uses a flow store that the caller runs (samsa dev shares one
// between all services). It must follow the topic of Config.FlowsTopic.
// Default: the server creates and runs its own.
func WithStore(st *flow.Store) Option { return func(o *options) { o.store = st } }

// WithGatherer serves /metrics from g. Default: the Registerer given to
// New, if it is also a Gatherer; otherwise /metrics is empty.
func WithGatherer(g prometheus.Gatherer) Option { return func(o *options) { o.gatherer = g } }

// WithClock sets the clock of create and update times and of flow status.
// Default time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// publicMethods need no token: probes must work without credentials.
var publicMethods = []string{"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Watch", "/grpc.health.v1.Health/List"}

// New checks the configuration, binds the gRPC and HTTP ports and wires
// the service. It refuses to run without tokens or without secret keys
// unless cfg.Insecure is set. Call Run to serve.
func New(cfg Config, log *zap.Logger, reg prometheus.Registerer, kcfg *kafka.Config, opts ...Option) (_ *Server, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = zap.NewNop()
	}
	o := options{now: time.Now}
	for _, opt := range opts {
		opt(&o)
	}
	if o.gatherer == nil {
		o.gatherer, _ = reg.(prometheus.Gatherer)
	}
	if o.gatherer == nil {
		o.gatherer = prometheus.NewRegistry()
	}
	tokens, err := cfg.Auth.LoadTokens()
	if err != nil {
		return nil, err
	}
	if tokens.Len() == 0 {
		if !cfg.Insecure {
			return nil, errors.New("control: no tokens configured (--tokens, SAMSA_TOKENS or --tokens-file with role:token entries); --insecure runs without authentication, for development only")
		}
		log.Warn("control API runs WITHOUT AUTHENTICATION (--insecure): every caller is an admin; never expose it beyond this machine",
			zap.String("grpc_addr", cfg.GRPCAddr), zap.String("http_addr", cfg.HTTPAddr))
	}
	var box *secret.Box
	if len(cfg.SecretKeys) > 0 {
		if box, err = secret.New(cfg.SecretKeys...); err != nil {
			return nil, fmt.Errorf("control: --secret-keys: %w", err)
		}
	} else {
		log.Warn("no --secret-keys (--insecure): secrets of sources and flows are stored IN PLAIN TEXT in samsa.flows; configure a key before real use")
	}
	tlsCfg, err := cfg.Auth.ServerTLS()
	if err != nil {
		return nil, err
	}

	s := &Server{cfg: cfg, log: log, kcfg: kcfg, health: telemetry.NewHealth(), topicsOK: make(chan struct{})}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	if s.grpcLn, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		return nil, fmt.Errorf("control: listen on --grpc-addr: %w", err)
	}
	if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		return nil, fmt.Errorf("control: listen on --http-addr: %w", err)
	}
	// The admin client creates topics and then waits for them to show in
	// metadata: it must not answer metadata requests from a cache that
	// predates the topics (franz-go's default keeps answers for 5s).
	if s.admin, err = kcfg.NewClient(log, kgo.MetadataMinAge(100*time.Millisecond)); err != nil {
		return nil, err
	}
	if s.agg, err = stats.NewAggregator(kcfg, log.Named("stats"), stats.Topic(cfg.statsTopic()), stats.DelivererGroup(cfg.delivererGroup())); err != nil {
		return nil, err
	}
	s.store = o.store
	if s.store == nil {
		if s.store, err = flow.NewStore(kcfg, log, flow.WithTopic(cfg.flowsTopic())); err != nil {
			return nil, err
		}
		s.ownStore = true
	}
	s.writer = flow.NewWriter(kcfg, s.store, log)
	s.res = flow.NewResources(s.store, s.writer,
		flow.WithBox(box),
		flow.WithClock(o.now),
		flow.WithProvisioner(&topics{kcfg: kcfg, cl: s.admin, dlqRetention: cfg.DLQRetention}),
	)
	s.health.Add("topics", telemetry.ChanCheck(s.topicsOK, "creating "+cfg.flowsTopic()+" and "+cfg.statsTopic()))
	s.health.Add("flows", telemetry.ChanCheck(s.store.Ready(), "catching up with "+cfg.flowsTopic()))

	host, _ := os.Hostname()
	redriveRec := stats.NewRecorder("control", stats.InstanceID(host))
	m := newMetrics(reg)
	s.authn = auth.NewAuthenticator(tokens, auth.PublicMethods(publicMethods...))
	ic := &interceptors{log: log, m: m, auth: s.authn}
	maxMsg := int(cfg.MaxBodyBytes)
	srvOpts := []grpc.ServerOption{
		grpc.ChainUnaryInterceptor(ic.unary()...),
		grpc.ChainStreamInterceptor(ic.stream()...),
		grpc.MaxRecvMsgSize(maxMsg),
	}
	pub := srvOpts
	if tlsCfg != nil {
		pub = append(pub, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	s.grpcSrv, s.innerSrv = grpc.NewServer(pub...), grpc.NewServer(srvOpts...)
	s.healthSrv = health.NewServer()
	s.healthSrv.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(s.grpcSrv, s.healthSrv)
	for _, gs := range []*grpc.Server{s.grpcSrv, s.innerSrv} {
		samsav1.RegisterSourceServiceServer(gs, &sourceService{res: s.res, m: m, ingest: o.gatherer, agg: s.agg})
		samsav1.RegisterAuthServiceServer(gs, authService{})
		samsav1.RegisterFlowServiceServer(gs, &flowService{res: s.res, m: m, now: o.now, kcl: s.admin, stats: newFlowStats(s.agg, s.admin, cfg.delivererGroup()), rec: redriveRec})
		samsav1.RegisterTransformServiceServer(gs, &transformService{res: s.res, maxEvents: cfg.MaxTestEvents, now: o.now})
	}

	s.innerLn = bufconn.Listen(1 << 20)
	s.gwConn, err = grpc.NewClient("passthrough:///control",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return s.innerLn.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)),
	)
	if err != nil {
		return nil, fmt.Errorf("control: gateway connection: %w", err)
	}
	handler, err := s.httpHandler(o.gatherer)
	if err != nil {
		return nil, err
	}
	s.httpSrv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          zap.NewStdLog(log.Named("http")),
	}
	return s, nil
}

// GRPCAddr is the bound address of the gRPC API.
func (s *Server) GRPCAddr() string { return s.grpcLn.Addr().String() }

// HTTPAddr is the bound address of the REST API.
func (s *Server) HTTPAddr() string { return s.httpLn.Addr().String() }

// Store is the flow store the server reads.
func (s *Server) Store() *flow.Store { return s.store }

// Run creates samsa.flows and samsa.stats if they are missing, follows
// samsa.flows and serves gRPC and REST until ctx is cancelled, then drains
// in-flight requests (up to Config.DrainTimeout) and returns.
func (s *Server) Run(ctx context.Context) error {
	storeCtx, stopStore := context.WithCancel(context.WithoutCancel(ctx))
	defer stopStore()
	storeDone := make(chan error, 1)
	go func() {
		if err := s.bootstrap(ctx); err != nil {
			storeDone <- err
			return
		}
		if s.ownStore {
			storeDone <- s.store.Run(storeCtx)
			return
		}
		storeDone <- nil
	}()
	aggDone := make(chan struct{})
	go func() {
		defer close(aggDone)
		select {
		case <-s.topicsOK:
			_ = s.agg.Run(storeCtx)
		case <-storeCtx.Done():
		}
	}()
	go func() {
		select {
		case <-s.store.Ready():
			s.healthSrv.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
		case <-ctx.Done():
		}
	}()

	serveErr := make(chan error, 3)
	go func() { serveErr <- s.grpcSrv.Serve(s.grpcLn) }()
	go func() { serveErr <- s.innerSrv.Serve(s.innerLn) }()
	go func() { serveErr <- s.httpSrv.Serve(s.httpLn) }()
	s.log.Info("control service listening", zap.String("grpc_addr", s.GRPCAddr()), zap.String("http_addr", s.HTTPAddr()),
		zap.String("topic", s.cfg.flowsTopic()))

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		runErr = fmt.Errorf("control: serve: %w", err)
	}
	s.shutdown()
	stopStore()
	if err := <-storeDone; err != nil && runErr == nil && ctx.Err() == nil {
		runErr = err
	}
	<-aggDone
	s.admin.Close()
	return runErr
}

// bootstrap creates samsa.flows and samsa.stats, retrying while Kafka is
// unreachable.
func (s *Server) bootstrap(ctx context.Context) error {
	flows, stats := kafka.FlowsTopicSpec(), kafka.StatsTopicSpec()
	flows.Name, stats.Name = s.cfg.flowsTopic(), s.cfg.statsTopic()
	backoff := 500 * time.Millisecond
	for {
		err := s.kcfg.EnsureTopics(ctx, s.admin, flows, stats)
		if err == nil {
			close(s.topicsOK)
			return nil
		}
		if ctx.Err() != nil {
			return nil
		}
		s.log.Warn("cannot create the control topics yet; retrying", zap.String("topic", flows.Name), zap.Duration("backoff", backoff), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// shutdown stops taking requests and drains the ones in flight.
func (s *Server) shutdown() {
	s.healthSrv.Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.DrainTimeout)
	defer cancel()
	if err := s.httpSrv.Shutdown(ctx); err != nil {
		s.log.Warn("REST requests did not drain in time", zap.Error(err))
		_ = s.httpSrv.Close()
	}
	for _, gs := range []*grpc.Server{s.grpcSrv, s.innerSrv} {
		done := make(chan struct{})
		go func() { gs.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			s.log.Warn("gRPC calls did not drain in time; stopping them")
			gs.Stop()
			<-done
		}
	}
	_ = s.gwConn.Close()
	s.writer.Close()
}

// closeAll releases what New acquired when New fails.
func (s *Server) closeAll() {
	for _, ln := range []net.Listener{s.grpcLn, s.httpLn} {
		if ln != nil {
			ln.Close()
		}
	}
	if s.gwConn != nil {
		s.gwConn.Close()
	}
	if s.admin != nil {
		s.admin.Close()
	}
	if s.ownStore && s.store != nil {
		// A store releases its client when Run returns; with a cancelled
		// context it returns at once.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_ = s.store.Run(ctx)
	}
}
