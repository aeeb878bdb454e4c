package tfserving

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// metrics live in the server's own registry, so several servers (tests) never collide.
type metrics struct {
	registry       *prometheus.Registry
	requests       *prometheus.CounterVec
	errors         *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	rows           prometheus.Histogram
	requestsPerRun prometheus.Histogram
	loaded         prometheus.GaugeFunc

	// The version lifecycle (lifecycle.go): each version's state, and its load attempts.
	versionState *prometheus.GaugeVec
	loadAttempts *prometheus.CounterVec
	loadFailures *prometheus.CounterVec
	// Admission and memory (registerAdmission).
	inFlight      prometheus.GaugeFunc
	queued        []prometheus.GaugeFunc
	requestBytes  prometheus.Histogram
	reservedBytes prometheus.GaugeFunc
	refused       *prometheus.CounterVec
	memoryReturns prometheus.CounterFunc
}

func newMetrics(loadedVersions func() float64) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "emotions_serve_requests_total", Help: "Requests answered, by API endpoint and status code (HTTP status, or gRPC code name).",
		}, []string{"endpoint", "code"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "emotions_serve_request_errors_total", Help: "Requests answered with an error, by endpoint and TF Serving error code.",
		}, []string{"endpoint", "error_code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "emotions_serve_request_duration_seconds", Help: "Time from request to answer, by endpoint.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, []string{"endpoint"}),
		rows: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "emotions_serve_batch_size", Help: "Rows (instances) per session run.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256, 512},
		}),
		requestsPerRun: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "emotions_serve_batch_requests", Help: "Requests merged into one session run.",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128},
		}),
		loaded: prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "emotions_serve_loaded_versions", Help: "Model versions loaded and served.",
		}, loadedVersions),
	}
	m.registry.MustRegister(m.requests, m.errors, m.latency, m.rows, m.requestsPerRun, m.loaded,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.addLifecycleMetrics()
	return m
}

// observe records one answered request; errorCode is "" on success.
func (m *metrics) observe(endpoint, code, errorCode string, start time.Time) {
	m.requests.WithLabelValues(endpoint, code).Inc()
	if errorCode != "" {
		m.errors.WithLabelValues(endpoint, errorCode).Inc()
	}
	m.latency.WithLabelValues(endpoint).Observe(time.Since(start).Seconds())
}

func (m *metrics) observeBatch(rows, requests int) {
	m.rows.Observe(float64(rows))
	m.requestsPerRun.Observe(float64(requests))
}

func (m *metrics) addLifecycleMetrics() {
	m.versionState = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "emotions_serve_model_version_state", Help: "1 for each model version's current state (START, LOADING, AVAILABLE, END), as GetModelStatus shows it; versions unloaded or forgotten have none.",
	}, []string{"model", "version", "state"})
	m.loadAttempts = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "emotions_serve_load_attempts_total", Help: "Attempts to bring a model version into service (check, load, warm-up).",
	}, []string{"model"})
	m.loadFailures = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "emotions_serve_load_failures_total", Help: "Failed attempts to bring a model version into service, by the stage that failed: incomplete (files missing or short), load, warmup.",
	}, []string{"model", "stage"})
	m.registry.MustRegister(m.versionState, m.loadAttempts, m.loadFailures)
}

// setVersionState makes state the one series of the version's state gauge.
func (m *metrics) setVersionState(model string, version int64, state string) {
	m.forgetVersion(model, version)
	m.versionState.WithLabelValues(model, strconv.FormatInt(version, 10), state).Set(1)
}

func (m *metrics) forgetVersion(model string, version int64) {
	m.versionState.DeletePartialMatch(prometheus.Labels{"model": model, "version": strconv.FormatInt(version, 10)})
}

// registerAdmission adds the gauges of what the server holds and the count of what it refused.
func (m *metrics) registerAdmission(s *Server) {
	m.inFlight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "emotions_serve_in_flight_requests", Help: "Predict requests being read, decoded, queued or run (--max-in-flight).",
	}, func() float64 { return float64(s.admit.inFlight()) })
	queueDepth := func(stage string, depth func() int) prometheus.GaugeFunc {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "emotions_serve_queue_depth", ConstLabels: prometheus.Labels{"stage": stage},
			Help: "Waiting now: requests for --max-request-memory (stage admission), requests or row chunks of one for a batch (stage batch).",
		}, func() float64 { return float64(depth()) })
	}
	m.queued = []prometheus.GaugeFunc{queueDepth("admission", s.budget.waiting), queueDepth("batch", func() int { return s.models.batchQueued() })}
	m.requestBytes = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "emotions_serve_request_bytes", Help: "Size of predict requests: REST bodies and gRPC messages.",
		Buckets: prometheus.ExponentialBuckets(1024, 4, 11), // 1 KiB .. 1 GiB
	})
	m.reservedBytes = prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "emotions_serve_reserved_bytes", Help: "Bytes of --max-request-memory reserved by requests in progress.",
	}, func() float64 { return float64(s.budget.reserved()) })
	m.refused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "emotions_serve_admission_refused_total", Help: "Requests refused before being read, by the limit: in_flight (--max-in-flight), memory (--max-request-memory).",
	}, []string{"limit"})
	m.memoryReturns = prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "emotions_serve_memory_returns_total", Help: "Times freed memory was handed back to the system (after an unload or a burst of large requests).",
	}, func() float64 { return float64(s.memory.runs.Load()) })
	m.registry.MustRegister(m.inFlight, m.queued[0], m.queued[1], m.requestBytes, m.reservedBytes, m.refused, m.memoryReturns)
	s.budget.refusedHook = func() { m.refused.WithLabelValues("memory").Inc() }
	s.admit.refusedHook = func() { m.refused.WithLabelValues("in_flight").Inc() }
}
