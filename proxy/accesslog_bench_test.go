package proxy

import (
	"io"
	"net/http/httptest"
	"net/netip"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

// BenchmarkAccessLog is one access-log line as `portero serve` writes it:
// JSON, ISO 8601 time, durations in milliseconds, to a discarding sink.
func BenchmarkAccessLog(b *testing.B) {
	enc := zap.NewProductionEncoderConfig()
	enc.EncodeTime = zapcore.ISO8601TimeEncoder
	enc.EncodeDuration = zapcore.MillisDurationEncoder
	log := zap.New(zapcore.NewCore(zapcore.NewJSONEncoder(enc), zapcore.AddSync(io.Discard), zapcore.InfoLevel))
	f := NewFront(FrontOptions{Log: log})
	r := httptest.NewRequest("GET", "http://portero.example/api/samples/1234?page=2", nil)
	sw := &statusWriter{ResponseWriter: httptest.NewRecorder(), status: 200, bytes: 64, wroteHeader: true}
	info := &requestInfo{id: "0af7651916cd43dd8448eb211c80319c", clientIP: netip.MustParseAddr("203.0.113.7"),
		route: "/api/samples", mode: "gateway", userID: "6f1c2d3e-4b5a-4c6d-8e7f-0123456789ab", upstreamDur: 412 * time.Microsecond}
	start := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		f.logAccess(r, sw, info, start)
	}
}
