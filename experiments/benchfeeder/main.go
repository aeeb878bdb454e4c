// Command benchfeeder measures the training batch feeder alone: the decode cache's crops of
// faces4 train turned into normalised (and augmented) float batches by recipe.DatasetSource,
// as fast as it can, with no TensorFlow step. A GPU eats InceptionResNetV2 80x80 batches at
// thousands of images a second, so the host must at least keep up with that. Its last output
// line is one JSON object.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/recipe"
	"github.com/emotions-dev/emotions/savedmodel"
)

func main() {
	data := flag.String("data", "data/faces4/train", "class folders to feed")
	seconds := flag.Float64("seconds", 5, "how long to feed each configuration")
	flag.Parse()
	if err := run(*data, time.Duration(*seconds*float64(time.Second))); err != nil {
		fmt.Fprintln(os.Stderr, "benchfeeder:", err)
		os.Exit(1)
	}
}

func run(data string, each time.Duration) error {
	meta := savedmodel.Default()
	p, err := preprocess.New(preprocess.OptionsFor(meta))
	if err != nil {
		return err
	}
	cache, err := os.MkdirTemp("", "emotions-bench-feeder-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	o := preprocess.LoadOptions{CacheDir: cache}
	if _, err := preprocess.LoadClassDirs(data, meta.Classes, p, o); err != nil { // fills the cache
		return err
	}
	start := time.Now()
	d, err := preprocess.LoadClassDirs(data, meta.Classes, p, o)
	if err != nil {
		return err
	}
	cacheRead := time.Since(start)
	in := preprocess.InputOf(meta)
	figures := map[string]any{"bench": "feeder", "images": len(d.Labels), "cores": runtime.NumCPU(),
		"cache_read_img_per_s": round(float64(len(d.Labels)) / cacheRead.Seconds())}
	aug := preprocess.DefaultAugment()
	for _, c := range []struct {
		name string
		aug  *preprocess.Augment
	}{{"plain", nil}, {"augmented", &aug}} {
		src, err := recipe.NewDatasetSource(d, in, len(meta.Classes), recipe.DataConfig{BatchSize: 64, Seed: 1, Augment: c.aug})
		if err != nil {
			return err
		}
		n, begin := 0, time.Now()
		for time.Since(begin) < each {
			b, err := src.Next(context.Background())
			if err != nil {
				return err
			}
			n += b.N
			src.Release(b)
		}
		rate := float64(n) / time.Since(begin).Seconds()
		fmt.Fprintf(os.Stderr, "%s batches of 64: %.0f images/s\n", c.name, rate)
		figures[c.name+"_img_per_s"] = round(rate)
	}
	figures["goal"] = "augmented >= 5000 images/s"
	figures["goal_met"] = figures["augmented_img_per_s"].(float64) >= 5000
	b, _ := json.Marshal(figures)
	fmt.Println(string(b))
	return nil
}

func round(v float64) float64 { return float64(int64(v*10+0.5)) / 10 }
