package tfserving

import (
	"math"
	"strings"
	"testing"

	tf "github.com/wamuir/graft/tensorflow"
)

// parseNested reads one JSON tensor as float64 values, with no budget to speak of.
func parseNested(b []byte) ([]int64, []float64, error) {
	p := nestedParser{input: "x", dtype: tf.Double, size: 8, budget: newTensorBudget(math.MaxInt64)}
	shape, err := p.parse(b)
	if err != nil {
		return nil, nil, err
	}
	vals, err := rawTensor{dtype: tf.Double, shape: shape, data: p.data}.values()
	return shape, vals, err
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
