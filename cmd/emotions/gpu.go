package main

import (
	"strings"

	"github.com/emotions-dev/emotions/tfgraph"
)

// gpuInfo is `info`'s "gpu" object: what the linked TensorFlow and the NVIDIA driver support,
// and the GPUs the model's session sees.
type gpuInfo struct {
	tfgraph.GPUSupport
	VisibleGPUs []string `json:"visible_gpus"`
}

func describeGPU(m *tfgraph.Model) gpuInfo {
	return gpuInfo{GPUSupport: tfgraph.DetectGPUSupport(), VisibleGPUs: m.GPUs()}
}

func (g gpuInfo) String() string {
	visible := "no GPU visible"
	if len(g.VisibleGPUs) > 0 {
		visible = "visible: " + strings.Join(g.VisibleGPUs, ", ")
	}
	return g.Summary() + "; " + visible
}
