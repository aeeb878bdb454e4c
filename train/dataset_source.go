package train

import (
	"context"
	"math/rand/v2"

	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/savedmodel"
	"github.com/emotions-dev/emotions/tfgraph"
)

// streamPos is a position in the endless stream of reshuffled passes over the training set
// (Keras' flow_from_directory): pass k is a permutation derived from (seed, k), so the
// position alone is enough to resume.
type streamPos struct {
	Pass   uint64 `json:"pass"`
	Offset int    `json:"offset"`
}

// batch is one prepared training step.
type batch struct {
	x, labels, weights []float32
	n                  int
	weightSum          float64
	streamAfter        streamPos
}

// feeder prepares batches ahead of the session: while TensorFlow runs step k, a goroutine
// assembles step k+1 (normalise, augment, labels, weights), so the session never waits for Go.
type feeder struct {
	data     *preprocess.Dataset
	cfg      Config
	norm     savedmodel.Normalization
	classes  int
	aug      *preprocess.Augmenter
	weight   []float32   // per training example: its class weight times its person weight
	targets  [][]float32 // per training example: a distribution, or nil for one-hot
	perm     []int
	permPass uint64
}

func newFeeder(d *preprocess.Dataset, targets [][]float32, cfg Config, norm savedmodel.Normalization, classes int) *feeder {
	f := &feeder{data: d, targets: targets, cfg: cfg, norm: norm, classes: classes, permPass: ^uint64(0)}
	if cfg.Augment != nil {
		f.aug = preprocess.NewAugmenter(*cfg.Augment, d.Size)
	}
	classWeight := ClassWeights(d.Labels, classes, cfg.ClassWeights)
	var person []float32
	if cfg.PersonWeights {
		person = PersonWeights(d.Labels, d.Files)
	}
	f.weight = make([]float32, len(d.Labels))
	for j, c := range d.Labels {
		f.weight[j] = classWeight[c]
		if person != nil {
			f.weight[j] *= person[j]
		}
	}
	return f
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

func (f *feeder) stepsPerEpoch() int {
	n, b := len(f.data.Labels), f.cfg.BatchSize
	switch {
	case f.cfg.StepsPerEpoch > 0:
		return f.cfg.StepsPerEpoch
	case f.cfg.Remainder:
		return (n + b - 1) / b
	}
	return n / b
}

func (f *feeder) permutation(pass uint64) []int {
	if pass != f.permPass {
		rng := rand.New(rand.NewPCG(f.cfg.Seed, pass))
		f.perm = rng.Perm(len(f.data.Labels))
		f.permPass = pass
	}
	return f.perm
}

// next takes the next batch's indices from the stream. With Remainder, a batch never crosses
// a pass boundary (the last batch of a pass is partial), so every epoch is one exact pass.
func (f *feeder) next(pos streamPos) ([]int, streamPos) {
	n, b := len(f.data.Labels), f.cfg.BatchSize
	idx := make([]int, 0, b)
	for len(idx) < b {
		if pos.Offset >= n {
			pos = streamPos{Pass: pos.Pass + 1}
			if f.cfg.Remainder {
				break
			}
		}
		perm := f.permutation(pos.Pass)
		take := min(b-len(idx), n-pos.Offset)
		idx = append(idx, perm[pos.Offset:pos.Offset+take]...)
		pos.Offset += take
		if f.cfg.Remainder && pos.Offset >= n {
			pos = streamPos{Pass: pos.Pass + 1}
			break
		}
	}
	return idx, pos
}

// epoch streams the remaining steps of an epoch, one batch ahead.
func (f *feeder) epoch(ctx context.Context, pos streamPos, fromStep, steps int, globalStep uint64) chan batch {
	out := make(chan batch, 1)
	go func() {
		defer close(out)
		for s := fromStep; s < steps; s++ {
			idx, after := f.next(pos)
			pos = after
			b := f.assemble(idx, batchRNG(f.cfg.Seed, globalStep))
			b.streamAfter = after
			globalStep++
			select {
			case out <- b:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// drain lets an abandoned epoch's producer finish.
func (f *feeder) drain(ch chan batch) {
	for range ch {
	}
}

func (f *feeder) assemble(idx []int, rng *rand.Rand) batch {
	n, size := len(idx), f.data.Size
	b := batch{x: make([]float32, n*size*size*3), labels: make([]float32, n*f.classes), weights: make([]float32, n), n: n}
	f.data.Batch(idx, f.norm, f.aug, rng, b.x)
	smooth := float32(f.cfg.LabelSmoothing)
	for i, j := range idx {
		c := int(f.data.Labels[j])
		row := b.labels[i*f.classes : (i+1)*f.classes]
		for k := range row {
			row[k] = smooth / float32(f.classes)
		}
		// Keras' label smoothing applies to any y_true: (1 - s) * y + s / k.
		if f.targets != nil && f.targets[j] != nil {
			for k, p := range f.targets[j] {
				row[k] += (1 - smooth) * p
			}
		} else {
			row[c] += 1 - smooth
		}
		b.weights[i] = f.weight[j] // by the folder's class (and person), soft target or not
		b.weightSum += float64(b.weights[i])
	}
	return b
}

// evalSet is a dataset normalised once and evaluated in batches, summing as Keras' evaluate.
type evalSet struct {
	x, labels []float32
	n, size   int
	classes   int
	batch     int
}

func newEvalSet(d *preprocess.Dataset, norm savedmodel.Normalization, classes, batchSize int) *evalSet {
	n := len(d.Labels)
	e := &evalSet{x: make([]float32, n*d.Size*d.Size*3), labels: make([]float32, n*classes), n: n, size: d.Size, classes: classes, batch: batchSize}
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	d.Batch(all, norm, nil, nil, e.x)
	for i, l := range d.Labels {
		e.labels[i*classes+int(l)] = 1
	}
	return e
}

// evaluate returns the mean loss and accuracy over the whole set.
func (e *evalSet) evaluate(m *tfgraph.Model) (loss, accuracy float64, err error) {
	px := e.size * e.size * 3
	var lossSum, correct float64
	for at := 0; at < e.n; at += e.batch {
		k := min(e.batch, e.n-at)
		r, err := m.Evaluate(e.x[at*px:(at+k)*px], e.labels[at*e.classes:(at+k)*e.classes], k)
		if err != nil {
			return 0, 0, err
		}
		lossSum += r.LossSum
		correct += r.Correct
	}
	return lossSum / float64(e.n), correct / float64(e.n), nil
}
