package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emotions-dev/emotions/tfgraph"
)

// rss is the resident set of process pid now (VmRSS) or at its peak (VmHWM), in MB.
func rss(pid int, field string) (float64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == field+":" {
			kb, err := strconv.ParseFloat(f[1], 64)
			return round(kb / 1024), err
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// swaps places versions 2..n+1 of the model in base, one at a time (hard links to version
// 1's files: the server loads each as a new model), waits for the polling server to serve
// each with one request answered, and reports the server's RSS after the first and last.
func swaps(statusURL, base string, n, pid int, settle time.Duration) (map[string]any, error) {
	src := filepath.Join(base, "1")
	one, err := smallBody(src)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 120 * time.Second}
	serve := func(v int) error {
		deadline := time.Now().Add(5 * time.Minute)
		for {
			resp, err := client.Get(statusURL)
			if err == nil {
				raw, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var st struct {
					ModelVersionStatus []struct{ Version string } `json:"model_version_status"`
				}
				if json.Unmarshal(raw, &st) == nil && len(st.ModelVersionStatus) == 1 && st.ModelVersionStatus[0].Version == strconv.Itoa(v) {
					break
				}
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("version %d not served after 5 minutes", v)
			}
			time.Sleep(100 * time.Millisecond)
		}
		resp, err := client.Post(statusURL+":predict", "application/json", bytes.NewReader(one))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		if resp.StatusCode != 200 {
			return fmt.Errorf("version %d: predict answered %d", v, resp.StatusCode)
		}
		return nil
	}
	settled := func() (float64, error) {
		time.Sleep(settle) // the server hands memory back a moment after an unload
		return rss(pid, "VmRSS")
	}
	if err := serve(1); err != nil {
		return nil, err
	}
	first, err := settled()
	if err != nil {
		return nil, err
	}
	curve := []float64{first}
	start := time.Now()
	for v := 2; v <= n+1; v++ {
		if err := linkTree(src, filepath.Join(base, strconv.Itoa(v))); err != nil {
			return nil, err
		}
		if err := serve(v); err != nil {
			return nil, err
		}
		if v%10 == 1 {
			r, _ := rss(pid, "VmRSS")
			curve = append(curve, r)
			fmt.Fprintf(os.Stderr, "swaps: version %d served, RSS %.0f MB\n", v, r)
		}
		if v > 2 {
			os.RemoveAll(filepath.Join(base, strconv.Itoa(v-1)))
		}
	}
	took := time.Since(start)
	last, err := settled()
	if err != nil {
		return nil, err
	}
	return map[string]any{
		"swaps": n, "swap_rss_first_mb": first, "swap_rss_last_mb": last, "swap_rss_ratio": round(last / first),
		"swap_rss_every_10_mb": curve, "swap_seconds_each": round(took.Seconds() / float64(n)),
	}, nil
}

// linkTree makes dst a copy of src whose files are hard links.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		return os.Link(path, target)
	})
}

// smallBody is a one-image request for the model in dir.
func smallBody(dir string) ([]byte, error) {
	m, err := tfgraph.Load(dir, tfgraph.Options{Device: "cpu", IntraOpThreads: 1})
	if err != nil {
		return nil, err
	}
	h, w, c := m.InputShape()
	m.Close()
	return imagesBody(h, w, c, 1), nil
}

// imagesBody is {"instances": [...]} of n random images.
func imagesBody(h, w, c, n int) []byte {
	r := rand.New(rand.NewSource(7))
	var b bytes.Buffer
	b.WriteString(`{"instances": [`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		writeImage(&b, r, h, w, c)
	}
	b.WriteString("]}")
	return b.Bytes()
}

func writeImage(b *bytes.Buffer, r *rand.Rand, h, w, c int) {
	b.WriteByte('[')
	for y := 0; y < h; y++ {
		if y > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('[')
		for x := 0; x < w; x++ {
			if x > 0 {
				b.WriteByte(',')
			}
			b.WriteByte('[')
			for k := 0; k < c; k++ {
				if k > 0 {
					b.WriteByte(',')
				}
				b.WriteString(strconv.FormatFloat(float64(r.Float32()), 'f', 7, 32))
			}
			b.WriteByte(']')
		}
		b.WriteByte(']')
	}
	b.WriteByte(']')
}

// burst sends n concurrent bodies of just under limit bytes at once and reports how each was
// answered and how fast, the server's peak RSS during the burst and its RSS after.
func burst(url, modelDir string, n int, limit int64, pid int, after time.Duration) (map[string]any, error) {
	m, err := tfgraph.Load(modelDir, tfgraph.Options{Device: "cpu", IntraOpThreads: 1})
	if err != nil {
		return nil, err
	}
	h, w, c := m.InputShape()
	m.Close()
	perImage := len(imagesBody(h, w, c, 1)) - len(`{"instances": []}`) + 1
	body := imagesBody(h, w, c, int((limit-64)/int64(perImage)))
	for int64(len(body)) > limit {
		body = imagesBody(h, w, c, int((limit-64)/int64(perImage))-1)
	}
	baseline, err := rss(pid, "VmRSS")
	if err != nil {
		return nil, err
	}
	var peak float64
	stop := make(chan struct{}, 1) // (this package's close compares probabilities)
	var sampled sync.WaitGroup
	sampled.Add(1)
	go func() {
		defer sampled.Done()
		for {
			if r, err := rss(pid, "VmRSS"); err == nil && r > peak {
				peak = r
			}
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
		}
	}()
	client := &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	type result struct {
		code    int
		seconds float64
		err     error
	}
	results := make([]result, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			t0 := time.Now()
			resp, err := client.Post(url, "application/json", bytes.NewReader(body))
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				results[i] = result{code: resp.StatusCode}
			} else {
				results[i] = result{err: err}
			}
			results[i].seconds = time.Since(t0).Seconds()
		}(i)
	}
	wg.Wait()
	burstSeconds := time.Since(start).Seconds()
	time.Sleep(after)
	stop <- struct{}{}
	sampled.Wait()
	later, err := rss(pid, "VmRSS")
	if err != nil {
		return nil, err
	}
	counts := map[string]int{}
	var maxRefusal, maxAnswer float64
	for _, r := range results {
		switch {
		case r.err != nil:
			counts["no_answer"]++
			fmt.Fprintln(os.Stderr, "burst: no answer:", r.err)
		case r.code == 200:
			counts["200"]++
			maxAnswer = max(maxAnswer, r.seconds)
		case r.code == 429:
			counts["429"]++
			maxRefusal = max(maxRefusal, r.seconds)
		default:
			counts[strconv.Itoa(r.code)]++
		}
	}
	return map[string]any{
		"burst_clients": n, "burst_body_mb": round(float64(len(body)) / (1 << 20)), "burst_answers": counts, "burst_504": counts["504"],
		"burst_max_refusal_s": round(maxRefusal), "burst_max_answer_s": round(maxAnswer), "burst_seconds": round(burstSeconds),
		"burst_rss_before_mb": baseline, "burst_rss_peak_mb": peak, fmt.Sprintf("burst_rss_after_%ds_mb", int(after.Seconds())): later,
		"burst_rss_after_ratio": round(later / baseline),
	}, nil
}
