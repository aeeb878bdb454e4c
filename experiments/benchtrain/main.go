// Command benchtrain measures the raw limit of training throughput: the train_step
// signature run back to back on one resident batch, with nothing else in the loop (no
// batching, shuffling, callbacks or checkpoints). bench_train.sh compares `emotions train`
// against it. The batch is uniform [0,1) pixels with random one-hot labels: the step's cost
// does not depend on pixel values. Prints one JSON object.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"time"

	"github.com/emotions-dev/emotions/tfgraph"
)

func main() {
	dir := flag.String("model", "", "emotions model directory (from new-model)")
	batch := flag.Int("batch-size", 64, "images per step")
	steps := flag.Int("steps", 18, "timed steps")
	warmup := flag.Int("warmup", 3, "untimed steps first (graph optimisation, allocator warm-up)")
	threads := flag.Int("threads", 0, "TensorFlow intra- and inter-op threads (0: TensorFlow's default)")
	inter := flag.Int("inter-threads", 0, "TensorFlow inter-op threads, when they differ from --threads (0: as --threads)")
	replicas := flag.Int("replicas", 1, "towers per step (the model needs new-model --replicas N)")
	cpuDevices := flag.Int("cpu-devices", 0, "logical CPU devices (0: one)")
	flag.Parse()
	opts := tfgraph.Options{Device: "cpu", IntraOpThreads: *threads, InterOpThreads: *threads, CPUDevices: *cpuDevices}
	if *inter > 0 {
		opts.InterOpThreads = *inter
	}
	if err := run(*dir, opts, *replicas, *batch, *steps, *warmup); err != nil {
		fmt.Fprintln(os.Stderr, "benchtrain:", err)
		os.Exit(1)
	}
}

func run(dir string, opts tfgraph.Options, replicas, n, steps, warmup int) error {
	if dir == "" || n <= 0 || steps <= 0 {
		return fmt.Errorf("need --model DIR, --batch-size > 0 and --steps > 0")
	}
	m, err := tfgraph.Load(dir, opts)
	if err != nil {
		return fmt.Errorf("load %s: %w", dir, err)
	}
	defer m.Close()
	if err := m.SetReplicas(replicas); err != nil {
		return err
	}
	h, w, ch := m.InputShape()
	c := len(m.Meta.Classes)
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, n*h*w*ch)
	for i := range x {
		x[i] = rng.Float32()
	}
	labels := make([]float32, n*c)
	for i := 0; i < n; i++ {
		labels[i*c+rng.IntN(c)] = 1
	}
	for i := 0; i < warmup; i++ {
		if _, err := m.TrainStep(x, labels, nil, n); err != nil {
			return fmt.Errorf("warm-up step %d: %w", i+1, err)
		}
	}
	start := time.Now()
	for i := 0; i < steps; i++ {
		if _, err := m.TrainStep(x, labels, nil, n); err != nil {
			return fmt.Errorf("step %d: %w", i+1, err)
		}
	}
	sec := time.Since(start).Seconds()
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"raw_images_per_second": float64(steps*n) / sec, "steps": steps, "batch_size": n,
		"seconds": sec, "train_signature": m.TrainSignature(), "backbone": m.Meta.Backbone,
		"replicas": m.Replicas(), "intra_op_threads": opts.IntraOpThreads, "inter_op_threads": opts.InterOpThreads,
		"cpu_devices": max(opts.CPUDevices, 1),
	})
}
