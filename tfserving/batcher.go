package tfserving

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emotions-dev/emotions/tfgraph"
	tf "github.com/wamuir/graft/tensorflow"
	"google.golang.org/grpc/codes"
)

// BatchOptions tune how concurrent requests are merged into one session run, like TF
// Serving's --enable_batching parameters.
type BatchOptions struct {
	MaxBatchSize int           // rows per session run (a larger request runs in chunks of it)
	Timeout      time.Duration // how long the first request of a batch waits for company
	Threads      int           // session runs in flight at once
	MaxQueued    int           // requests waiting for a batch; beyond it: RESOURCE_EXHAUSTED
}

// runFunc runs one signature on whole tensors.
type runFunc func(signature string, inputs map[string]*tf.Tensor) (map[string]*tf.Tensor, error)

// batcher merges requests for the same signature and input shapes (but any number of rows)
// into one run and splits the outputs back, row ranges in request order.
type batcher struct {
	opts    BatchOptions
	run     runFunc
	queue   chan *task
	batches chan []*task
	done    sync.WaitGroup
	observe func(rows, requests int)

	runs, tasks atomic.Int64 // for tests and logs: tasks/runs is the merge ratio
}

type task struct {
	ctx       context.Context
	signature string
	key       string // signature and input shapes without the batch dimension
	inputs    map[string]rawTensor
	rows      int64
	result    chan taskResult
}

type taskResult struct {
	outputs map[string]rawTensor
	err     error
}

func newBatcher(run runFunc, opts BatchOptions, observe func(rows, requests int)) *batcher {
	if opts.MaxBatchSize < 1 {
		opts.MaxBatchSize = 1
	}
	if opts.Threads < 1 {
		opts.Threads = 1
	}
	if opts.MaxQueued < 1 {
		opts.MaxQueued = 1
	}
	b := &batcher{
		opts:    opts,
		run:     run,
		queue:   make(chan *task, opts.MaxQueued),
		batches: make(chan []*task),
		observe: observe,
	}
	b.done.Add(1 + opts.Threads)
	go b.collect()
	for i := 0; i < opts.Threads; i++ {
		go b.work()
	}
	return b
}

// close stops the batcher once every queued request is answered. No submit may follow.
func (b *batcher) close() {
	close(b.queue)
	b.done.Wait()
}

// submit queues one request and waits for its share of a batch's outputs. Every input must
// have the same first (batch) dimension. A request of more rows than a batch runs as
// batch-sized chunks (TF Serving's enable_large_batch_splitting): a session's memory grows
// with the rows of one run, so no request may choose how many that is.
func (b *batcher) submit(ctx context.Context, signature string, inputs map[string]rawTensor) (map[string]rawTensor, error) {
	rows := int64(-1)
	parts := []string{signature}
	for _, name := range sortedKeys(inputs) {
		in := inputs[name]
		if len(in.shape) == 0 {
			return nil, errorf(codes.InvalidArgument, "input %s is a scalar: inputs need a batch dimension", name)
		}
		if rows >= 0 && in.rows() != rows {
			return nil, errorf(codes.InvalidArgument, "inputs have different batch sizes (%d and %d rows)", rows, in.rows())
		}
		rows = in.rows()
		parts = append(parts, fmt.Sprintf("%s:%d:%v", name, in.dtype, in.shape[1:]))
	}
	if rows <= 0 {
		return nil, errorf(codes.InvalidArgument, "empty batch: no rows to predict")
	}
	key := strings.Join(parts, "|")
	chunk := int64(b.opts.MaxBatchSize)
	if rows <= chunk {
		t := &task{ctx: ctx, signature: signature, key: key, inputs: inputs, rows: rows, result: make(chan taskResult, 1)}
		if err := b.enqueue(t); err != nil {
			return nil, err
		}
		return b.wait(ctx, t)
	}

	// Once one chunk fails the others are not worth running: cancel skips those still queued.
	chunkCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var tasks []*task
	for from := int64(0); from < rows; from += chunk {
		to := min(from+chunk, rows)
		t := &task{ctx: chunkCtx, signature: signature, key: key, inputs: map[string]rawTensor{}, rows: to - from, result: make(chan taskResult, 1)}
		for name, in := range inputs {
			part, err := in.sliceRows(from, to)
			if err != nil {
				return nil, fmt.Errorf("input %s: %w", name, err)
			}
			t.inputs[name] = part
		}
		if err := b.enqueue(t); err != nil {
			return nil, err
		}
		tasks = append(tasks, t)
	}
	outs := map[string][]rawTensor{}
	for _, t := range tasks {
		out, err := b.wait(ctx, t)
		if err != nil {
			return nil, err
		}
		for name, o := range out {
			outs[name] = append(outs[name], o)
		}
	}
	merged := make(map[string]rawTensor, len(outs))
	for name, chunks := range outs {
		merged[name] = concatRows(chunks)
	}
	return merged, nil
}

func (b *batcher) enqueue(t *task) error {
	select {
	case b.queue <- t:
		return nil
	default:
		return errorf(codes.ResourceExhausted, "request queue is full (%d waiting, --max-queued): retry later", b.opts.MaxQueued)
	}
}

func (b *batcher) wait(ctx context.Context, t *task) (map[string]rawTensor, error) {
	select {
	case r := <-t.result:
		return r.outputs, r.err
	case <-ctx.Done():
		return nil, contextError(ctx)
	}
}

// collect groups queued tasks: a batch closes when it is full, when the timeout since its
// first task passes, or when a task that cannot join it arrives (that one starts the next).
func (b *batcher) collect() {
	defer b.done.Done()
	defer close(b.batches)
	var next *task
	for {
		first := next
		next = nil
		if first == nil {
			t, ok := <-b.queue
			if !ok {
				return
			}
			first = t
		}
		batch, rows := []*task{first}, first.rows
		timer := time.NewTimer(b.opts.Timeout)
	fill:
		for rows < int64(b.opts.MaxBatchSize) {
			select {
			case t, ok := <-b.queue:
				if !ok {
					break fill
				}
				if t.key != first.key || rows+t.rows > int64(b.opts.MaxBatchSize) {
					next = t
					break fill
				}
				batch = append(batch, t)
				rows += t.rows
			case <-timer.C:
				break fill
			}
		}
		timer.Stop()
		b.batches <- batch
	}
}

func (b *batcher) work() {
	defer b.done.Done()
	for batch := range b.batches {
		b.runBatch(batch)
	}
}

func (b *batcher) runBatch(batch []*task) {
	// A panic here would end the worker goroutine and with it the process: the batch's
	// requests get INTERNAL instead, and the worker takes the next batch.
	defer func() {
		if r := recover(); r != nil {
			err := &Error{Code: codes.Internal, Msg: fmt.Sprintf("internal error running the model (panic: %v)", r)}
			for _, t := range batch {
				select {
				case t.result <- taskResult{err: err}:
				default: // already answered
				}
			}
		}
	}()
	live := make([]*task, 0, len(batch))
	for _, t := range batch {
		if t.ctx.Err() != nil { // its client has gone: don't spend the session on it
			t.result <- taskResult{err: contextError(t.ctx)}
			continue
		}
		live = append(live, t)
	}
	if len(live) == 0 {
		return
	}
	outputs, err := b.runMerged(live)
	if err != nil {
		for _, t := range live {
			t.result <- taskResult{err: err}
		}
		return
	}
	var from int64
	for _, t := range live {
		mine := make(map[string]rawTensor, len(outputs))
		for name, out := range outputs {
			part, err := out.sliceRows(from, from+t.rows)
			if err != nil {
				mine = nil
				t.result <- taskResult{err: fmt.Errorf("output %s: %w", name, err)}
				break
			}
			mine[name] = part
		}
		if mine != nil {
			t.result <- taskResult{outputs: mine}
		}
		from += t.rows
	}
}

func (b *batcher) runMerged(tasks []*task) (map[string]rawTensor, error) {
	var rows int64
	for _, t := range tasks {
		rows += t.rows
	}
	b.runs.Add(1)
	b.tasks.Add(int64(len(tasks)))
	if b.observe != nil {
		b.observe(int(rows), len(tasks))
	}
	feeds := make(map[string]*tf.Tensor, len(tasks[0].inputs))
	// The request tensors are TensorFlow's memory, which Go's collector does not see: free
	// them when the run is done rather than when a collection happens to come.
	defer tfgraph.FreeAll(feeds)
	for name := range tasks[0].inputs {
		parts := make([]rawTensor, len(tasks))
		for i, t := range tasks {
			parts[i] = t.inputs[name]
		}
		tensor, err := concatRows(parts).tensor()
		if err != nil {
			return nil, fmt.Errorf("input %s: %w", name, err)
		}
		feeds[name] = tensor
	}
	out, err := b.run(tasks[0].signature, feeds)
	if err != nil {
		return nil, err
	}
	defer tfgraph.FreeAll(out) // fromTensor copies what it keeps
	raw := make(map[string]rawTensor, len(out))
	for name, t := range out {
		r, err := fromTensor(t)
		if err != nil {
			return nil, fmt.Errorf("output %s: %w", name, err)
		}
		if r.rows() != rows {
			return nil, fmt.Errorf("output %s has shape %v: not one row per input row (%d), cannot split it between requests", name, r.shape, rows)
		}
		raw[name] = r
	}
	return raw, nil
}

// stats reports session runs and the requests they answered so far.
func (b *batcher) stats() (runs, tasks int64) { return b.runs.Load(), b.tasks.Load() }
