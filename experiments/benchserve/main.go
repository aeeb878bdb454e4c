// Command benchserve is the load generator of experiments/bench_serve.sh: N concurrent REST
// clients call :predict on a running `emotions serve` for a fixed time each, and every answer
// is checked against a direct tfgraph Predict of the same model on the same input.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emotions-dev/emotions/tfgraph"
)

func main() {
	url := flag.String("url", "", "predict URL, e.g. http://127.0.0.1:8501/v1/models/bench:predict")
	model := flag.String("model", "", "the served model directory (for the reference probabilities)")
	levels := flag.String("clients", "1,32", "concurrent client counts to run, in order")
	duration := flag.Duration("duration", 10*time.Second, "time per client count")
	inputs := flag.Int("inputs", 64, "distinct request bodies (one image each)")
	warmup := flag.Duration("warmup", 3*time.Second, "unmeasured load first (TensorFlow's first runs of each batch size are slow)")
	mode := flag.String("mode", "throughput", "throughput (the client levels above), swaps (version swaps under a polling server) or burst (concurrent maximum-size bodies)")
	pid := flag.Int("pid", 0, "the server's process id (swaps, burst: its RSS is read from /proc)")
	base := flag.String("base", "", "swaps: the served model base, holding version 1")
	count := flag.Int("n", 50, "swaps: versions to swap in; burst: concurrent requests")
	bodyBytes := flag.Int64("bytes", 64<<20, "burst: each body is just under this size (the server's --max-request-bytes)")
	settle := flag.Duration("settle", 10*time.Second, "swaps: wait before reading RSS; burst: wait after the burst before reading RSS")
	flag.Parse()
	var err error
	switch *mode {
	case "throughput":
		err = run(*url, *model, *levels, *duration, *warmup, *inputs)
	case "swaps", "burst":
		var out map[string]any
		if *mode == "swaps" {
			out, err = swaps(*url, *base, *count, *pid, *settle)
		} else {
			out, err = burst(*url, *model, *count, *bodyBytes, *pid, *settle)
		}
		if err == nil {
			line, _ := json.Marshal(out)
			fmt.Println(string(line))
		}
	default:
		err = fmt.Errorf("--mode %q: want throughput, swaps or burst", *mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchserve:", err)
		os.Exit(1)
	}
}

type request struct {
	body []byte
	want []float32
}

type level struct {
	clients          int
	ok, wrong, fails int
	rps              float64
	p50, p99         float64 // ms
}

func run(url, modelDir, levels string, duration, warmup time.Duration, n int) error {
	reqs, err := makeRequests(modelDir, n)
	if err != nil {
		return err
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256}, Timeout: 60 * time.Second}
	var counts []int
	for _, s := range strings.Split(levels, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || c < 1 {
			return fmt.Errorf("--clients: bad count %q", s)
		}
		counts = append(counts, c)
	}
	if warmup > 0 {
		for _, c := range counts {
			load(client, url, reqs, c, warmup/time.Duration(len(counts)))
		}
	}
	results := map[string]any{}
	var runs []level
	for _, c := range counts {
		l := load(client, url, reqs, c, duration)
		runs = append(runs, l)
		fmt.Printf("clients=%-3d rps=%8.1f p50=%7.2fms p99=%7.2fms ok=%d wrong=%d failed=%d\n", l.clients, l.rps, l.p50, l.p99, l.ok, l.wrong, l.fails)
		results[fmt.Sprintf("clients_%d_rps", c)] = round(l.rps)
		results[fmt.Sprintf("clients_%d_p50_ms", c)] = round(l.p50)
		results[fmt.Sprintf("clients_%d_p99_ms", c)] = round(l.p99)
	}
	allCorrect := true
	total := 0
	for _, l := range runs {
		allCorrect = allCorrect && l.wrong == 0 && l.fails == 0 && l.ok > 0
		total += l.ok + l.wrong + l.fails
	}
	first, last := runs[0], runs[len(runs)-1]
	results["ratio"] = round(last.rps / first.rps)
	results["p50_ms"] = round(last.p50)
	results["p99_ms"] = round(last.p99)
	results["requests"] = total
	results["all_correct"] = allCorrect
	line, _ := json.Marshal(results)
	fmt.Println(string(line))
	if !allCorrect {
		return fmt.Errorf("some requests failed or got wrong probabilities")
	}
	return nil
}

// makeRequests builds n one-image bodies and their expected probabilities.
func makeRequests(modelDir string, n int) ([]request, error) {
	m, err := tfgraph.Load(modelDir, tfgraph.Options{Device: "cpu", IntraOpThreads: 1})
	if err != nil {
		return nil, err
	}
	defer m.Close()
	h, w, c := m.InputShape()
	per := h * w * c
	r := rand.New(rand.NewSource(1))
	x := make([]float32, n*per)
	for i := range x {
		x[i] = r.Float32()
	}
	want, err := m.Predict(x, n)
	if err != nil {
		return nil, err
	}
	classes := len(m.Meta.Classes)
	reqs := make([]request, n)
	for i := range reqs {
		img := x[i*per : (i+1)*per]
		rows := make([][][]float32, h)
		for y := range rows {
			rows[y] = make([][]float32, w)
			for col := range rows[y] {
				off := (y*w + col) * c
				rows[y][col] = img[off : off+c]
			}
		}
		body, err := json.Marshal(map[string]any{"instances": [][][][]float32{rows}})
		if err != nil {
			return nil, err
		}
		reqs[i] = request{body: body, want: want[i*classes : (i+1)*classes]}
	}
	return reqs, nil
}

func load(client *http.Client, url string, reqs []request, clients int, duration time.Duration) level {
	var mu sync.Mutex
	l := level{clients: clients}
	var latencies []float64
	deadline := time.Now().Add(duration)
	start := time.Now()
	var wg sync.WaitGroup
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			var ok, wrong, fails int
			var lat []float64
			for i := c; time.Now().Before(deadline); i += clients {
				req := reqs[i%len(reqs)]
				t0 := time.Now()
				got, err := predict(client, url, req.body)
				lat = append(lat, float64(time.Since(t0).Microseconds())/1000)
				switch {
				case err != nil:
					fails++
					if fails == 1 {
						fmt.Fprintln(os.Stderr, "request failed:", err)
					}
				case !close(got, req.want):
					wrong++
				default:
					ok++
				}
			}
			mu.Lock()
			l.ok, l.wrong, l.fails = l.ok+ok, l.wrong+wrong, l.fails+fails
			latencies = append(latencies, lat...)
			mu.Unlock()
		}(c)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	l.rps = float64(l.ok) / elapsed
	sort.Float64s(latencies)
	l.p50, l.p99 = percentile(latencies, 0.50), percentile(latencies, 0.99)
	return l
}

func predict(client *http.Client, url string, body []byte) ([]float32, error) {
	resp, err := client.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.200s", resp.StatusCode, raw)
	}
	var out struct{ Predictions [][]float32 }
	if err := json.Unmarshal(raw, &out); err != nil || len(out.Predictions) != 1 {
		return nil, fmt.Errorf("bad answer %.200s: %v", raw, err)
	}
	return out.Predictions[0], nil
}

func close(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Abs(float64(a[i]-b[i])) > 1e-4 {
			return false
		}
	}
	return true
}

func percentile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

func round(v float64) float64 { return math.Round(v*100) / 100 }
