package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/emotions-dev/emotions/classify"
	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/train"
)

// deviceFlags are global: every command opens its session with the same device options.
func deviceFlags() []cli.Flag {
	d := tfgraph.DefaultOptions()
	return []cli.Flag{
		&cli.StringFlag{Name: "device", Value: d.Device, EnvVars: []string{"EMOTIONS_DEVICE"}, Usage: "auto (a GPU if TensorFlow sees one), cpu, or gpu (fail without one)"},
		&cli.StringFlag{Name: "gpu-devices", EnvVars: []string{"EMOTIONS_GPU_DEVICES"}, Usage: "GPUs to use, as CUDA indices (e.g. 0 or 0,1); default all"},
		&cli.BoolFlag{Name: "gpu-allow-growth", Value: d.AllowGrowth, EnvVars: []string{"EMOTIONS_GPU_ALLOW_GROWTH"}, Usage: "take GPU memory as needed rather than all at start (lets serve share a GPU)"},
		&cli.Float64Flag{Name: "gpu-memory-fraction", EnvVars: []string{"EMOTIONS_GPU_MEMORY_FRACTION"}, Usage: "cap on the share of GPU memory TensorFlow takes (0 = no cap)"},
		&cli.IntFlag{Name: "cpu-devices", EnvVars: []string{"EMOTIONS_CPU_DEVICES"}, Usage: "split the CPU into `N` logical devices (so train --replicas N runs N towers without GPUs; 0 = one)"},
		&cli.IntFlag{Name: "threads", EnvVars: []string{"EMOTIONS_THREADS"}, Usage: "TensorFlow intra-op threads (0 = all cores)"},
		&cli.IntFlag{Name: "inter-op-threads", EnvVars: []string{"EMOTIONS_INTER_OP_THREADS"}, Usage: "TensorFlow inter-op threads (0 = TensorFlow's default)"},
		&cli.StringFlag{Name: "xla", Value: d.XLA, EnvVars: []string{"EMOTIONS_XLA"}, Usage: "XLA-compiled train step: auto (on GPU only, like Keras), on, off"},
		&cli.StringFlag{Name: "graph-optimization", Value: "fast", EnvVars: []string{"EMOTIONS_GRAPH_OPTIMIZATION"}, Usage: "TensorFlow's graph optimiser on each signature's first run: fast (one pass) or full (TensorFlow's default, two passes)"},
	}
}

func sessionOptions(c *cli.Context) tfgraph.Options {
	return tfgraph.Options{
		Device:            c.String("device"),
		VisibleDevices:    c.String("gpu-devices"),
		AllowGrowth:       c.Bool("gpu-allow-growth"),
		MemoryFraction:    c.Float64("gpu-memory-fraction"),
		IntraOpThreads:    c.Int("threads"),
		InterOpThreads:    c.Int("inter-op-threads"),
		XLA:               c.String("xla"),
		GraphOptimization: c.String("graph-optimization"),
		CPUDevices:        c.Int("cpu-devices"),
	}
}

// openModel loads --model (or PATH) with the global device options.
func openModel(c *cli.Context, path string) (*tfgraph.Model, error) {
	if path == "" {
		return nil, cli.Exit("no model: pass --model DIR (a model from `emotions new-model` or a run directory)", 2)
	}
	m, err := tfgraph.Load(train.ResolveModel(path), sessionOptions(c))
	if err != nil {
		return nil, err
	}
	return m, nil
}

func modelFlag(required bool) *cli.StringFlag {
	return &cli.StringFlag{Name: "model", Aliases: []string{"m"}, Required: required, EnvVars: []string{"EMOTIONS_MODEL"},
		Usage: "model `DIR` (from emotions new-model), or a run directory (its best/ model is used)"}
}

func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), 2)
}

// openClassifier opens --model and the classification pipeline configured from its metadata
// (and the preprocessing flags).
func openClassifier(c *cli.Context) (*tfgraph.Model, *classify.Classifier, error) {
	m, err := openModel(c, c.String("model"))
	if err != nil {
		return nil, nil, err
	}
	if m.Generic() {
		m.Close()
		return nil, nil, usageError("%s takes named arrays (inputs %s), not images: give --data FILE.npz", m.Dir, savedmodel.Names(m.Inputs()))
	}
	cl, err := classify.New(m, preprocessOptions(c, m.Meta))
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	cl.BatchSize = c.Int("batch-size")
	return m, cl, nil
}

// printJSON writes v to stdout as indented JSON: the --json output of every command.
func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
