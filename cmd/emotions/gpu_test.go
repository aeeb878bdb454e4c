package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// `info` reports what the linked TensorFlow and the driver support and which GPUs the session
// sees; --device gpu without a GPU fails saying why.
func TestInfoGPU(t *testing.T) {
	model := testutil.TinyModel(t)
	out, _, code := emotions(t, "info", "--json", model)
	if code != 0 {
		t.Fatalf("info exited %d", code)
	}
	var raw struct {
		GPU map[string]json.RawMessage `json:"gpu"`
	}
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"cuda_build", "library", "visible_gpus"} {
		if _, ok := raw.GPU[key]; !ok {
			t.Fatalf("info --json has no gpu.%s: %s", key, out)
		}
	}
	var info modelInfo
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	var gpuDevices int
	for _, d := range info.Devices {
		if strings.HasSuffix(d, "(GPU)") {
			gpuDevices++
		}
	}
	if len(info.GPU.VisibleGPUs) != gpuDevices || !strings.HasSuffix(info.GPU.Library, "libtensorflow_cc.so.2") {
		t.Fatalf("gpu %+v with devices %v", info.GPU, info.Devices)
	}
	text, _, _ := emotions(t, "info", model)
	if !strings.Contains(text, "gpu         "+info.GPU.Summary()) {
		t.Fatalf("info does not print the GPU summary %q:\n%s", info.GPU.Summary(), text)
	}
	if gpuDevices == 0 {
		want := "without CUDA support"
		if info.GPU.CUDABuild {
			want = "NVIDIA driver"
		}
		mustFail(t, want, "--device", "gpu", "info", model)
	}
}
