package train

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/emotions-dev/emotions/internal/atomicfs"
	"github.com/emotions-dev/emotions/tfgraph"
)

// checkpointer writes model directories (best/, last/, EarlyStopping's scratch) without
// making the training loop wait for the disk: it takes a snapshot of the variables (cheap:
// TensorFlow shares the buffers and copies one only when a later step writes it) and writes it
// on a goroutine of its own, with the same atomic rename as a direct save. One write is in
// flight at most: a new one first waits for the previous one, so the disk is never asked to
// hold more than one extra copy and writes land in order. Models whose saver cannot be
// snapshotted are saved directly.
type checkpointer struct {
	m *tfgraph.Model

	inflight chan error // the running write's result; nil when idle
	failed   error      // the first write that failed: every later call returns it

	// snap is the latest snapshot, still equal to the session while fresh.
	snap  *tfgraph.Snapshot
	fresh bool
	// written is the latest directory written from snap with no extra files: writing the
	// same snapshot again links its files instead of writing them twice.
	written string

	blocking time.Duration // time the loop spent in save and wait
}

func newCheckpointer(m *tfgraph.Model) *checkpointer { return &checkpointer{m: m} }

// changed tells the checkpointer the session's variables changed (a step, a new learning
// rate, a restore): the next save needs a new snapshot.
func (c *checkpointer) changed() { c.fresh = false }

// save writes the session's variables and extra files as a complete model directory at dir.
// It returns once the write is under way; wait (or the next save) reports its outcome.
func (c *checkpointer) save(dir string, extra map[string][]byte) error {
	start := time.Now()
	defer func() { c.blocking += time.Since(start) }()
	if err := c.waitLocked(); err != nil {
		return err
	}
	if !c.fresh {
		snap, err := c.m.Snapshot()
		if errors.Is(err, tfgraph.ErrSnapshotUnsupported) {
			return c.m.SaveWithFiles(dir, extra)
		}
		if err != nil {
			return err
		}
		c.snap, c.fresh, c.written = snap, true, ""
	}
	snap, linkFrom := c.snap, c.written
	if extra == nil {
		c.written = dir
	}
	c.inflight = make(chan error, 1)
	go func(done chan<- error) {
		if linkFrom != "" {
			done <- linkModelDir(linkFrom, dir, extra)
			return
		}
		done <- snap.Write(dir, extra)
	}(c.inflight)
	return nil
}

// wait blocks until no write is in flight and reports a failed one.
func (c *checkpointer) wait() error {
	start := time.Now()
	defer func() { c.blocking += time.Since(start) }()
	return c.waitLocked()
}

func (c *checkpointer) waitLocked() error {
	if c.inflight != nil {
		if err := <-c.inflight; err != nil && c.failed == nil {
			c.failed = fmt.Errorf("checkpoint: %w", err)
		}
		c.inflight = nil
	}
	return c.failed
}

// linkModelDir writes dst as a copy of the model directory src (hard links: the files are
// never rewritten in place) with extra files replaced or added, atomically.
func linkModelDir(src, dst string, extra map[string][]byte) error {
	return atomicfs.WriteDir(dst, func(tmp string) error {
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
	m    *tfgraph.Model
	ckpt *checkpointer
}

func (s sessionModel) LearningRate() (float64, error) {
	st, err := s.m.State()
	return st.LearningRate, err
}

func (s sessionModel) SetLearningRate(lr float64) error {
	s.ckpt.changed() // the learning rate is a variable: snapshots no longer match
	_, err := s.m.SetLearningRate(lr)
	return err
}

func (s sessionModel) SaveWeights(dir string) error { return s.ckpt.save(dir, nil) }

func (s sessionModel) RestoreWeights(dir string) error {
	if err := s.ckpt.wait(); err != nil { // dir may be the write in flight
		return err
	}
	s.ckpt.changed()
	return s.m.Restore(dir)
}
