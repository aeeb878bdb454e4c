package tfgraph

import (
	"fmt"
	"strconv"
	"strings"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// Options configure the TensorFlow session every command opens. One set, shared by all
// commands (and their --device/--gpu-* flags), so training, evaluation and serving select
// devices the same way.
type Options struct {
	// Device is "auto" (GPU when TensorFlow sees one), "cpu" (hide every GPU) or "gpu"
	// (fail unless a GPU is visible).
	Device string
	// VisibleDevices lists the GPUs to use, as CUDA indices ("0", "0,1"); empty = all.
	VisibleDevices string
	// AllowGrowth makes TensorFlow allocate GPU memory as needed instead of all at once,
	// so a GPU can be shared (e.g. `serve` beside a training run).
	AllowGrowth bool
	// MemoryFraction caps the GPU memory TensorFlow may take (0 = no cap).
	MemoryFraction float64
	// IntraOpThreads and InterOpThreads size TensorFlow's thread pools (0 = TF's default:
	// the number of cores).
	IntraOpThreads, InterOpThreads int
	// XLA selects the train_step variant: "auto" (XLA on GPU, as Keras' jit_compile="auto"
	// does; plain on CPU, where XLA measured 2x slower here), "on" or "off".
	XLA string
	// GraphOptimization is how hard TensorFlow's graph optimiser (grappler) works on each
	// signature the first time it runs: "fast" (the default: one pass of its optimisers, and
	// not its MLIR (TFG) pass, whose default pipeline only infers shapes and converts the
	// graph to MLIR and back, changing nothing that runs) or "full" (TensorFlow's default:
	// two passes, TFG included). The kernels that run, and so the results, are the same
	// either way (tests compare with Python); bench-graph-opt measures the difference.
	GraphOptimization string
	// CPUDevices splits the CPU into that many logical devices (CPU:0..N-1; 0 or 1 = one),
	// as tf.config.set_logical_device_configuration does in Python, so the N-tower train
	// step (Model.SetReplicas) can be run, and tested, without N GPUs.
	CPUDevices int
}

// maxCPUDevices bounds CPUDevices: each logical device is a TensorFlow device with its own
// allocator, so a typo (1000) would cost memory rather than give parallelism.
const maxCPUDevices = 64

// DefaultOptions are what the CLI starts from.
func DefaultOptions() Options { return Options{Device: "auto", AllowGrowth: true, XLA: "auto"} }

// Validate reports the first unusable option.
func (o Options) Validate() error {
	switch o.Device {
	case "", "auto", "cpu", "gpu":
	default:
		return fmt.Errorf("device %q: want auto, cpu or gpu", o.Device)
	}
	switch o.XLA {
	case "", "auto", "on", "off":
	default:
		return fmt.Errorf("xla %q: want auto, on or off", o.XLA)
	}
	switch o.GraphOptimization {
	case "", "fast", "full":
	default:
		return fmt.Errorf("graph optimization %q: want fast or full", o.GraphOptimization)
	}
	if o.MemoryFraction < 0 || o.MemoryFraction > 1 {
		return fmt.Errorf("gpu memory fraction %g: want 0..1", o.MemoryFraction)
	}
	if o.CPUDevices < 0 || o.CPUDevices > maxCPUDevices {
		return fmt.Errorf("cpu devices %d: want 0..%d", o.CPUDevices, maxCPUDevices)
	}
	if o.IntraOpThreads < 0 || o.InterOpThreads < 0 {
		return fmt.Errorf("thread counts must be >= 0")
	}
	for _, d := range strings.Split(o.VisibleDevices, ",") {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		if _, err := strconv.Atoi(d); err != nil {
			return fmt.Errorf("visible devices %q: want GPU indices like 0,1", o.VisibleDevices)
		}
	}
	return nil
}

// ConfigProto serialises the options as the tensorflow.ConfigProto the C API takes.
func (o Options) ConfigProto() ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	cfg := &corepb.ConfigProto{
		IntraOpParallelismThreads: int32(o.IntraOpThreads),
		InterOpParallelismThreads: int32(o.InterOpThreads),
	}
	if o.GraphOptimization != "full" {
		cfg.GraphOptions = &corepb.GraphOptions{RewriteOptions: &corepb.RewriterConfig{
			MetaOptimizerIterations: corepb.RewriterConfig_ONE,
			DisableTfgOptimizer:     true,
		}}
	}
	if o.CPUDevices > 1 {
		cfg.DeviceCount = map[string]int32{"CPU": int32(o.CPUDevices)}
	}
	if o.Device == "cpu" {
		if cfg.DeviceCount == nil {
			cfg.DeviceCount = map[string]int32{}
		}
		cfg.DeviceCount["GPU"] = 0
	} else if o.AllowGrowth || o.VisibleDevices != "" || o.MemoryFraction > 0 {
		cfg.GpuOptions = &corepb.GPUOptions{
			AllowGrowth:                 o.AllowGrowth,
			VisibleDeviceList:           strings.ReplaceAll(o.VisibleDevices, " ", ""),
			PerProcessGpuMemoryFraction: o.MemoryFraction,
		}
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("serialise ConfigProto: %w", err)
	}
	return b, nil
}
