package train

import (
	"fmt"
	"io"

	"github.com/schollz/progressbar/v3"
)

// epochBar is the per-epoch progress bar with running loss/accuracy and ETA; a no-op when
// there is no terminal to draw on.
type epochBar struct {
	bar    *progressbar.ProgressBar
	prefix string
}

func newEpochBar(w io.Writer, epoch, epochs, steps int) epochBar {
	if w == nil {
		return epochBar{}
	}
	prefix := fmt.Sprintf("epoch %d/%d", epoch+1, epochs)
	return epochBar{prefix: prefix, bar: progressbar.NewOptions(steps,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(prefix),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionSetWidth(24),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionThrottle(0),
	)}
}

func (b epochBar) step(p partialEpoch) {
	if b.bar == nil {
		return
	}
	loss, acc := p.means()
	b.bar.Describe(fmt.Sprintf("%s - loss: %.4f - accuracy: %.4f", b.prefix, loss, acc))
	b.bar.Add(1)
}

func (b epochBar) finish() {
	if b.bar != nil {
		b.bar.Finish()
	}
}
