package wiring

import (
	"fmt"
	"io"

	"github.com/go-logr/zapr"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"k8s.io/klog/v2"
)

// NewLogger writes level and above to out as JSON, or as console text with format "console".
func NewLogger(level, format string, out io.Writer) (*zap.Logger, error) {
	var lvl zapcore.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("log level: %w", err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	switch format {
	case "console":
		enc = zapcore.NewConsoleEncoder(encCfg)
	case "json", "":
		enc = zapcore.NewJSONEncoder(encCfg)
	default:
		return nil, fmt.Errorf("log format %q: want json or console", format)
	}
	return zap.New(zapcore.NewCore(enc, zapcore.AddSync(out), lvl)), nil
}

// RouteKlog sends client-go's own log lines (klog) through logger, so they share its format and
// destination instead of appearing as unstructured lines on stderr. klog's logger is process-wide:
// the last call wins.
func RouteKlog(logger *zap.Logger) {
	klog.SetLogger(zapr.NewLogger(logger.Named("client-go")))
}
