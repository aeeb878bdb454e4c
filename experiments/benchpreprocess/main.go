// Command benchpreprocess measures preprocessing throughput: a cold pass (fresh empty
// cache) and a cached pass over class-folder datasets, and the face-found rate. Its last
// output line is one JSON object, for scripts.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/savedmodel"
)

func main() {
	data := flag.String("data", "data/faces4", "dataset: split folders (train, valid, test) of class folders, or class folders")
	workers := flag.Int("workers", 0, "0 = all cores")
	flag.Parse()
	if err := run(*data, *workers); err != nil {
		fmt.Fprintln(os.Stderr, "benchpreprocess:", err)
		os.Exit(1)
	}
}

func run(data string, workers int) error {
	p, err := preprocess.New(preprocess.OptionsFor(savedmodel.Default()))
	if err != nil {
		return err
	}
	files, err := imageFiles(data)
	if err != nil {
		return err
	}
	cache, err := os.MkdirTemp("", "emotions-bench-cache-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(cache)
	o := preprocess.LoadOptions{Workers: workers, CacheDir: cache}

	load := loadAverage()
	start, cpu := time.Now(), cpuTime()
	cold := preprocess.LoadFiles(files, p, o)
	coldTime, coldCPU := time.Since(start), cpuTime()-cpu
	start = time.Now()
	warm := preprocess.LoadFiles(files, p, o)
	warmTime := time.Since(start)

	found, rejected := 0, 0
	for i, r := range cold {
		switch r.Outcome {
		case preprocess.OutcomeFace:
			found++
		case preprocess.OutcomeRejected:
			rejected++
			fmt.Println("rejected:", r.Err)
		}
		if string(r.Crop) != string(warm[i].Crop) {
			return fmt.Errorf("%s: cached crop differs from the cold one", r.File)
		}
	}
	n := float64(len(files))
	res := map[string]any{
		"bench":            "preprocess",
		"data":             data,
		"images":           len(files),
		"cores":            runtime.NumCPU(),
		"cold_seconds":     round(coldTime.Seconds()),
		"cached_seconds":   round(warmTime.Seconds()),
		"cold_img_per_s":   round(n / coldTime.Seconds()),
		"cached_img_per_s": round(n / warmTime.Seconds()),
		"speedup":          round(coldTime.Seconds() / warmTime.Seconds()),
		"found_rate":       round(float64(found) / n),
		"rejected":         rejected,
		// CPU time per image tells what idle cores would do when the machine is shared.
		"cold_cpu_ms_per_img": round(coldCPU.Seconds() * 1000 / n),
		"load_average_1m":     load,
		"goal":                "cold >= 1000 img/s on 2 cores, cached >= 20x cold",
		"goal_met":            n/coldTime.Seconds() >= 1000 && coldTime >= 20*warmTime,
	}
	fmt.Printf("%s: %d images on %d cores (load average %s): cold %.0f img/s (%.2f CPU-ms/img), cached %.0f img/s (%.1fx), faces found in %.1f%%\n",
		data, len(files), runtime.NumCPU(), load, res["cold_img_per_s"], res["cold_cpu_ms_per_img"], res["cached_img_per_s"], res["speedup"], 100*res["found_rate"].(float64))
	enc := json.NewEncoder(os.Stdout)
	enc.SetEscapeHTML(false)
	return enc.Encode(res)
}

// imageFiles lists DATA/*/*/* (splits of classes) or DATA/*/* (classes), sorted.
func imageFiles(data string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(data, "*", "*", "*.*"))
	if err == nil && len(files) == 0 {
		files, err = filepath.Glob(filepath.Join(data, "*", "*.*"))
	}
	if err == nil && len(files) == 0 {
		err = fmt.Errorf("no images under %s", data)
	}
	return files, err
}

// cpuTime is the CPU time (user + system) this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loadAverage is the 1-minute load average ("" where /proc is absent): other work on the
// machine slows the wall-clock figures.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	return strings.Fields(string(b))[0]
}

func round(v float64) float64 { return float64(int64(v*1000+0.5)) / 1000 }
