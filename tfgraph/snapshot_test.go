package tfgraph

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/emotions-dev/emotions/internal/testutil"
)

// A snapshot taken after a step and written while later steps run holds exactly what the
// saver would have written at that step: every checkpoint entry is equal, the directory loads
// (in Go and in Python) and predicts like the session did at the snapshot.
func TestSnapshotEqualsSaveAtTheSameStep(t *testing.T) {
	m := load(t, testutil.TinyModel(t))
	rng := rand.New(rand.NewPCG(1, 2))
	n := 8
	x := make([]float32, n*80*80*3)
	for i := range x {
		x[i] = rng.Float32()
	}
	labels := make([]float32, n*4)
	for i := 0; i < n; i++ {
		labels[i*4+i%4] = 1
	}
	if _, err := m.TrainStep(x, labels, nil, n); err != nil {
		t.Fatal(err)
	}
	before, err := m.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	saved := filepath.Join(work, "saved")
	if err := m.SaveWithFiles(saved, map[string][]byte{"note.txt": []byte("saver")}); err != nil {
		t.Fatal(err)
	}
	// Training goes on while the snapshot is written.
	done := make(chan error, 1)
	snapped := filepath.Join(work, "snapped")
	go func() { done <- snap.Write(snapped, map[string][]byte{"note.txt": []byte("snapshot")}) }()
	for range 3 {
		if _, err := m.TrainStep(x, labels, nil, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(snapped, "note.txt")); string(b) != "snapshot" {
		t.Fatalf("extra file: %q", b)
	}
	got := testutil.RunPython(t, "-c", `
import sys, numpy as np, tensorflow as tf
a, b = (tf.train.load_checkpoint(d + "/variables/variables") for d in sys.argv[1:3])
keys = sorted(a.get_variable_to_shape_map())
assert keys == sorted(b.get_variable_to_shape_map()), "different keys"
diff = [k for k in keys if k != "_CHECKPOINTABLE_OBJECT_GRAPH" and not np.array_equal(a.get_tensor(k), b.get_tensor(k))]
same_graph = a.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH") == b.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH")
tf.saved_model.load(sys.argv[2])
print(len(keys), len(diff), same_graph)`, saved, snapped)
	var keys, differing int
	var sameGraph string
	if _, err := fmt.Sscan(got, &keys, &differing, &sameGraph); err != nil || keys < 40 || differing != 0 || sameGraph != "True" {
		t.Fatalf("saver vs snapshot checkpoints (keys, differing, same object graph): %q", got)
	}
	reloaded := load(t, snapped)
	after, err := reloaded.Predict(x, n)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff(after, before); d != 0 {
		t.Fatalf("the snapshot predicts %g away from the session at the snapshot", d)
	}
}

// Snapshot.Write's own bundle writer (direct I/O) writes the files TensorFlow's SaveV2 writes
// for the same snapshot, byte for byte.
func TestSnapshotBundleIsTensorFlows(t *testing.T) {
	m := load(t, testutil.TinyModel(t))
	snap, err := m.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	work := t.TempDir()
	ours, theirs := filepath.Join(work, "ours"), filepath.Join(work, "theirs")
	if err := snap.Write(ours, nil, NoSync()); err != nil {
		t.Fatal(err)
	}
	if err := snap.Write(theirs, nil, NoSync(), viaTensorFlow()); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"variables.data-00000-of-00001", "variables.index"} {
		a, errA := os.ReadFile(filepath.Join(ours, "variables", name))
		b, errB := os.ReadFile(filepath.Join(theirs, "variables", name))
		if errA != nil || errB != nil {
			t.Fatal(errA, errB)
		}
		if !bytes.Equal(a, b) {
			t.Errorf("%s: %d bytes, TensorFlow's SaveV2 wrote %d different ones", name, len(a), len(b))
		}
	}
}
