package tfgraph

/*
#cgo LDFLAGS: -ltensorflow -ldl
#define _GNU_SOURCE // dladdr
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <tensorflow/c/c_api.h>

// Where the TensorFlow C API was loaded from: the wheel's libtensorflow_cc.so.2.
static const char* tf_library_path(void) {
	Dl_info info;
	if (dladdr((void*)TF_Version, &info) == 0) return NULL;
	return info.dli_fname;
}

// The NVIDIA driver's CUDA version (e.g. 12040), loaded the way TensorFlow's CUDA stub loads it
// (dlopen libcuda.so.1); -1 with the reason in err when there is no usable driver.
// cuDriverGetVersion needs no cuInit and no device.
static int cuda_driver_version(char* err, size_t n) {
	void* h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		const char* e = dlerror();
		snprintf(err, n, "%s", e ? e : "libcuda.so.1 could not be loaded");
		return -1;
	}
	int (*get)(int*) = (int (*)(int*))dlsym(h, "cuDriverGetVersion");
	int version = 0;
	int rc = get ? get(&version) : -1;
	dlclose(h);
	if (rc != 0) {
		snprintf(err, n, "libcuda.so.1 loaded but cuDriverGetVersion failed (CUresult %d)", rc);
		return -1;
	}
	return version;
}
*/
import "C"

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unsafe"

	kernelpb "github.com/wamuir/graft/tensorflow/core/framework/kernel_def_go_proto"
	"google.golang.org/protobuf/proto"
)

// GPUSupport is what the linked TensorFlow can do with NVIDIA GPUs on this machine, as `info`
// shows it and as the --device gpu error explains it.
type GPUSupport struct {
	// CUDABuild: the library has GPU kernels registered, i.e. it is TensorFlow's CUDA build
	// (the `tensorflow` wheel or image), not tensorflow-cpu. Read from TensorFlow's kernel
	// registry through the C API, so it is what the linked library really holds.
	CUDABuild bool `json:"cuda_build"`
	// CUDAVersion, CUDNNVersion and ComputeCapabilities are the ones TensorFlow was built
	// with, from the build_info.py the wheel ships beside the library (what Python's
	// tf.sysconfig.get_build_info() reads); empty when the library has none.
	CUDAVersion         string   `json:"cuda_version,omitempty"`
	CUDNNVersion        string   `json:"cudnn_version,omitempty"`
	ComputeCapabilities []string `json:"cuda_compute_capabilities,omitempty"`
	// Library is the path of the linked libtensorflow_cc.so.2.
	Library string `json:"library"`
	// DriverCUDA is the CUDA version the NVIDIA driver supports ("12.4"); empty with
	// DriverError saying why when libcuda.so.1 cannot be loaded (no driver installed).
	DriverCUDA  string `json:"driver_cuda_version,omitempty"`
	DriverError string `json:"driver_error,omitempty"`
}

// gpuKernelProbe is an op every CUDA build of TensorFlow has a GPU kernel for.
const gpuKernelProbe = "MatMul"

// DetectGPUSupport inspects the linked TensorFlow and the NVIDIA driver. It needs no GPU and
// no session.
func DetectGPUSupport() GPUSupport {
	var g GPUSupport
	g.CUDABuild = hasGPUKernel(gpuKernelProbe)
	if p := C.tf_library_path(); p != nil {
		g.Library = C.GoString(p)
		g.CUDAVersion, g.CUDNNVersion, g.ComputeCapabilities = readBuildInfo(
			filepath.Join(filepath.Dir(g.Library), "python", "platform", "build_info.py"))
	}
	var errBuf [512]C.char
	if v := C.cuda_driver_version(&errBuf[0], C.size_t(len(errBuf))); v >= 0 {
		g.DriverCUDA = cudaVersionString(int(v))
	} else {
		g.DriverError = C.GoString(&errBuf[0])
	}
	return g
}

// cudaVersionString formats CUDA's integer version (1000*major + 10*minor) as "major.minor".
func cudaVersionString(v int) string { return fmt.Sprintf("%d.%d", v/1000, v%1000/10) }

// hasGPUKernel reports whether TensorFlow's kernel registry has a GPU kernel for op.
func hasGPUKernel(op string) bool {
	name := C.CString(op)
	defer C.free(unsafe.Pointer(name))
	status := C.TF_NewStatus()
	defer C.TF_DeleteStatus(status)
	buf := C.TF_GetRegisteredKernelsForOp(name, status)
	if buf == nil {
		return false
	}
	defer C.TF_DeleteBuffer(buf)
	if C.TF_GetCode(status) != C.TF_OK {
		return false
	}
	var kernels kernelpb.KernelList
	if err := proto.Unmarshal(C.GoBytes(buf.data, C.int(buf.length)), &kernels); err != nil {
		return false
	}
	for _, k := range kernels.GetKernel() {
		if k.GetDeviceType() == "GPU" {
			return true
		}
	}
	return false
}

var (
	buildInfoString = regexp.MustCompile(`'(cuda_version|cudnn_version)',\s*'([^']*)'`)
	buildInfoCaps   = regexp.MustCompile(`'cuda_compute_capabilities',\s*\[([^\]]*)\]`)
	quoted          = regexp.MustCompile(`'([^']*)'`)
)

// maxBuildInfo bounds what is read of build_info.py (TensorFlow's is under 2 KB).
const maxBuildInfo = 64 << 10

// readBuildInfo extracts the CUDA and cuDNN versions and compute capabilities from
// TensorFlow's generated build_info.py; zero values when it is missing or has none.
func readBuildInfo(path string) (cuda, cudnn string, caps []string) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxBuildInfo))
	if err != nil {
		return "", "", nil
	}
	for _, m := range buildInfoString.FindAllSubmatch(b, -1) {
		if string(m[1]) == "cuda_version" {
			cuda = string(m[2])
		} else {
			cudnn = string(m[2])
		}
	}
	if m := buildInfoCaps.FindSubmatch(b); m != nil {
		for _, q := range quoted.FindAllSubmatch(m[1], -1) {
			caps = append(caps, string(q[1]))
		}
	}
	return cuda, cudnn, caps
}

// Summary is GPUSupport in one line, for `info`.
func (g GPUSupport) Summary() string {
	if !g.CUDABuild {
		return "none: the linked TensorFlow is built without CUDA (tensorflow-cpu)" + g.driverNote()
	}
	s := "TensorFlow built with CUDA"
	if g.CUDAVersion != "" {
		s += " " + g.CUDAVersion
	}
	if g.CUDNNVersion != "" {
		s += ", cuDNN " + g.CUDNNVersion
	}
	return s + g.driverNote()
}

func (g GPUSupport) driverNote() string {
	if g.DriverCUDA != "" {
		return "; NVIDIA driver for CUDA " + g.DriverCUDA
	}
	return "; no NVIDIA driver (" + g.DriverError + ")"
}

// NoGPUError is the error of Options.Device "gpu" when TensorFlow lists no GPU among devices: what the
// linked library and the driver are, and what to do about it.
func (g GPUSupport) NoGPUError(devices []string) error {
	seen := "TensorFlow sees no GPU (devices: " + strings.Join(devices, ", ") + ")"
	switch {
	case !g.CUDABuild:
		hint := "on an NVIDIA machine, link TensorFlow's CUDA build (the tensorflow[and-cuda]==2.18.1 wheel; README, GPU) or use Dockerfile.gpu"
		if g.DriverCUDA != "" {
			hint = "this machine has an NVIDIA driver (CUDA " + g.DriverCUDA +
				"): link TensorFlow's CUDA build instead (the tensorflow[and-cuda]==2.18.1 wheel; README, GPU)"
		}
		return fmt.Errorf("device gpu: %s: this build links a TensorFlow without CUDA support (%s); %s, or run on the CPU",
			seen, g.Library, hint)
	case g.DriverCUDA == "":
		return fmt.Errorf("device gpu: %s: TensorFlow is built with CUDA %s but the NVIDIA driver is not installed (%s); "+
			"install the driver (nvidia-smi must list the GPU), or run on the CPU", seen, g.CUDAVersion, g.DriverError)
	default:
		return fmt.Errorf("device gpu: %s although the NVIDIA driver (CUDA %s) is loaded and TensorFlow is built with CUDA %s: "+
			"check nvidia-smi, CUDA_VISIBLE_DEVICES and the visible devices asked for (Options.VisibleDevices), a driver older than the CUDA TensorFlow needs, "+
			"and TensorFlow's log lines above (cuInit, device errors); or run on the CPU", seen, g.DriverCUDA, g.CUDAVersion)
	}
}

// GPUs lists the GPU devices the session sees (none on a machine without a usable GPU).
func (m *Model) GPUs() []string {
	gpus := []string{}
	for _, d := range m.devices {
		if strings.HasSuffix(d, "(GPU)") {
			gpus = append(gpus, d)
		}
	}
	return gpus
}
