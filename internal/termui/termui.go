// Package termui draws the CLI's progress bars (github.com/schollz/progressbar): for
// preprocessing and for training epochs. They are drawn only on a terminal, never into a log
// file. The library packages draw nothing themselves; they call back (preprocess.LoadOptions.
// Progress, train's step hook), and this package answers.
package termui

import (
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/emotions-dev/emotions/train"
)

// IsTerminal reports whether f is a terminal.
func IsTerminal(f *os.File) bool { return f != nil && term.IsTerminal(int(f.Fd())) }

// Preprocess returns a preprocess.LoadOptions.Progress function drawing a bar labelled desc
// on out, or nil when out is not a terminal.
func Preprocess(out *os.File, desc string) func(done, total int) {
	if !IsTerminal(out) {
		return nil
	}
	var mu sync.Mutex
	var bar *progressbar.ProgressBar
	return func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		if bar == nil {
			bar = progressbar.NewOptions(total,
				progressbar.OptionSetWriter(out),
				progressbar.OptionSetDescription(desc),
				progressbar.OptionShowCount(),
				progressbar.OptionShowIts(),
				progressbar.OptionSetItsString("img"),
				progressbar.OptionThrottle(100*time.Millisecond),
				progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }),
			)
		}
		bar.Set(done)
	}
}

// EpochBar is a training callback drawing each epoch's progress with the running loss and
// accuracy and an ETA, as Keras' verbose=1 bar; nil when out is not a terminal.
func EpochBar(out *os.File, epochs int) train.Callback {
	if !IsTerminal(out) {
		return nil
	}
	return &epochBar{out: out, epochs: epochs}
}

type epochBar struct {
	out    *os.File
	epochs int
	bar    *progressbar.ProgressBar
}

func (b *epochBar) Name() string { return "ProgressBar" }

func (b *epochBar) OnStepEnd(s train.StepLogs) error {
	prefix := fmt.Sprintf("epoch %d/%d", s.Epoch+1, b.epochs)
	if b.bar == nil {
		b.bar = progressbar.NewOptions(s.Steps,
			progressbar.OptionSetWriter(b.out),
			progressbar.OptionSetDescription(prefix),
			progressbar.OptionShowCount(),
			progressbar.OptionSetPredictTime(true),
			progressbar.OptionSetWidth(24),
			progressbar.OptionClearOnFinish(),
			progressbar.OptionThrottle(0),
		)
		b.bar.Set(s.Step) // a resumed epoch starts part way
	}
	b.bar.Describe(fmt.Sprintf("%s - loss: %.4f - accuracy: %.4f", prefix, s.Loss, s.Accuracy))
	b.bar.Add(1)
	if s.Step+1 >= s.Steps {
		b.bar.Finish()
		b.bar = nil
	}
	return nil
}
