package tfgraph

import (
	"encoding/hex"
	"testing"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// The GPU selection cannot run on these machines, so the bytes handed to TensorFlow are
// checked instead: against Python's own serialisation, and decoded back field by field.
func TestConfigProtoBytes(t *testing.T) {
	// tf.compat.v1.ConfigProto(intra_op_parallelism_threads=2,
	//   gpu_options=tf.compat.v1.GPUOptions(allow_growth=True, visible_device_list='0'),
	//   graph_options=tf.compat.v1.GraphOptions(rewrite_options=RewriterConfig(
	//     meta_optimizer_iterations=RewriterConfig.ONE, disable_tfg_optimizer=True))
	//   ).SerializeToString().hex()
	const fromPython = "1002320520012a0130520752056001800201"
	b, err := Options{Device: "gpu", IntraOpThreads: 2, AllowGrowth: true, VisibleDevices: "0"}.ConfigProto()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != fromPython {
		t.Fatalf("ConfigProto %s, Python serialises %s", got, fromPython)
	}

	b, err = Options{Device: "auto", VisibleDevices: "1, 0", MemoryFraction: 0.5, InterOpThreads: 3}.ConfigProto()
	if err != nil {
		t.Fatal(err)
	}
	var cfg corepb.ConfigProto
	if err := proto.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if g := cfg.GetGpuOptions(); g.GetVisibleDeviceList() != "1,0" || g.GetPerProcessGpuMemoryFraction() != 0.5 || g.GetAllowGrowth() || cfg.GetInterOpParallelismThreads() != 3 {
		t.Fatalf("decoded %v", &cfg)
	}

	b, _ = Options{Device: "cpu", AllowGrowth: true}.ConfigProto()
	cfg.Reset()
	proto.Unmarshal(b, &cfg)
	if n, ok := cfg.GetDeviceCount()["GPU"]; !ok || n != 0 || cfg.GetGpuOptions() != nil {
		t.Fatalf("cpu: %v", &cfg)
	}

	b, _ = Options{GraphOptimization: "full"}.ConfigProto()
	cfg.Reset()
	proto.Unmarshal(b, &cfg)
	if cfg.GetGraphOptions() != nil {
		t.Fatalf("full graph optimisation: %v", &cfg)
	}

	// tf.compat.v1.ConfigProto(device_count={"CPU": 2, "GPU": 0}, intra_op_parallelism_threads=1,
	//   graph_options=... ONE as above).SerializeToString(deterministic=True).hex()
	const twoCPUs = "0a070a0343505510020a070a0347505510001001520752056001800201"
	b, err = Options{Device: "cpu", CPUDevices: 2, IntraOpThreads: 1, AllowGrowth: true}.ConfigProto()
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(b); got != twoCPUs {
		t.Fatalf("2 CPU devices: ConfigProto %s, Python serialises %s", got, twoCPUs)
	}

	for _, bad := range []Options{{Device: "tpu"}, {VisibleDevices: "a"}, {MemoryFraction: 2}, {XLA: "maybe"}, {GraphOptimization: "max"}, {CPUDevices: -1}, {CPUDevices: 65}} {
		if _, err := bad.ConfigProto(); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
