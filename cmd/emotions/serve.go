package main

import (
	"fmt"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/tfserving"
	"github.com/emotions-dev/emotions/train"
)

func exportCommand() *cli.Command {
	return &cli.Command{
		Name:      "export",
		Usage:     "write the model as a serving-only SavedModel version for TensorFlow Serving",
		UsageText: "emotions export --model DIR --out BASE [--version N]",
		Description: "Writes BASE/<N>/: the serving_default signature (images -> probabilities) with the trained\n" +
			"weights, no training signatures and no optimizer state; class names in assets.extra/labels.txt\n" +
			"and assets.extra/emotions.json. BASE is what `emotions serve --model-base` or TF Serving's\n" +
			"--model_base_path reads. An existing version is never overwritten.",
		Flags: []cli.Flag{
			modelFlag(true),
			&cli.StringFlag{Name: "out", Aliases: []string{"o"}, Required: true, EnvVars: []string{"EMOTIONS_MODEL_BASE"}, Usage: "model base directory (versions are its numbered subdirectories)"},
			&cli.Int64Flag{Name: "version", EnvVars: []string{"EMOTIONS_VERSION"}, Usage: "version number (default: one above the highest in BASE)"},
		},
		Action: func(c *cli.Context) error {
			if c.Int64("version") < 0 {
				return usageError("--version %d: versions are positive integers", c.Int64("version"))
			}
			dir, err := tfserving.Export(train.ResolveModel(c.String("model")), c.String("out"), c.Int64("version"))
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, dir)
			return nil
		},
	}
}

func serveCommand() *cli.Command {
	d := tfserving.DefaultConfig()
	return &cli.Command{
		Name:      "serve",
		Usage:     "serve the model with TensorFlow Serving's REST and gRPC APIs",
		UsageText: "emotions serve --model-base BASE --model-name NAME [--port 8501] [--grpc-port 8500]\n   emotions serve --model DIR --model-name NAME",
		Description: "REST (as TF Serving): GET /v1/models/NAME[/versions/N|/labels/L][/metadata],\n" +
			"POST /v1/models/NAME[/versions/N|/labels/L]:predict ({\"instances\": ...} or {\"inputs\": ...}),\n" +
			"and POST ...:classify_image with image bytes or {\"instances\": [{\"b64\": ...}]} (answers like\n" +
			"`emotions predict`). gRPC: tensorflow.serving.PredictionService and ModelService. Also /healthz\n" +
			"and /metrics (Prometheus; also at /monitoring/prometheus/metrics). The highest version in BASE is\n" +
			"served; new versions are picked up without a restart, once their files have settled, their\n" +
			"checkpoint is complete and their warm-up requests (assets.extra/tf_serving_warmup_requests, or\n" +
			"one of zeros) pass; until then the previous version serves. Binds 127.0.0.1 by default: pass --host 0.0.0.0 to listen on every interface\n" +
			"(TF Serving's default). SIGTERM/SIGINT finish requests in flight, then exit. Any SavedModel\n" +
			"(a Keras model.export(), a tf.saved_model.save) is served with all its signatures as they are;\n" +
			":classify_image needs a model with emotions.json (it answers others 400).",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "model-base", EnvVars: []string{"EMOTIONS_MODEL_BASE"}, Usage: "`BASE` directory of numbered versions (from emotions export)"},
			&cli.StringFlag{Name: "model", Aliases: []string{"m"}, EnvVars: []string{"EMOTIONS_MODEL"}, Usage: "a single model or run `DIR`, served as version 1 (instead of --model-base)"},
			&cli.StringFlag{Name: "model-name", Value: "emotions", EnvVars: []string{"EMOTIONS_MODEL_NAME"}, Usage: "the NAME in /v1/models/NAME"},
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", EnvVars: []string{"EMOTIONS_HOST"}, Usage: "address to listen on (0.0.0.0: every interface)"},
			&cli.IntFlag{Name: "port", Value: 8501, EnvVars: []string{"EMOTIONS_PORT"}, Usage: "REST port"},
			&cli.IntFlag{Name: "grpc-port", Value: 8500, EnvVars: []string{"EMOTIONS_GRPC_PORT"}, Usage: "gRPC port (-1: no gRPC)"},
			&cli.StringFlag{Name: "version-labels", EnvVars: []string{"EMOTIONS_VERSION_LABELS"}, Usage: "version labels, e.g. stable=1,canary=2 (for /labels/L)"},
			&cli.IntFlag{Name: "num-versions", Value: d.NumVersions, EnvVars: []string{"EMOTIONS_NUM_VERSIONS"}, Usage: "serve the highest N versions (TF Serving's latest policy; N>1 keeps older ones for labels)"},
			&cli.DurationFlag{Name: "poll", Value: d.Poll, EnvVars: []string{"EMOTIONS_POLL"}, Usage: "how often BASE is scanned for new versions (0: never)"},
			&cli.DurationFlag{Name: "version-settle", Value: d.VersionSettle, EnvVars: []string{"EMOTIONS_VERSION_SETTLE"}, Usage: "a new version is loaded once its files have not changed for this long (an upload in progress is waited for)"},
			&cli.DurationFlag{Name: "load-retry-interval", Value: d.LoadRetryInterval, EnvVars: []string{"EMOTIONS_LOAD_RETRY_INTERVAL"}, Usage: "wait after a version fails to load (incomplete, load or warm-up error), doubled after each failure; a change to its files also brings a new attempt"},
			&cli.IntFlag{Name: "max-load-retries", Value: d.MaxLoadRetries, EnvVars: []string{"EMOTIONS_MAX_LOAD_RETRIES"}, Usage: "retries of a failed version whose files do not change (TF Serving's --max_num_load_retries)"},
			&cli.IntFlag{Name: "max-batch-size", Value: d.Batch.MaxBatchSize, EnvVars: []string{"EMOTIONS_MAX_BATCH_SIZE"}, Usage: "instances merged into one session run at most"},
			&cli.DurationFlag{Name: "batch-timeout", Value: d.Batch.Timeout, EnvVars: []string{"EMOTIONS_BATCH_TIMEOUT"}, Usage: "how long a request waits for others to batch with (0: no waiting)"},
			&cli.IntFlag{Name: "batch-threads", Value: d.Batch.Threads, EnvVars: []string{"EMOTIONS_BATCH_THREADS"}, Usage: "session runs in flight at once"},
			&cli.IntFlag{Name: "max-queued", Value: d.Batch.MaxQueued, EnvVars: []string{"EMOTIONS_MAX_QUEUED"}, Usage: "requests waiting for a batch at most; beyond: 429 / RESOURCE_EXHAUSTED"},
			&cli.Int64Flag{Name: "max-request-bytes", Aliases: []string{"max-body-bytes"}, Value: d.MaxRequestBytes, EnvVars: []string{"EMOTIONS_MAX_REQUEST_BYTES", "EMOTIONS_MAX_BODY_BYTES"},
				Usage: "largest request body (REST) or message (gRPC), beyond: 413 / RESOURCE_EXHAUSTED; also the most tensor data a request may decode to, beyond: 400 / INVALID_ARGUMENT"},
			&cli.IntFlag{Name: "max-in-flight", Value: d.MaxInFlight, EnvVars: []string{"EMOTIONS_MAX_IN_FLIGHT"}, Usage: "requests being read, decoded, queued or run at once (REST and gRPC); beyond: 429 / RESOURCE_EXHAUSTED"},
			&cli.Int64Flag{Name: "max-request-memory", Value: d.MaxRequestMemory, EnvVars: []string{"EMOTIONS_MAX_REQUEST_MEMORY"},
				Usage: "bytes of requests in progress at once, REST bodies and gRPC messages (at least --max-request-bytes); a request waits its turn for --admission-wait, then: 429 / RESOURCE_EXHAUSTED"},
			&cli.DurationFlag{Name: "admission-wait", Value: d.AdmissionWait, EnvVars: []string{"EMOTIONS_ADMISSION_WAIT"}, Usage: "how long a request waits in FIFO order for --max-request-memory before it is refused (0: refused at once)"},
			&cli.StringFlag{Name: "classify-crop", EnvVars: []string{"EMOTIONS_CLASSIFY_CROP"}, Usage: ":classify_image's crop: face (around the detected face), center (the largest centred crop of the input's shape, no detection) or none (the whole photo resized); default: what each model's emotions.json says (face unless new-model --crop said otherwise)"},
			&cli.Int64Flag{Name: "max-image-pixels", Value: d.MaxImagePixels, EnvVars: []string{"EMOTIONS_MAX_IMAGE_PIXELS"}, Usage: ":classify_image refuses images declaring more pixels (a per-image error)"},
			&cli.DurationFlag{Name: "read-header-timeout", Value: d.ReadHeaderTimeout, EnvVars: []string{"EMOTIONS_READ_HEADER_TIMEOUT"}, Usage: "time for a REST request's headers or a gRPC connection's handshake; beyond: connection closed"},
			&cli.DurationFlag{Name: "read-timeout", Value: d.ReadTimeout, EnvVars: []string{"EMOTIONS_READ_TIMEOUT"}, Usage: "time for a whole REST request (beyond: 408) or a gRPC message to arrive"},
			&cli.DurationFlag{Name: "idle-timeout", Value: d.IdleTimeout, EnvVars: []string{"EMOTIONS_IDLE_TIMEOUT"}, Usage: "keep-alive connections with no request are closed after it"},
			&cli.DurationFlag{Name: "request-timeout", Value: d.RequestTimeout, EnvVars: []string{"EMOTIONS_REQUEST_TIMEOUT"}, Usage: "per-request deadline; beyond: 504 / DEADLINE_EXCEEDED"},
		},
		Action: func(c *cli.Context) error {
			if (c.String("model-base") == "") == (c.String("model") == "") {
				return usageError("give one of --model-base BASE (versions) or --model DIR")
			}
			if c.Int64("max-request-bytes") <= 0 || c.Int("max-in-flight") < 1 {
				return usageError("--max-request-bytes and --max-in-flight must be positive")
			}
			if c.Int64("max-request-memory") < c.Int64("max-request-bytes") {
				return usageError("--max-request-memory (%d) must be at least --max-request-bytes (%d)", c.Int64("max-request-memory"), c.Int64("max-request-bytes"))
			}
			labels, err := tfserving.ParseVersionLabels(c.String("version-labels"))
			if err != nil {
				return usageError("--version-labels: %v", err)
			}
			cfg := tfserving.DefaultConfig()
			cfg.ModelName = c.String("model-name")
			cfg.ModelBase = c.String("model-base")
			if c.String("model") != "" {
				cfg.ModelDir = train.ResolveModel(c.String("model"))
			}
			cfg.NumVersions = c.Int("num-versions")
			cfg.VersionLabels = labels
			cfg.Poll = c.Duration("poll")
			cfg.VersionSettle = c.Duration("version-settle")
			cfg.LoadRetryInterval = c.Duration("load-retry-interval")
			cfg.MaxLoadRetries = c.Int("max-load-retries")
			cfg.Batch = tfserving.BatchOptions{MaxBatchSize: c.Int("max-batch-size"), Timeout: c.Duration("batch-timeout"),
				Threads: c.Int("batch-threads"), MaxQueued: c.Int("max-queued")}
			cfg.MaxRequestBytes = c.Int64("max-request-bytes")
			cfg.MaxInFlight = c.Int("max-in-flight")
			cfg.MaxRequestMemory = c.Int64("max-request-memory")
			cfg.AdmissionWait = c.Duration("admission-wait")
			cfg.MaxImagePixels = c.Int64("max-image-pixels")
			if cfg.ClassifyCrop = c.String("classify-crop"); savedmodel.CheckCrop(cfg.ClassifyCrop) != nil {
				return usageError("--classify-crop %q: want face, center or none", cfg.ClassifyCrop)
			}
			cfg.ReadHeaderTimeout = c.Duration("read-header-timeout")
			cfg.ReadTimeout = c.Duration("read-timeout")
			cfg.IdleTimeout = c.Duration("idle-timeout")
			cfg.RequestTimeout = c.Duration("request-timeout")
			cfg.Session = sessionOptions(c)

			httpLn, err := net.Listen("tcp", net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port"))))
			if err != nil {
				return fmt.Errorf("REST port: %w", err)
			}
			var grpcLn net.Listener
			if c.Int("grpc-port") >= 0 {
				if grpcLn, err = net.Listen("tcp", net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("grpc-port")))); err != nil {
					httpLn.Close()
					return fmt.Errorf("gRPC port: %w", err)
				}
			}
			srv, err := tfserving.New(cfg)
			if err != nil {
				httpLn.Close()
				if grpcLn != nil {
					grpcLn.Close()
				}
				return err
			}
			ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
			defer stop()
			return srv.Serve(ctx, httpLn, grpcLn)
		},
	}
}
