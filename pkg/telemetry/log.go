// Package telemetry is how every Samsa service logs, exposes metrics and
// reports health: zap JSON logs with static messages and fields, a
// Prometheus registry, and /metrics, /healthz and /readyz handlers.
package telemetry

import (
	"flag"
	"fmt"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// LogConfig selects the log level and format.
type LogConfig struct {
	// Level is debug, info, warn or error. Default info.
	Level string
	// Format is json (default) or console.
	Format string
}

// RegisterFlags binds --log-level and --log-format.
func (c *LogConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Level, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.Format, "log-format", "json", "log format: json or console")
}

// NewLogger builds the service's logger, named after the service.
func NewLogger(c LogConfig, service string) (*zap.Logger, error) {
	lvl, err := zapcore.ParseLevel(orDefault(c.Level, "info"))
	if err != nil {
		return nil, fmt.Errorf("log level %q: want debug, info, warn or error", c.Level)
	}
	var zc zap.Config
	switch orDefault(c.Format, "json") {
	case "json":
		zc = zap.NewProductionConfig()
		zc.EncoderConfig.TimeKey = "time"
		zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	case "console":
		zc = zap.NewDevelopmentConfig()
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
		zc.DisableStacktrace = true
	default:
		return nil, fmt.Errorf("log format %q: want json or console", c.Format)
	}
	zc.Level = zap.NewAtomicLevelAt(lvl)
	zc.Sampling = nil
	log, err := zc.Build()
	if err != nil {
		return nil, fmt.Errorf("build logger: %w", err)
	}
	return log.With(zap.String("service", service)), nil
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
