# emotions: train, evaluate and serve a Keras facial-emotion classifier from Go.
# `make setup` installs everything (idempotent); every other target depends on it.
SHELL := /bin/bash
VENV   := .venv
PY     := $(VENV)/bin/python
TFLIB  := .tflib
BIN    := bin/emotions
REQS   := savedmodel/requirements.txt
# The TensorFlow wheel whose C API the binary links. `TF_PACKAGE='tensorflow[and-cuda]==2.18.1'`
# is the GPU build with its CUDA libraries from PyPI; Dockerfile.gpu sets tensorflow==2.18.1
# with VENV_FLAGS=--system-site-packages to use the image's own install. The venv records the
# one it installed, so later `make build`/`make test` keep it without repeating TF_PACKAGE.
TF_RECORD  := $(VENV)/.emotions-tf-package
TF_PACKAGE ?= $(or $(shell cat $(TF_RECORD) 2>/dev/null),tensorflow-cpu==2.18.1)
TF_PACKAGE := $(TF_PACKAGE)
VENV_FLAGS ?=
# One stamp per TF_PACKAGE: asking for another wheel re-runs setup (which refuses to mix two
# TensorFlow wheels in one venv) instead of silently keeping the installed one.
STAMP  := $(VENV)/.emotions-setup-v2-$(shell printf '%s' '$(TF_PACKAGE)' | tr -c 'A-Za-z0-9.-' _)
# Checked here, before make remakes .tflib/env.mk, so that the refusal is the only message.
ifeq ($(wildcard $(STAMP)),)
ifneq ($(wildcard $(PY)),)
TF_CONFLICT := $(shell $(PY) scripts/tfwheel.py check '$(TF_PACKAGE)' 2>&1)
ifneq ($(TF_CONFLICT),)
$(error $(TF_CONFLICT))
endif
endif
endif

# cgo flags for graft: headers and libraries of the TensorFlow wheel (see .tflib/env.mk).
-include $(TFLIB)/env.mk
export CGO_ENABLED := 1
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup build test demo vet fmt clean experiment experiment-resume bench-preprocess bench-train bench-predict bench-memory bench-serve bench-study bench-feeder bench-graph-opt bench-mixed-precision bench-replicas bench-checkpoint

setup: $(STAMP) $(TFLIB)/env.mk

$(STAMP): $(REQS)
	@command -v python3 >/dev/null || { echo "setup: python3 (3.11) is needed"; exit 1; }
	@[ -x $(PY) ] || python3 -m venv $(VENV_FLAGS) $(VENV)
	@# again for a venv created just now (--system-site-packages may show a system TensorFlow)
	@$(PY) scripts/tfwheel.py check '$(TF_PACKAGE)'
	$(PY) -m pip install --quiet --disable-pip-version-check '$(TF_PACKAGE)' -r $(REQS)
	@# tensorflow-serving-api declares a dependency on `tensorflow` (not tensorflow-cpu): --no-deps.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps tensorflow-serving-api==2.18.1
	@printf '%s\n' '$(TF_PACKAGE)' > $(TF_RECORD)
	@rm -f $(VENV)/.emotions-setup-v*
	@touch $@

$(TFLIB)/env.mk: $(STAMP) scripts/tflink.sh scripts/tfwheel.py
	bash scripts/tflink.sh $(PY) $(TFLIB)

build: setup
	go build -o $(BIN) ./cmd/emotions

test: build
	go vet ./...
	@# internal/atomicfs (the directory exchange and its fallback) builds for macOS and the BSDs.
	for os in darwin freebsd; do GOOS=$$os CGO_ENABLED=0 go vet ./internal/atomicfs/ || exit 1; done
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$unformatted" ] || { echo "gofmt: $$unformatted"; exit 1; }
	go test -count=1 -timeout 40m ./...
	$(MAKE) --no-print-directory fuzz-short

# Fuzzing of every decoder of untrusted bytes (the targets are listed in scripts/fuzz.sh):
# `make test` runs each for 500 inputs (a count: see scripts/fuzz.sh), `make fuzz` for FUZZTIME (60 s) each.
FUZZTIME ?= 60s
.PHONY: fuzz fuzz-short
fuzz: setup
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

fuzz-short: setup
	FUZZTIME=500x FUZZMINIMIZETIME=100x bash scripts/fuzz.sh

vet: setup
	go vet ./...

demo: build
	bash scripts/demo.sh

experiment: build
	$(BIN) experiment run $(NAME)

# continue a stopped experiment: make experiment-resume RUN=runs/experiments/NAME-<timestamp>
experiment-resume: build
	$(BIN) experiment resume $(RUN)

bench-preprocess: build
	bash experiments/bench_preprocess.sh

bench-train bench-predict bench-memory bench-serve bench-study bench-feeder bench-graph-opt bench-mixed-precision bench-replicas bench-checkpoint: build
	bash experiments/$(subst -,_,$@).sh

# The GPU proofs, on a machine with NVIDIA GPUs (README, "GPU"): it installs the GPU wheel
# itself, so no setup or build first; without a GPU it says so and exits 2 at once.
.PHONY: gpu-check
gpu-check:
	bash scripts/gpu_check.sh

clean:
	rm -rf $(BIN) $(TFLIB)
