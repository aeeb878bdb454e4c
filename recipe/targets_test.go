package recipe

import (
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/savedmodel"
)

func writeCSV(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "targets.csv")
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReadSoftTargets(t *testing.T) {
	classes := []string{"angry", "happy", "normal", "sad"}
	// Columns in another order than the model's; rows normalised.
	path := writeCSV(t, "file,sad,normal,happy,angry\nhappy/a.jpg,0,1,2,1\n./sad/b.jpg,0.25,0.25,0.25,0.25\n")
	st, err := ReadSoftTargets(path, classes)
	if err != nil {
		t.Fatal(err)
	}
	root := "/data/train"
	files := []string{root + "/angry/z.jpg", root + "/happy/a.jpg", root + "/sad/b.jpg"}
	rows, matched, err := st.Rows(root, files)
	if err != nil || matched != 2 || st.Len() != 2 {
		t.Fatalf("rows: %v, %d of %d matched, want 2 of 2", err, matched, st.Len())
	}
	if rows[0] != nil {
		t.Errorf("an unlisted file got a soft target: %v", rows[0])
	}
	want := []float32{0.25, 0.5, 0.25, 0} // angry, happy, normal, sad
	for i, w := range want {
		if math.Abs(float64(rows[1][i]-w)) > 1e-7 {
			t.Fatalf("happy/a.jpg: got %v, want %v", rows[1], want)
		}
	}
	if _, _, err := st.Rows("/elsewhere", []string{"/elsewhere/happy/q.jpg"}); err == nil || !strings.Contains(err.Error(), "none of its 2 files") {
		t.Errorf("a CSV for another folder: %v", err)
	}
	if _, matched, _ := st.Rows(root, files[:2]); matched != 1 {
		t.Errorf("matched = %d, want 1", matched)
	}

	for _, c := range []struct{ body, want string }{
		{"file,angry,happy,normal\nx.jpg,1,0,0\n", "want file and the model's 4 classes"},
		{"file,angry,happy,normal,bored\nx.jpg,1,0,0,0\n", `no column for class "sad"`},
		{"file,angry,happy,normal,sad\nx.jpg,1,0,0,0\ny.jpg,1,-1,0,0\n", ":3: y.jpg: happy"},
		{"file,angry,happy,normal,sad\nx.jpg,1,0,nan,0\n", ":2: x.jpg: normal"},
		{"file,angry,happy,normal,sad\nx.jpg,0,0,0,0\n", ":2: x.jpg: all weights are 0"},
		{"file,angry,happy,normal,sad\nx.jpg,1,0,0,0\nx.jpg,0,1,0,0\n", ":3: x.jpg listed twice"},
		{"file,angry,happy,normal,sad\nx.jpg,1,0\n", "wrong number of fields"},
		{"file,angry,happy,normal,sad\n", "no rows"},
	} {
		path := writeCSV(t, c.body)
		_, err := ReadSoftTargets(path, classes)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), path) {
			t.Errorf("%q: error %v, want it to name the file and say %q", c.body, err, c.want)
		}
	}
}

// tiny8 is the input of 8x8 RGB crops, the smallest a preprocessor takes.
var tiny8 = preprocess.Input{Height: 8, Width: 8, Channels: 3, Norm: savedmodel.Rescale}

func tinyDataset(labels []int32, files []string) *preprocess.Dataset {
	d := &preprocess.Dataset{Classes: []string{"a", "b"}, Height: 8, Width: 8, Labels: labels, Files: files}
	for range labels {
		d.Crops = append(d.Crops, make([]uint8, 8*8*3))
	}
	return d
}

// The source turns a soft target into the step's y_true as Keras' label smoothing does,
// (1 - s) * y + s / k, and leaves the class weight to the folder's class.
func TestSourceSoftTargets(t *testing.T) {
	d := tinyDataset([]int32{0, 1, 1}, nil)
	cfg := DefaultConfig().Data()
	cfg.BatchSize = 2
	cfg.LabelSmoothing, cfg.ClassWeights = 0.2, "balanced"
	cfg.Targets = [][]float32{nil, {0.7, 0.3}, nil}
	src, err := NewDatasetSource(d, tiny8, 2, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := src.assemble([]int{0, 1, 2}, 0)
	want := []float32{0.9, 0.1, 0.66, 0.34, 0.1, 0.9}
	for i, w := range want {
		if math.Abs(float64(b.Labels[i]-w)) > 1e-6 {
			t.Fatalf("labels %v, want %v", b.Labels, want)
		}
	}
	if b.Weights[0] != 1.5 || b.Weights[1] != 0.75 || b.Weights[2] != 0.75 {
		t.Errorf("weights %v, want the folders' balanced weights [1.5 0.75 0.75]", b.Weights)
	}
}

// With person weights every person of a class weighs the same (the class keeps its total),
// and balanced class weights apply on top.
func TestSourcePersonWeights(t *testing.T) {
	d := tinyDataset([]int32{0, 0, 0, 0, 1, 1}, []string{"a/Ann_Lee_0001.jpg", "a/Ann_Lee_0002.jpg", "a/Ann_Lee_0003.jpg", "a/Bo_0001.jpg",
		"b/Ann_Lee_0004.jpg", "b/Cy_7.png"})
	cfg := DefaultConfig().Data()
	cfg.BatchSize = 2
	cfg.PersonWeights = true
	src, err := NewDatasetSource(d, tiny8, 2, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := src.assemble([]int{0, 1, 2, 3, 4, 5}, 0)
	// class a: 4 photos of 2 people, each person worth 2; class b: 2 people with one photo each.
	want := []float32{2.0 / 3, 2.0 / 3, 2.0 / 3, 2, 1, 1}
	for i, w := range want {
		if math.Abs(float64(b.Weights[i]-w)) > 1e-6 {
			t.Fatalf("person weights %v, want %v", b.Weights, want)
		}
	}
	cfg.ClassWeights = "balanced" // a: 6/(2*4) = 0.75, b: 6/(2*2) = 1.5
	if src, err = NewDatasetSource(d, tiny8, 2, cfg); err != nil {
		t.Fatal(err)
	}
	b = src.assemble([]int{0, 3, 4}, 0)
	if math.Abs(float64(b.Weights[0])-0.5) > 1e-6 || b.Weights[1] != 1.5 || b.Weights[2] != 1.5 {
		t.Errorf("person x class weights %v, want [0.5 1.5 1.5]", b.Weights)
	}
}
