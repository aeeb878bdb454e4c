package tfserving

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	tf "github.com/wamuir/graft/tensorflow"
	"google.golang.org/grpc/codes"

	"github.com/emotions-dev/emotions/tfgraph"
)

func oneRow(v float32) map[string]rawTensor {
	return map[string]rawTensor{"x": {dtype: tf.Float, shape: []int64{1, 1}, data: float32Bytes([]float32{v})}}
}

// identity echoes x as y, after waiting for release.
func blockingRun(release <-chan struct{}) runFunc {
	return func(_ string, in map[string]*tf.Tensor) (map[string]*tf.Tensor, error) {
		<-release
		vals, err := tfgraph.Float32s(in["x"])
		if err != nil {
			return nil, err
		}
		t, err := tfgraph.Float32Tensor(vals, in["x"].Shape()...)
		return map[string]*tf.Tensor{"y": t}, err
	}
}

func TestBatcherQueueBound(t *testing.T) {
	release := make(chan struct{})
	b := newBatcher(blockingRun(release), BatchOptions{MaxBatchSize: 1, Timeout: time.Millisecond, Threads: 1, MaxQueued: 2}, nil)
	defer b.close()
	defer close(release)

	// One request is being run (blocked), one sits in the collector, two fill the queue:
	// the next is refused at once instead of waiting without bound.
	results := make(chan error, 4)
	for i := 0; i < 4; i++ {
		go func(i int) {
			_, err := b.submit(context.Background(), "s", oneRow(float32(i)))
			results <- err
		}(i)
		time.Sleep(20 * time.Millisecond)
	}
	_, err := b.submit(context.Background(), "s", oneRow(9))
	if codeOf(err) != codes.ResourceExhausted || restStatus(err) != 429 {
		t.Fatalf("full queue: %v (code %v, HTTP %d), want RESOURCE_EXHAUSTED / 429", err, codeOf(err), restStatus(err))
	}

}

func TestBatcherDeadline(t *testing.T) {
	release := make(chan struct{})
	b := newBatcher(blockingRun(release), BatchOptions{MaxBatchSize: 4, Timeout: time.Millisecond, Threads: 1, MaxQueued: 8}, nil)
	defer b.close()
	defer close(release)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := b.submit(ctx, "s", oneRow(1))
	if codeOf(err) != codes.DeadlineExceeded || restStatus(err) != 504 {
		t.Fatalf("a run that outlasts the deadline: %v (HTTP %d), want DEADLINE_EXCEEDED / 504", err, restStatus(err))
	}
}

func TestBatcherSplitsRowsBack(t *testing.T) {
	release := make(chan struct{})
	close(release)
	b := newBatcher(blockingRun(release), BatchOptions{MaxBatchSize: 8, Timeout: 30 * time.Millisecond, Threads: 1, MaxQueued: 8}, nil)
	defer b.close()
	type answer struct {
		want float32
		got  []float64
		err  error
	}
	answers := make(chan answer, 4)
	for i := 0; i < 4; i++ {
		go func(v float32) {
			out, err := b.submit(context.Background(), "s", oneRow(v))
			if err != nil {
				answers <- answer{want: v, err: err}
				return
			}
			got, err := out["y"].values()
			answers <- answer{want: v, got: got, err: err}
		}(float32(i + 1))
	}
	for i := 0; i < 4; i++ {
		a := <-answers
		if a.err != nil || len(a.got) != 1 || float32(a.got[0]) != a.want {
			t.Errorf("request %v got %v, %v", a.want, a.got, a.err)
		}
	}
	if runs, tasks := b.stats(); tasks != 4 || runs != 1 {
		t.Errorf("4 concurrent requests took %d runs", runs)
	}
}

func TestParseNested(t *testing.T) {
	for in, want := range map[string]string{
		"[[1, 2.5], [3e-1, -4]]":  "[2,2]",
		"[]":                      "[0]",
		"7":                       "[]",
		"[[1,2],[3]]":             "error",
		"[[1,2],3]":               "error",
		"[1,,2]":                  "error",
		"[.5]":                    "error",
		"[+1]":                    "error",
		"[01]":                    "error",
		"[0x10]":                  "error",
		"[inf]":                   "error",
		"[NaN, -Infinity, 1e400]": "[3]",
		`["a"]`:                   "error",
	} {
		shape, _, err := parseNested([]byte(in))
		got := shapeString(shape)
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("parseNested(%s) = %s (%v), want %s", in, got, err, want)
		}
	}
}

func TestParsePredictBody(t *testing.T) {
	for in, want := range map[string]string{
		`{"instances": [[1, 2]], "signature_name": "s"}`: "ok",
		`{"inputs": {"a": [1], "b": 2}}`:                 "ok",
		`{"instances": [{"a": "x,]"}]}`:                  "ok",
		`{not json`:                                      "error",
		`{"instances": [[1, 2]]`:                         "error",
		`{"instances": }`:                                "error",
		`{"instances": [1]} x`:                           "error",
		`{"other": 1}`:                                   "error",
		`[1]`:                                            "error",
	} {
		_, _, err := parsePredictBody([]byte(in))
		got := "ok"
		if err != nil {
			got = "error"
		}
		if got != want {
			t.Errorf("parsePredictBody(%s): %v, want %s", in, err, want)
		}
	}
}

// A body of nothing but '[' must be an error, not a stack overflow that takes the server down.
func TestParseNestedDepthBounded(t *testing.T) {
	deep := strings.Repeat("[", 10_000_000) + strings.Repeat("]", 10_000_000)
	if _, _, err := parseNested([]byte(deep)); err == nil || !strings.Contains(err.Error(), "nested more than") {
		t.Fatalf("10 million nested lists: %v", err)
	}
	ok := strings.Repeat("[", maxNesting) + "1" + strings.Repeat("]", maxNesting)
	if shape, _, err := parseNested([]byte(ok)); err != nil || len(shape) != maxNesting {
		t.Fatalf("%d nested lists: shape %v, %v", maxNesting, shape, err)
	}
}

// FuzzParseNested: the hand-written tensor parser never panics, and what it accepts is
// what encoding/json reads as the same numbers (it also takes NaN and Infinity, as TF
// Serving does, and numbers beyond float64 as +-Inf).
func FuzzParseNested(f *testing.F) {
	for _, s := range []string{"[[1, 2.5], [3e-1, -4]]", "[]", "7", "[[1,2],[3]]", "[true, false]",
		"[NaN, Infinity, -Infinity]", "[[[]]]", "[1e400]", `["a"]`, "[1,,2]", "[[1],", "-", "[0.5e-3 ]"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		shape, vals, err := parseNested(b)
		if err != nil {
			return
		}
		n := int64(1)
		for _, d := range shape {
			n *= d
		}
		if int64(len(vals)) != n {
			t.Fatalf("%q: shape %v holds %d values, parsed %d", b, shape, n, len(vals))
		}
		if bytes.Contains(b, []byte("NaN")) || bytes.Contains(b, []byte("Infinity")) || bytes.Contains(b, []byte("true")) || bytes.Contains(b, []byte("false")) {
			return // extensions encoding/json refuses, or booleans it keeps as bools
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			if strings.Contains(err.Error(), "cannot unmarshal number") {
				return // out of float64's range: parseNested gives +-Inf
			}
			t.Fatalf("%q accepted, but encoding/json says %v", b, err)
		}
		var flat []float64
		var walk func(any)
		walk = func(x any) {
			switch x := x.(type) {
			case []any:
				for _, e := range x {
					walk(e)
				}
			case float64:
				flat = append(flat, x)
			default:
				t.Fatalf("%q accepted, but encoding/json reads %T in it", b, x)
			}
		}
		walk(v)
		if len(flat) != len(vals) {
			t.Fatalf("%q: %d numbers, encoding/json reads %d", b, len(vals), len(flat))
		}
		for i := range flat {
			if flat[i] != vals[i] {
				t.Fatalf("%q: number %d is %v, encoding/json reads %v", b, i, vals[i], flat[i])
			}
		}
	})
}
