# emotions: train, evaluate and serve a Keras facial-emotion classifier from Go.
# `make setup` installs everything (idempotent); every other target depends on it.
SHELL := /bin/bash
VENV   := .venv
PY     := $(VENV)/bin/python
TFLIB  := .tflib
STAMP  := $(VENV)/.emotions-setup-v1
BIN    := bin/emotions
REQS   := savedmodel/requirements.txt
# The TensorFlow wheel whose C API the binary links. Dockerfile.gpu sets tensorflow==2.18.1
# (the GPU build) with VENV_FLAGS=--system-site-packages to use the image's own install.
TF_PACKAGE ?= tensorflow-cpu==2.18.1
VENV_FLAGS ?=

# cgo flags for graft: headers and libraries of the tensorflow-cpu wheel (see .tflib/env.mk).
-include $(TFLIB)/env.mk
export CGO_ENABLED := 1
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup build test demo vet fmt clean experiment experiment-resume bench-preprocess bench-train bench-predict bench-memory bench-serve

setup: $(STAMP) $(TFLIB)/env.mk

$(STAMP): $(REQS)
	@command -v python3 >/dev/null || { echo "setup: python3 (3.11) is needed"; exit 1; }
	@[ -x $(PY) ] || python3 -m venv $(VENV_FLAGS) $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check "$(TF_PACKAGE)" -r $(REQS)
	@# tensorflow-serving-api declares a dependency on `tensorflow` (not tensorflow-cpu): --no-deps.
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps tensorflow-serving-api==2.18.1
	@touch $@

$(TFLIB)/env.mk: $(STAMP) scripts/tflink.sh
	bash scripts/tflink.sh $(PY) $(TFLIB)

build: setup
	go build -o $(BIN) ./cmd/emotions

test: build
	go vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); [ -z "$$unformatted" ] || { echo "gofmt: $$unformatted"; exit 1; }
	go test -count=1 -timeout 40m ./...
	$(MAKE) --no-print-directory fuzz-short

# Fuzzing of every decoder of untrusted bytes (the targets are listed in scripts/fuzz.sh):
# `make test` runs each for 3 s, `make fuzz` for FUZZTIME (60 s) each.
FUZZTIME ?= 60s
.PHONY: fuzz fuzz-short
fuzz: setup
	FUZZTIME=$(FUZZTIME) bash scripts/fuzz.sh

fuzz-short: setup
	FUZZTIME=3s bash scripts/fuzz.sh

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

bench-train bench-predict bench-memory bench-serve: build
	bash experiments/$(subst -,_,$@).sh

clean:
	rm -rf $(BIN) $(TFLIB)
