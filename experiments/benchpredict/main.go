// Command benchpredict times the Go path from a photo file to a label: decode, face crop
// (package preprocess, as every emotions command does) and inference (tfgraph's serve
// signature). Batch 1: median per-file latency. Batch N: files preprocessed by a worker per
// core (as the CLI's loaders do), then one inference call. Prints one JSON object;
// bench_predict.sh compares it with experiments/peers/predict_peer.py.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/tfgraph"
)

func main() {
	model := flag.String("model", "", "emotions model directory")
	dir := flag.String("images", "data/faces4/test", "directory searched (recursively) for photos")
	n := flag.Int("n", 64, "photos: batch-1 latency is measured on each, and they form the batch")
	rounds := flag.Int("rounds", 3, "timed repetitions of the batch")
	flag.Parse()
	if err := run(*model, *dir, *n, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "benchpredict:", err)
		os.Exit(1)
	}
}

func run(dir, images string, n, rounds int) error {
	files, err := photos(images, n)
	if err != nil {
		return err
	}
	m, err := tfgraph.Load(dir, tfgraph.Options{Device: "cpu"})
	if err != nil {
		return fmt.Errorf("load %s: %w", dir, err)
	}
	defer m.Close()
	p, err := preprocess.New(preprocess.OptionsFor(m.Meta))
	if err != nil {
		return err
	}
	in := preprocess.InputOf(m.Meta)
	px := in.Values()
	prep := func(path string, x []float32) error {
		r := p.File(path)
		if r.Err != nil {
			return r.Err
		}
		in.Normalize(r.Crop, x)
		return nil
	}
	one := make([]float32, px)
	for _, f := range files[:min(3, len(files))] { // warm-up: graph optimisation, first allocations
		if err := prep(f, one); err != nil {
			return err
		}
		if _, err := m.Predict(one, 1); err != nil {
			return err
		}
	}
	lat := make([]float64, 0, len(files))
	for _, f := range files {
		start := time.Now()
		if err := prep(f, one); err != nil {
			return err
		}
		if _, err := m.Predict(one, 1); err != nil {
			return fmt.Errorf("predict %s: %w", f, err)
		}
		lat = append(lat, time.Since(start).Seconds()*1000)
	}
	batch := make([]float32, len(files)*px)
	var rates []float64
	for r := 0; r < rounds+1; r++ { // round 0 warms the batch-size graph
		start := time.Now()
		if err := prepAll(files, batch, px, prep); err != nil {
			return err
		}
		if _, err := m.Predict(batch, len(files)); err != nil {
			return err
		}
		if r > 0 {
			rates = append(rates, float64(len(files))/time.Since(start).Seconds())
		}
	}
	return json.NewEncoder(os.Stdout).Encode(map[string]any{
		"batch1_latency_ms": median(lat), "batch_images_per_second": median(rates), "batch_size": len(files),
		"workers": runtime.GOMAXPROCS(0),
	})
}

func prepAll(files []string, x []float32, px int, prep func(string, []float32) error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(files))
	next := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				errs[i] = prep(files[i], x[i*px:(i+1)*px])
			}
		}()
	}
	for i := range files {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// photos lists up to n image files under dir, sorted, so both sides see the same files.
func photos(dir string, n int) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch strings.ToLower(filepath.Ext(path)) {
		case ".jpg", ".jpeg", ".png":
			files = append(files, path)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(files)
	if len(files) < n {
		return nil, fmt.Errorf("%s holds %d photos, want %d", dir, len(files), n)
	}
	return files[:n], nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
