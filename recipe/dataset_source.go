package recipe

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"

	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/train"
)

// DataConfig is how a DatasetSource turns a preprocessed dataset into training batches.
// The zero value plus a batch size is plain shuffled batches with one-hot labels.
type DataConfig struct {
	BatchSize int `json:"batch_size"`
	// StepsPerEpoch, if > 0, fixes the epoch length; else it is n // BatchSize, as the seed's
	// fit did (n/BatchSize rounded up with Remainder).
	StepsPerEpoch int `json:"steps_per_epoch"`
	// Remainder makes each epoch one pass over the data whose last batch is partial, instead
	// of full batches drawn from an endless stream (Keras' flow_from_directory).
	Remainder bool                `json:"remainder"`
	Seed      uint64              `json:"seed"`
	Augment   *preprocess.Augment `json:"augment,omitempty"`
	// ClassWeights is "" (all 1) or "balanced": n / (k * n_class), for scarce classes.
	ClassWeights string `json:"class_weights"`
	// PersonWeights makes every person within a class weigh the same, however many photos
	// of them there are (the person from the file name: preprocess.PersonOf), so that 9
	// people with 16 photos each do not outweigh 10 people with one.
	PersonWeights  bool    `json:"person_weights,omitempty"`
	LabelSmoothing float64 `json:"label_smoothing"` // as Keras' CategoricalCrossentropy(label_smoothing)
	// Targets, if not nil, holds a distribution over the classes for each example (parallel
	// to the dataset's Labels; nil rows keep the one-hot label): see SoftTargets.
	Targets [][]float32 `json:"-"`
}

// DatasetSource is the train.Source of a preprocessed class-folder dataset: an endless stream of
// reshuffled passes (Keras' flow_from_directory), class/person weights, label smoothing,
// soft targets and seeded augmentation. Batch g of the stream depends only on the seed and
// g, so Seek can put it anywhere: a resumed run sees exactly the batches an uninterrupted
// one would have.
type DatasetSource struct {
	data    *preprocess.Dataset
	cfg     DataConfig
	input   preprocess.Input
	classes int
	aug     *preprocess.Augmenter
	weight  []float32 // per example: its class weight times its person weight
	steps   int

	step     uint64 // global index of the next batch
	perm     []int
	permPass uint64
	buffers  sync.Pool
	workers  int
}

var (
	_ train.Source   = (*DatasetSource)(nil)
	_ train.Seeker   = (*DatasetSource)(nil)
	_ train.Releaser = (*DatasetSource)(nil)
)

// NewDatasetSource checks d against the model's input and class count and prepares the
// per-example weights.
func NewDatasetSource(d *preprocess.Dataset, in preprocess.Input, classes int, cfg DataConfig) (*DatasetSource, error) {
	if err := checkDataset(d, in, classes); err != nil {
		return nil, err
	}
	switch {
	case cfg.BatchSize < 1:
		return nil, fmt.Errorf("batch size %d: want >= 1", cfg.BatchSize)
	case cfg.StepsPerEpoch < 0:
		return nil, fmt.Errorf("steps per epoch %d: want >= 0", cfg.StepsPerEpoch)
	case cfg.ClassWeights != "" && cfg.ClassWeights != "balanced":
		return nil, fmt.Errorf("class weights %q: want balanced or nothing", cfg.ClassWeights)
	case cfg.LabelSmoothing < 0 || cfg.LabelSmoothing >= 1:
		return nil, fmt.Errorf("label smoothing %g: want 0 <= s < 1", cfg.LabelSmoothing)
	case len(d.Labels) == 0:
		return nil, fmt.Errorf("the training set is empty")
	case !cfg.Remainder && cfg.StepsPerEpoch == 0 && len(d.Labels) < cfg.BatchSize:
		return nil, fmt.Errorf("%d training images make no full batch of %d: lower the batch size or use a remainder batch",
			len(d.Labels), cfg.BatchSize)
	}
	if cfg.Targets != nil && len(cfg.Targets) != len(d.Labels) {
		return nil, fmt.Errorf("%d soft targets for %d training images", len(cfg.Targets), len(d.Labels))
	}
	for i, t := range cfg.Targets {
		if t != nil && len(t) != classes {
			return nil, fmt.Errorf("%s: soft target of %d classes, the model has %d", d.Files[i], len(t), classes)
		}
	}
	s := &DatasetSource{data: d, cfg: cfg, input: in, classes: classes, permPass: ^uint64(0),
		workers: max(1, min(runtime.GOMAXPROCS(0), cfg.BatchSize/8))}
	if cfg.Augment != nil {
		s.aug = preprocess.NewAugmenter(*cfg.Augment, in.Width, in.Height)
	}
	classWeight := ClassWeights(d.Labels, classes, cfg.ClassWeights)
	var person []float32
	if cfg.PersonWeights {
		person = PersonWeights(d.Labels, d.Files)
	}
	s.weight = make([]float32, len(d.Labels))
	for j, c := range d.Labels {
		s.weight[j] = classWeight[c]
		if person != nil {
			s.weight[j] *= person[j]
		}
	}
	n, b := len(d.Labels), cfg.BatchSize
	switch {
	case cfg.StepsPerEpoch > 0:
		s.steps = cfg.StepsPerEpoch
	case cfg.Remainder:
		s.steps = (n + b - 1) / b
	default:
		s.steps = n / b
	}
	return s, nil
}

// checkDataset refuses a dataset that does not fit the model, before any training.
func checkDataset(d *preprocess.Dataset, in preprocess.Input, classes int) error {
	if d == nil {
		return fmt.Errorf("no dataset")
	}
	if err := in.Validate(); err != nil {
		return err
	}
	if len(d.Classes) != classes {
		return fmt.Errorf("data has %d classes %v, the model %d", len(d.Classes), d.Classes, classes)
	}
	if d.Height != in.Height || d.Width != in.Width {
		return fmt.Errorf("data holds %dx%d crops, the model takes %dx%d images", d.Width, d.Height, in.Width, in.Height)
	}
	for i, l := range d.Labels {
		if l < 0 || int(l) >= classes {
			return fmt.Errorf("example %d has label %d of %d classes", i, l, classes)
		}
	}
	return nil
}

// StepsPerEpoch is the number of batches in an epoch.
func (s *DatasetSource) StepsPerEpoch() int { return s.steps }

// Seek makes the next batch the one of (epoch, step).
func (s *DatasetSource) Seek(epoch, step int) error {
	if epoch < 0 || step < 0 {
		return fmt.Errorf("seek to epoch %d step %d", epoch, step)
	}
	s.step = uint64(epoch)*uint64(s.steps) + uint64(step)
	return nil
}

// Next assembles the next batch: normalised (augmented) images, labels and weights.
func (s *DatasetSource) Next(ctx context.Context) (train.Batch, error) {
	if err := ctx.Err(); err != nil {
		return train.Batch{}, err
	}
	idx := s.indices(s.step)
	b := s.assemble(idx, s.step)
	s.step++
	return b, nil
}

// Release takes back a batch Fit is done with: its buffers serve a later batch.
func (s *DatasetSource) Release(b train.Batch) {
	s.buffers.Put(&b)
}

// indices are the examples of stream batch g. The stream is pass after pass of the data,
// each pass a permutation derived from (seed, pass); without Remainder batches run across
// pass boundaries, so batch g starts at element g*BatchSize of the stream; with Remainder
// each pass is ceil(n / BatchSize) batches, the last one partial.
func (s *DatasetSource) indices(g uint64) []int {
	n, b := uint64(len(s.data.Labels)), uint64(s.cfg.BatchSize)
	idx := make([]int, 0, b)
	if s.cfg.Remainder {
		perPass := (n + b - 1) / b
		pass, at := g/perPass, (g%perPass)*b
		return append(idx, s.permutation(pass)[at:min(at+b, n)]...)
	}
	for start := g * b; uint64(len(idx)) < b; {
		pass, at := start/n, start%n
		take := min(b-uint64(len(idx)), n-at)
		idx = append(idx, s.permutation(pass)[at:at+take]...)
		start += take
	}
	return idx
}

func (s *DatasetSource) permutation(pass uint64) []int {
	if pass != s.permPass {
		rng := rand.New(rand.NewPCG(s.cfg.Seed, pass))
		s.perm = rng.Perm(len(s.data.Labels))
		s.permPass = pass
	}
	return s.perm
}

// assemble builds the batch of examples idx, spreading the image work over the cores (on a
// GPU machine the host must keep up with thousands of images a second). Each image's
// augmentation draws from its own generator, derived from the seed, the batch's stream index
// and the image's place in it, so the result does not depend on the number of workers.
func (s *DatasetSource) assemble(idx []int, g uint64) train.Batch {
	n := len(idx)
	b := s.buffer(n)
	values := s.input.Values()
	var wg sync.WaitGroup
	per := (n + s.workers - 1) / s.workers
	for w := 0; w < n; w += per {
		wg.Add(1)
		go func(from, to int) {
			defer wg.Done()
			var tmp []uint8
			if s.aug != nil {
				tmp = make([]uint8, s.input.CropBytes())
			}
			for i := from; i < to; i++ {
				crop := s.data.Crops[idx[i]]
				if s.aug != nil {
					s.aug.Apply(imageRNG(s.cfg.Seed, g, i), crop, tmp)
					crop = tmp
				}
				s.input.Normalize(crop, b.Images[i*values:(i+1)*values])
			}
		}(w, min(n, w+per))
	}
	smooth := float32(s.cfg.LabelSmoothing)
	k := s.classes
	for i, j := range idx {
		row := b.Labels[i*k : (i+1)*k]
		for c := range row {
			row[c] = smooth / float32(k)
		}
		// Keras' label smoothing applies to any y_true: (1 - s) * y + s / k.
		if s.cfg.Targets != nil && s.cfg.Targets[j] != nil {
			for c, p := range s.cfg.Targets[j] {
				row[c] += (1 - smooth) * p
			}
		} else {
			row[s.data.Labels[j]] += 1 - smooth
		}
		b.Weights[i] = s.weight[j] // by the folder's class (and person), soft target or not
	}
	wg.Wait()
	return b
}

// buffer returns a batch of n images, reusing released buffers.
func (s *DatasetSource) buffer(n int) train.Batch {
	values := s.input.Values()
	if old, ok := s.buffers.Get().(*train.Batch); ok && cap(old.Images) >= n*values && cap(old.Labels) >= n*s.classes && cap(old.Weights) >= n {
		return train.Batch{Images: old.Images[:n*values], Labels: old.Labels[:n*s.classes], Weights: old.Weights[:n], N: n}
	}
	full := max(n, s.cfg.BatchSize)
	return train.Batch{Images: make([]float32, full*values)[:n*values], Labels: make([]float32, full*s.classes)[:n*s.classes],
		Weights: make([]float32, full)[:n], N: n}
}

// imageRNG is the augmentation randomness of image i of stream batch g.
func imageRNG(seed, g uint64, i int) *rand.Rand {
	return rand.New(rand.NewPCG(seed^0x9e3779b97f4a7c15, g<<16|uint64(i)))
}

// DatasetValidation normalises a dataset once, in memory, as validation (or test) data.
func DatasetValidation(d *preprocess.Dataset, in preprocess.Input, classes int) (train.Tensors, error) {
	if err := checkDataset(d, in, classes); err != nil {
		return train.Tensors{}, err
	}
	n := len(d.Labels)
	t := train.Tensors{Images: make([]float32, n*in.Values()), Labels: make([]float32, n*classes), N: n}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	d.Batch(all, in, nil, nil, t.Images)
	for i, l := range d.Labels {
		t.Labels[i*classes+int(l)] = 1
	}
	return t, nil
}

// PersonWeights gives each example n_c / (P_c * m_p): within class c (n_c photos of P_c
// people) the m_p photos of one person share what one person is worth, so every person
// weighs n_c / P_c and the class keeps its total n_c (class weights apply on top).
func PersonWeights(labels []int32, files []string) []float32 {
	type key struct {
		class  int32
		person string
	}
	keys := make([]key, len(labels))
	photos := map[key]int{}
	people := map[int32]int{}
	perClass := map[int32]int{}
	for j, c := range labels {
		keys[j] = key{class: c} // a dataset without file names is one person a class
		if j < len(files) {
			keys[j].person = preprocess.PersonOf(files[j])
		}
		if photos[keys[j]] == 0 {
			people[c]++
		}
		photos[keys[j]]++
		perClass[c]++
	}
	w := make([]float32, len(labels))
	for j, k := range keys {
		w[j] = float32(float64(perClass[k.class]) / float64(people[k.class]*photos[k]))
	}
	return w
}

// ClassWeights gives each class a sample weight: all 1, or "balanced" n / (k * n_c) as
// scikit-learn and Keras' examples compute it, so scarce classes (angry, sad) weigh more.
func ClassWeights(labels []int32, classes int, mode string) []float32 {
	w := make([]float32, classes)
	counts := make([]int, classes)
	for _, l := range labels {
		counts[l]++
	}
	for c := range w {
		w[c] = 1
		if mode == "balanced" && counts[c] > 0 {
			w[c] = float32(float64(len(labels)) / float64(classes*counts[c]))
		}
	}
	return w
}
