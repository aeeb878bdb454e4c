package recipe

import (
	"context"
	"github.com/emotions-dev/emotions/train"
	"slices"
	"testing"

	"github.com/emotions-dev/emotions/preprocess"
)

// The stream is pass after pass of permutations; Seek(epoch, step) lands on exactly the batch
// sequential reading reaches there, with or without remainder batches.
func TestDatasetSourceStreamAndSeek(t *testing.T) {
	n := 10
	labels := make([]int32, n)
	for i := range labels {
		labels[i] = int32(i % 2)
	}
	d := tinyDataset(labels, nil)
	for i := range d.Crops {
		d.Crops[i][0] = uint8(i) // the image tells which example it is
	}
	a := preprocess.DefaultAugment()
	for _, remainder := range []bool{false, true} {
		cfg := DataConfig{BatchSize: 4, Seed: 3, Remainder: remainder, Augment: &a}
		read := func(src *DatasetSource, k int) []train.Batch {
			var out []train.Batch
			for range k {
				b, err := src.Next(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, train.Batch{Images: slices.Clone(b.Images), Labels: slices.Clone(b.Labels), N: b.N})
				src.Release(b)
			}
			return out
		}
		src, err := NewDatasetSource(d, tiny8, 2, cfg)
		if err != nil {
			t.Fatal(err)
		}
		steps := src.StepsPerEpoch()
		if want := map[bool]int{false: 2, true: 3}[remainder]; steps != want {
			t.Fatalf("remainder=%v: %d steps per epoch, want %d", remainder, steps, want)
		}
		seq := read(src, 4*steps)
		// Every pass of the stream visits each example once.
		var seen []int
		for _, idx := range [][]int{src.indices(0), src.indices(1), src.indices(2)} {
			seen = append(seen, idx...)
		}
		if remainder {
			slices.Sort(seen)
			for i, v := range seen {
				if v != i {
					t.Fatalf("remainder pass is not a permutation: %v", seen)
				}
			}
		} else if len(seen) != 12 {
			t.Fatalf("3 batches of 4: %d examples", len(seen))
		}
		for _, pos := range [][2]int{{0, 1}, {1, 0}, {2, 1}, {3, steps - 1}} {
			fresh, _ := NewDatasetSource(d, tiny8, 2, cfg)
			if err := fresh.Seek(pos[0], pos[1]); err != nil {
				t.Fatal(err)
			}
			got := read(fresh, 1)[0]
			want := seq[pos[0]*steps+pos[1]]
			if !slices.Equal(got.Images, want.Images) || !slices.Equal(got.Labels, want.Labels) {
				t.Fatalf("remainder=%v: seek to %v differs from reading there", remainder, pos)
			}
		}
	}
}

// The batch does not depend on how many goroutines assembled it.
func TestDatasetSourceWorkersAgree(t *testing.T) {
	labels := make([]int32, 32)
	d := tinyDataset(labels, nil)
	for i := range d.Crops {
		for j := range d.Crops[i] {
			d.Crops[i][j] = uint8(i*7 + j)
		}
	}
	a := preprocess.DefaultAugment()
	cfg := DataConfig{BatchSize: 32, Seed: 1, Augment: &a}
	var batches [][]float32
	for _, workers := range []int{1, 3, 8} {
		src, err := NewDatasetSource(d, tiny8, 2, cfg)
		if err != nil {
			t.Fatal(err)
		}
		src.workers = workers
		b, _ := src.Next(context.Background())
		batches = append(batches, b.Images)
	}
	if !slices.Equal(batches[0], batches[1]) || !slices.Equal(batches[0], batches[2]) {
		t.Fatal("the batch depends on the number of workers")
	}
}
