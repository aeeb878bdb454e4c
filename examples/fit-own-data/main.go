// Command fit-own-data trains an emotions model from a Go program's own data: batches built in
// memory (no image folders), the seed's EarlyStopping and ModelCheckpoint, and a callback of the
// program's own. It trains 3 epochs, stops, then resumes from RUN/last for 2 more, as a job
// that was preempted would, and prints one JSON line:
//
//	{"epochs": 5, "best_epoch": 4, "val_loss": 0.61, "resumed": true}
//
// Run it after `make setup` with a model made by `emotions new-model` (any input size,
// channels and classes):
//
//	source .tflib/env.sh
//	bin/emotions new-model --backbone tiny --out runs/tiny
//	go run ./examples/fit-own-data --model runs/tiny --out runs/own-data
//
// The data stands in for a team's own pipeline (a database, a queue, its own decoding): images
// of stripes whose direction says the class, drawn from a seed. Any source works
// that implements train.Source (and train.Seeker, to resume).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/emotions-dev/emotions/preprocess"
	"github.com/emotions-dev/emotions/tfgraph"
	"github.com/emotions-dev/emotions/train"
)

func main() {
	model := flag.String("model", "", "model directory made by `emotions new-model`")
	out := flag.String("out", "", "run directory to write (best/, last/, history.json, summary.json)")
	flag.Parse()
	if *model == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: fit-own-data --model DIR --out RUN")
		os.Exit(2)
	}
	result, err := run(context.Background(), *model, *out, os.Stderr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fit-own-data:", err)
		os.Exit(1)
	}
	json.NewEncoder(os.Stdout).Encode(result)
}

// Result is the line the program prints.
type Result struct {
	Epochs    int     `json:"epochs"`
	BestEpoch int     `json:"best_epoch"`
	ValLoss   float64 `json:"val_loss"`
	Resumed   bool    `json:"resumed"`
}

// run trains 3 epochs, then resumes the stopped run for 2 more.
func run(ctx context.Context, modelDir, out string, log io.Writer) (Result, error) {
	opts := tfgraph.Options{Device: "auto", XLA: "auto"}
	m, err := tfgraph.Load(modelDir, opts)
	if err != nil {
		return Result{}, err
	}
	data := newBlobs(preprocess.InputOf(m.Meta), len(m.Meta.Classes), 7)
	valid := data.validation(96)
	if _, err := train.Fit(ctx, m, data, valid, fitOptions(out, log, 3)...); err != nil {
		m.Close()
		return Result{}, fmt.Errorf("first 3 epochs: %w", err)
	}
	m.Close()

	// Later, in another process perhaps: the run continues from RUN/last with a new source of
	// the same data (Fit seeks it to where the run stopped).
	st, err := train.LoadState(out)
	if err != nil {
		return Result{}, err
	}
	m, err = tfgraph.Load(train.LastDir(out), opts)
	if err != nil {
		return Result{}, err
	}
	defer m.Close()
	data = newBlobs(preprocess.InputOf(m.Meta), len(m.Meta.Classes), 7)
	s, err := train.Fit(ctx, m, data, valid, append(fitOptions(out, log, 5), train.WithResume(st))...)
	if err != nil {
		return Result{}, fmt.Errorf("resumed: %w", err)
	}
	res := Result{Epochs: s.EpochsRun, BestEpoch: s.BestEpoch, Resumed: true}
	if s.BestValLoss != nil {
		res.ValLoss = *s.BestValLoss
	}
	return res, nil
}

// fitOptions are the same callbacks for the first run and the resumed one: their states are
// restored by name.
func fitOptions(out string, log io.Writer, epochs int) []train.Option {
	stopping := train.DefaultEarlyStoppingConfig()
	stopping.Patience, stopping.Out = 5, log
	checkpoint := train.DefaultModelCheckpointConfig(filepath.Join(out, "best"))
	checkpoint.SaveBestOnly, checkpoint.Out = true, log
	// A callback of the program's own: here one line per epoch, where a team would push a
	// metric or send a message.
	report := train.EpochEndFunc("report", func(epoch int, logs train.EpochLogs) error {
		fmt.Fprintf(log, "epoch %d: loss %.4f, val_loss %.4f, val_accuracy %.3f\n",
			epoch+1, logs["loss"], logs["val_loss"], logs["val_accuracy"])
		return nil
	})
	return []train.Option{
		train.WithEpochs(epochs),
		train.WithRunDir(out),
		train.WithEarlyStopping(stopping),
		train.WithModelCheckpoint(checkpoint),
		train.WithCallbacks(report),
	}
}

// blobs is an endless stream of labelled images made in memory: class k is stripes at the k-th
// of evenly spaced angles, at a random phase, with noise. Batch g is drawn from (seed, g), so
// Seek can put the stream anywhere.
type blobs struct {
	in      preprocess.Input
	classes int
	seed    uint64
	next    int // the next batch's index in the stream
}

const batchSize, stepsPerEpoch = 32, 24

func newBlobs(in preprocess.Input, classes int, seed uint64) *blobs {
	return &blobs{in: in, classes: classes, seed: seed}
}

func (b *blobs) StepsPerEpoch() int { return stepsPerEpoch }

func (b *blobs) Next(ctx context.Context) (train.Batch, error) {
	if err := ctx.Err(); err != nil {
		return train.Batch{}, err
	}
	batch := b.draw(rand.New(rand.NewPCG(b.seed, uint64(b.next))), batchSize)
	b.next++
	return batch, nil
}

func (b *blobs) Seek(epoch, step int) error {
	b.next = epoch*stepsPerEpoch + step
	return nil
}

// validation is a fixed set, held as tensors.
func (b *blobs) validation(n int) train.Tensors {
	v := b.draw(rand.New(rand.NewPCG(b.seed, math.MaxUint64)), n)
	return train.Tensors{Images: v.Images, Labels: v.Labels, N: n}
}

// draw makes n images: 8-bit RGB, as a photo decoder would give them, then normalised as the
// model expects (size, channels, pixel scaling all come from its emotions.json).
func (b *blobs) draw(rng *rand.Rand, n int) train.Batch {
	h, w := b.in.Height, b.in.Width
	batch := train.Batch{Images: make([]float32, n*b.in.Values()), Labels: make([]float32, n*b.classes), N: n}
	rgb := make([]uint8, b.in.CropBytes())
	for i := range n {
		class := rng.IntN(b.classes)
		batch.Labels[i*b.classes+class] = 1
		angle := math.Pi * float64(class) / float64(b.classes)
		dx, dy := math.Cos(angle), math.Sin(angle)
		phase := 2 * math.Pi * rng.Float64()
		period := float64(min(h, w)) / 6
		for y := range h {
			for x := range w {
				along := float64(x)*dx + float64(y)*dy
				v := 128 + 90*math.Sin(2*math.Pi*along/period+phase) + 30*rng.NormFloat64()
				p := uint8(min(255, max(0, v)))
				rgb[3*(y*w+x)], rgb[3*(y*w+x)+1], rgb[3*(y*w+x)+2] = p, p, p
			}
		}
		b.in.Normalize(rgb, batch.Images[i*b.in.Values():(i+1)*b.in.Values()])
	}
	return batch
}
