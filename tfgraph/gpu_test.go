package tfgraph

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// What Python's TensorFlow of the same venv says about its build and the GPUs it sees: the
// reference DetectGPUSupport must agree with, on the CPU wheel (no CUDA) as on the GPU wheel.
type pythonGPUView struct {
	CUDABuild bool              `json:"cuda_build"`
	BuildInfo map[string]any    `json:"build_info"`
	Library   string            `json:"library"`
	GPUs      []json.RawMessage `json:"gpus"`
}

func pythonGPU(t *testing.T) pythonGPUView {
	t.Helper()
	out := testutil.RunPython(t, "-c", `
import json, os, tensorflow as tf
print(json.dumps({
    "cuda_build": tf.test.is_built_with_cuda(),
    "build_info": dict(tf.sysconfig.get_build_info()),
    "library": os.path.join(os.path.dirname(tf.__file__), "libtensorflow_cc.so.2"),
    "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
}))`)
	var v pythonGPUView
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("python said %q: %v", out, err)
	}
	return v
}

func TestDetectGPUSupportAgreesWithPython(t *testing.T) {
	py := pythonGPU(t)
	g := DetectGPUSupport()
	if g.CUDABuild != py.CUDABuild {
		t.Fatalf("Go sees CUDA build %v, Python's tf.test.is_built_with_cuda() %v", g.CUDABuild, py.CUDABuild)
	}
	goLib, err1 := filepath.EvalSymlinks(g.Library)
	pyLib, err2 := filepath.EvalSymlinks(py.Library)
	if err1 != nil || err2 != nil || goLib != pyLib {
		t.Fatalf("Go links %q (%v), the venv's Python has %q (%v)", g.Library, err1, py.Library, err2)
	}
	str := func(k string) string { s, _ := py.BuildInfo[k].(string); return s }
	if g.CUDAVersion != str("cuda_version") || g.CUDNNVersion != str("cudnn_version") {
		t.Fatalf("Go reads CUDA %q cuDNN %q, Python's build info %v", g.CUDAVersion, g.CUDNNVersion, py.BuildInfo)
	}
	var caps []string
	if list, ok := py.BuildInfo["cuda_compute_capabilities"].([]any); ok {
		for _, c := range list {
			caps = append(caps, c.(string))
		}
	}
	if !reflect.DeepEqual(g.ComputeCapabilities, caps) {
		t.Fatalf("compute capabilities: Go %v, Python %v", g.ComputeCapabilities, caps)
	}
	if (g.DriverCUDA == "") == (g.DriverError == "") {
		t.Fatalf("want exactly one of a driver version and a driver error: %+v", g)
	}
	if g.CUDABuild && !strings.Contains(g.Summary(), "built with CUDA "+g.CUDAVersion) ||
		!g.CUDABuild && !strings.Contains(g.Summary(), "without CUDA") {
		t.Fatalf("summary %q for %+v", g.Summary(), g)
	}
	t.Logf("%s (Python sees %d GPUs)", g.Summary(), len(py.GPUs))
}

// A model's session lists the GPUs Python's TensorFlow lists; --device gpu without one fails
// with the error that says why.
func TestLoadGPUsAgreeWithPython(t *testing.T) {
	py := pythonGPU(t)
	dir := testutil.TinyModel(t)
	m, err := Load(dir, Options{Device: "auto", AllowGrowth: true, XLA: "off"})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if len(m.GPUs()) != len(py.GPUs) {
		t.Fatalf("the session sees GPUs %v, Python %d", m.GPUs(), len(py.GPUs))
	}
	if len(py.GPUs) > 0 {
		t.Logf("GPUs: %v: the no-GPU error cannot be exercised here", m.GPUs())
		return
	}
	_, err = Load(dir, Options{Device: "gpu"})
	if err == nil {
		t.Fatal("--device gpu loaded a model on a machine without a GPU")
	}
	want := "built with CUDA"
	if !DetectGPUSupport().CUDABuild {
		want = "without CUDA support"
	}
	if !strings.Contains(err.Error(), "sees no GPU") || !strings.Contains(err.Error(), want) {
		t.Fatalf("--device gpu error does not say %q: %v", want, err)
	}
}

func TestNoGPUError(t *testing.T) {
	devices := []string{"/device:CPU:0 (CPU)"}
	cases := []struct {
		g    GPUSupport
		want []string
	}{
		{GPUSupport{Library: "/v/tensorflow/libtensorflow_cc.so.2", DriverError: "libcuda.so.1: cannot open"},
			[]string{"sees no GPU (devices: /device:CPU:0 (CPU))", "without CUDA support (/v/tensorflow/libtensorflow_cc.so.2)",
				"tensorflow[and-cuda]==2.18.1", "Dockerfile.gpu", "run on the CPU"}},
		{GPUSupport{DriverCUDA: "12.4"},
			[]string{"without CUDA support", "this machine has an NVIDIA driver (CUDA 12.4)", "link TensorFlow's CUDA build instead"}},
		{GPUSupport{CUDABuild: true, CUDAVersion: "12.5.1", DriverError: "libcuda.so.1: cannot open shared object file"},
			[]string{"built with CUDA 12.5.1", "NVIDIA driver is not installed (libcuda.so.1: cannot open shared object file)", "nvidia-smi"}},
		{GPUSupport{CUDABuild: true, CUDAVersion: "12.5.1", DriverCUDA: "12.2"},
			[]string{"NVIDIA driver (CUDA 12.2) is loaded", "built with CUDA 12.5.1", "CUDA_VISIBLE_DEVICES", "Options.VisibleDevices"}},
	}
	for _, c := range cases {
		msg := c.g.NoGPUError(devices).Error()
		for _, w := range c.want {
			if !strings.Contains(msg, w) {
				t.Errorf("%+v: error does not say %q:\n%s", c.g, w, msg)
			}
		}
	}
}

func TestReadBuildInfo(t *testing.T) {
	dir := t.TempDir()
	gpu := filepath.Join(dir, "gpu.py")
	os.WriteFile(gpu, []byte(`build_info = collections.OrderedDict([('cpu_compiler', '/usr/bin/clang'), `+
		`('cuda_compute_capabilities', ['sm_60', 'compute_90']), ('cuda_version', '12.5.1'), ('cudnn_version', '9'), `+
		`('is_cuda_build', True)])`), 0o644)
	if cuda, cudnn, caps := readBuildInfo(gpu); cuda != "12.5.1" || cudnn != "9" || !reflect.DeepEqual(caps, []string{"sm_60", "compute_90"}) {
		t.Fatalf("GPU build info: %q %q %v", cuda, cudnn, caps)
	}
	cpu := filepath.Join(dir, "cpu.py")
	os.WriteFile(cpu, []byte(`build_info = collections.OrderedDict([('is_cuda_build', False), ('is_rocm_build', False)])`), 0o644)
	if cuda, cudnn, caps := readBuildInfo(cpu); cuda != "" || cudnn != "" || caps != nil {
		t.Fatalf("CPU build info: %q %q %v", cuda, cudnn, caps)
	}
	if cuda, _, _ := readBuildInfo(filepath.Join(dir, "missing.py")); cuda != "" {
		t.Fatalf("missing build info gave %q", cuda)
	}
}

func TestCUDAVersionString(t *testing.T) {
	for v, want := range map[int]string{12040: "12.4", 11080: "11.8", 12000: "12.0", 12050: "12.5"} {
		if got := cudaVersionString(v); got != want {
			t.Errorf("%d: %q, want %q", v, got, want)
		}
	}
}
