package train

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/emotions-dev/emotions/internal/atomicfs"
	"github.com/emotions-dev/emotions/tfgraph"
)

// checkpointer writes model directories (best/, last/, EarlyStopping's scratch) and the run's
// small files without making the training loop wait for the disk. A save takes a snapshot of
// the variables (cheap: TensorFlow shares the buffers and copies one only when a later step
// writes it) and queues the write for a goroutine of its own, which writes in order, each with
// the same atomic rename as a direct save. Saves of the same snapshot (best/ then last/ at the
// end of an epoch) queue without waiting; a new snapshot first waits until the previous one is
// written, so at most one extra copy of the weights is ever held. Models whose saver cannot be
// snapshotted are saved directly.
type checkpointer struct {
	m Trainable

	jobs    chan func() error
	pending int        // queued jobs not yet done
	done    chan error // one result per finished job
	failed  error      // the first job that failed: every later call returns it

	// snap is the latest snapshot, still equal to the session while fresh.
	snap  *tfgraph.Snapshot
	fresh bool
	// written is the latest directory written (or queued) from snap with no extra files:
	// writing the same snapshot again links its files instead of writing them twice.
	written string
	// lastVolatile is the latest write of snap made without fsync (its directory and extra
	// files): the same save again needs no write, and a durable one only the fsyncs.
	lastVolatile *volatileWrite
	// volatile holds the directories whose latest write was not fsynced: close makes them
	// durable, so a run that ends, however it ends, leaves nothing only in the page cache.
	volatile map[string]bool

	blocking time.Duration // time the loop spent waiting in save, wait and flush
}

func newCheckpointer(m Trainable) *checkpointer { return &checkpointer{m: m} }

// changed tells the checkpointer the session's variables are about to change (a step, a
// restore): the next save needs a new snapshot, and the current one is freed as soon as its
// writes are done, by the writing goroutine if they are still running. The sooner the better:
// while the snapshot shares a variable's buffer, the step that updates the variable first
// copies it, and both copies are held at once.
func (c *checkpointer) changed() {
	c.fresh = false
	if c.snap == nil {
		return
	}
	c.collect(false)
	if snap := c.snap; c.pending == 0 {
		snap.Release()
	} else {
		c.queue(func() error { snap.Release(); return nil }) // after the writes queued before it
	}
	c.snap, c.written, c.lastVolatile = nil, "", nil
}

// learningRateChanged keeps a fresh snapshot fresh when only the learning rate changed.
func (c *checkpointer) learningRateChanged() {
	if !c.fresh {
		return
	}
	snap, err := c.snap.RefreshLearningRate()
	if err != nil {
		c.changed() // the next save takes a new snapshot
		return
	}
	c.snap, c.written, c.lastVolatile = snap, "", nil
}

// makeDurable is tfgraph.MakeDurable, replaceable by tests.
var makeDurable = tfgraph.MakeDurable

type volatileWrite struct {
	dir   string
	extra map[string][]byte
}

func (v *volatileWrite) same(dir string, extra map[string][]byte) bool {
	if v == nil || v.dir != dir || len(v.extra) != len(extra) {
		return false
	}
	for name, content := range extra {
		if old, ok := v.extra[name]; !ok || !bytes.Equal(old, content) {
			return false
		}
	}
	return true
}

// save writes the session's variables and extra files as a complete model directory at dir.
// It returns once the write is queued; wait reports its outcome. A durable save is fsynced
// before it replaces dir; a volatile one is not (atomicfs.WriteDirNoSync: safe against the
// process dying, not against a power cut), which is how the resume state is rewritten every
// epoch without the fsync's cost.
func (c *checkpointer) save(dir string, extra map[string][]byte, durable bool) error {
	start := time.Now()
	defer func() { c.blocking += time.Since(start) }()
	if c.failed != nil {
		return c.failed
	}
	if !c.fresh {
		if err := c.drain(); err != nil { // the previous snapshot's writes, and its release, come first
			return err
		}
		snap, err := c.m.Snapshot()
		if errors.Is(err, tfgraph.ErrSnapshotUnsupported) {
			return c.m.SaveWithFiles(dir, extra)
		}
		if err != nil {
			return err
		}
		c.snap, c.fresh, c.written, c.lastVolatile = snap, true, "", nil
	}
	if c.lastVolatile.same(dir, extra) {
		// The same state is already there (the end of a run saving again what its last
		// epoch saved): at most the fsyncs are missing.
		if durable {
			c.lastVolatile = nil
			delete(c.volatile, dir)
			c.queue(func() error { return makeDurable(dir) })
		}
		return nil
	}
	snap, linkFrom := c.snap, c.written
	if extra == nil {
		c.written = dir
	}
	if durable {
		delete(c.volatile, dir)
		c.lastVolatile = nil
	} else {
		if c.volatile == nil {
			c.volatile = map[string]bool{}
		}
		c.volatile[dir] = true
		c.lastVolatile = &volatileWrite{dir: dir, extra: extra}
	}
	c.queue(func() error {
		if linkFrom != "" {
			return linkModelDir(linkFrom, dir, extra, durable)
		}
		if durable {
			return snap.Write(dir, extra)
		}
		return snap.Write(dir, extra, tfgraph.NoSync())
	})
	return nil
}

// writeFile queues an atomic write of a small file (history.json) behind the model writes.
func (c *checkpointer) writeFile(path string, content []byte) {
	c.queue(func() error { return atomicfs.WriteFile(path, content, 0o644) })
}

func (c *checkpointer) queue(job func() error) {
	if c.jobs == nil {
		c.jobs, c.done = make(chan func() error, 64), make(chan error, 64)
		go func(jobs <-chan func() error, done chan<- error) {
			for job := range jobs {
				done <- job()
			}
		}(c.jobs, c.done)
	}
	c.collect(false)
	c.pending++
	c.jobs <- job
}

// collect takes the results of finished jobs; with block, it waits for all of them.
func (c *checkpointer) collect(block bool) {
	for c.pending > 0 {
		var err error
		if block {
			err = <-c.done
		} else {
			select {
			case err = <-c.done:
			default:
				return
			}
		}
		c.pending--
		if err != nil && c.failed == nil {
			c.failed = fmt.Errorf("checkpoint: %w", err)
		}
	}
}

func (c *checkpointer) drain() error {
	c.collect(true)
	return c.failed
}

// wait blocks until every queued write is done and reports a failed one.
func (c *checkpointer) wait() error {
	start := time.Now()
	defer func() { c.blocking += time.Since(start) }()
	return c.drain()
}

// close makes the volatile writes durable, waits for the queue, stops the writing goroutine
// and frees the last snapshot.
func (c *checkpointer) close() error {
	for _, dir := range slices.Sorted(maps.Keys(c.volatile)) {
		c.queue(func() error { return makeDurable(dir) })
	}
	c.volatile = nil
	err := c.wait()
	if c.jobs != nil {
		close(c.jobs)
		c.jobs = nil
	}
	c.snap.Release()
	c.snap, c.fresh = nil, false
	return err
}

// linkModelDir writes dst as a copy of the model directory src (hard links: the files are
// never rewritten in place) with extra files replaced or added, atomically.
func linkModelDir(src, dst string, extra map[string][]byte, durable bool) error {
	return atomicfs.DirWriter(durable)(dst, func(tmp string) error {
		if err := atomicfs.LinkTree(src, tmp); err != nil {
			return err
		}
		for name, content := range extra {
			p := filepath.Join(tmp, name)
			os.Remove(p) // a link to src's copy: never write through it
			if err := os.WriteFile(p, content, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
}

// sessionModel is the Model callbacks act on: the session, saved through the checkpointer.
type sessionModel struct {
	m    Trainable
	ckpt *checkpointer
}

func (s sessionModel) LearningRate() (float64, error) {
	st, err := s.m.State()
	return st.LearningRate, err
}

func (s sessionModel) SetLearningRate(lr float64) error {
	_, err := s.m.SetLearningRate(lr)
	s.ckpt.learningRateChanged()
	return err
}

// MetricDirection gives Keras' auto mode a generic model's metric directions from its
// metadata (what Keras reads from model.metrics); the image classifier's are Keras' built-ins.
func (s sessionModel) MetricDirection(name string) (Mode, bool) {
	if !s.m.Metadata().Generic() {
		d, ok := KerasMetricDirections[name]
		return d, ok
	}
	switch s.m.Metadata().Monitor[name] {
	case "min":
		return ModeMin, true
	case "max":
		return ModeMax, true
	}
	return "", false
}

// SaveWeights is a durable save: best/ is what the run is for.
func (s sessionModel) SaveWeights(dir string) error { return s.ckpt.save(dir, nil, true) }

func (s sessionModel) RestoreWeights(dir string) error {
	if err := s.ckpt.wait(); err != nil { // dir may be a write still queued
		return err
	}
	s.ckpt.changed()
	return s.m.Restore(dir)
}
