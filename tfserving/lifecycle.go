package tfserving

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log"
	"path/filepath"
	"sort"
	"strconv"
	"sync"
	"time"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	pb "github.com/wamuir/graft/tensorflow/serving/apis_go_proto"
	"google.golang.org/grpc/codes"
)

// A version's way to service, as TF Serving's GetModelStatus shows it: START while its files
// are still changing (an upload in progress) or it waits to be retried, LOADING while it is
// checked, loaded and warmed up, AVAILABLE once it serves, END when its last attempt failed
// (with the error). A failed version is retried when its files change, and after a backoff
// even if they do not (at most maxRetries times, as TF Serving's --max_num_load_retries).

// clock is time as the registry sees it: tests drive it by hand.
type clock interface {
	Now() time.Time
	Sleep(time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time        { return time.Now() }
func (realClock) Sleep(d time.Duration) { time.Sleep(d) }

// maxRetryWait caps the doubling wait between attempts on unchanged files.
const maxRetryWait = 5 * time.Minute

// maxVersionFiles bounds the files of one version directory the fingerprint walks.
const maxVersionFiles = 100_000

// versionState is what the registry knows of a version on disk that does not serve.
type versionState struct {
	state    pb.ModelVersionStatus_State
	err      error     // why the last attempt failed (END)
	files    uint64    // fingerprint of the directory
	since    time.Time // when the fingerprint last changed
	failures int       // failed attempts, for the backoff
	retries  int       // failed attempts since the files last changed
	next     time.Time // no attempt before
}

// tryLoad moves version v on by one step and reports whether it now serves: its files are
// fingerprinted, and once they have not changed for the settle time (and any backoff has
// passed) it is checked, loaded and warmed up. A single --model directory is loaded at once.
func (r *registry) tryLoad(v int64) bool {
	dir := r.versionDir(v)
	now := r.clock.Now()
	files, ferr := fingerprint(dir)
	r.mu.Lock()
	st := r.pending[v]
	if st == nil {
		st = &versionState{files: files, since: now}
		r.pending[v] = st
	}
	if files != st.files || ferr != nil {
		st.files, st.since, st.retries = files, now, 0
	}
	settling := r.dir == "" && (ferr != nil || now.Sub(st.since) < r.settle)
	backingOff := st.failures > 0 && (now.Before(st.next) || st.retries > r.maxRetries)
	r.mu.Unlock()
	if settling || (backingOff && st.state != pb.ModelVersionStatus_END) {
		note := fmt.Sprintf("waiting until its files have not changed for %s", r.settle)
		if !settling {
			note = fmt.Sprintf("its files changed since its last attempt failed: next attempt in %s", st.next.Sub(now).Round(time.Millisecond))
		}
		r.setState(v, pb.ModelVersionStatus_START, nil, note)
		return false
	}
	if backingOff {
		return false
	}

	st.retries++
	r.setState(v, pb.ModelVersionStatus_LOADING, nil, fmt.Sprintf("attempt %d", st.failures+1))
	r.metrics.loadAttempts.WithLabelValues(r.name).Inc()
	start := r.clock.Now()
	s, err := r.load(dir, v)
	if err != nil {
		st.failures++
		wait := min(r.retry<<min(st.failures-1, 20), maxRetryWait)
		st.next = r.clock.Now().Add(wait)
		r.metrics.loadFailures.WithLabelValues(r.name, stageOf(err)).Inc()
		when := fmt.Sprintf("retried in %s, or when its files change", wait)
		if st.retries > r.maxRetries {
			when = fmt.Sprintf("retried when its files change (%d attempts failed on these files)", st.retries)
		}
		r.setState(v, pb.ModelVersionStatus_END, err, when)
		return false
	}
	r.log.Printf("model %s version %d: %s", r.name, v, s.describe())
	r.mu.Lock()
	r.loaded[v] = s
	delete(r.pending, v)
	r.mu.Unlock()
	r.setState(v, pb.ModelVersionStatus_AVAILABLE, nil, fmt.Sprintf("loaded from %s in %s, checked and warmed up", dir, r.clock.Now().Sub(start).Round(time.Millisecond)))
	return true
}

// setState records v's state, updates the state gauge, and logs the change (once: the same
// state with the same error is not logged again).
func (r *registry) setState(v int64, state pb.ModelVersionStatus_State, err error, note string) {
	r.mu.Lock()
	st := r.pending[v]
	same := st != nil && st.state == state && errorText(st.err) == errorText(err) && state != pb.ModelVersionStatus_LOADING
	if st != nil {
		st.state, st.err = state, err
	}
	r.mu.Unlock()
	r.metrics.setVersionState(r.name, v, state.String())
	if same {
		return
	}
	if err != nil {
		r.log.Printf("model %s version %d: %s: %v (%s)", r.name, v, state, err, note)
	} else {
		r.log.Printf("model %s version %d: %s: %s", r.name, v, state, note)
	}
}

func errorText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// forget drops what is known of versions the last sync did not look at: gone from disk, or
// older than the ones served.
func (r *registry) forget(visited map[int64]bool) {
	r.mu.Lock()
	var gone []int64
	for v := range r.pending {
		if !visited[v] {
			delete(r.pending, v)
			gone = append(gone, v)
		}
	}
	r.mu.Unlock()
	for _, v := range gone {
		r.metrics.forgetVersion(r.name, v)
	}
}

// fingerprint hashes the names, sizes, modes and times of everything under dir: any write,
// new file or rename changes it.
func fingerprint(dir string) (uint64, error) {
	h := fnv.New64a()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if n++; n > maxVersionFiles {
			return fmt.Errorf("more than %d files", maxVersionFiles)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00%d\x00", path, info.Size(), info.Mode(), info.ModTime().UnixNano())
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("version directory %s: %w", dir, err)
	}
	return h.Sum64(), nil
}

// loadError is a failed attempt with the stage it failed at (a metric label).
type loadError struct {
	stage string // incomplete, load, warmup
	code  codes.Code
	err   error
}

func (e *loadError) Error() string { return e.err.Error() }
func (e *loadError) Unwrap() error { return e.err }

func stageOf(err error) string {
	var le *loadError
	if errors.As(err, &le) {
		return le.stage
	}
	return "load"
}

// statusCode is the code GetModelStatus shows for a failed version.
func statusCode(err error) corepb.Code {
	var le *loadError
	if errors.As(err, &le) && le.code != codes.OK {
		return corepb.Code(le.code)
	}
	return corepb.Code(codeOf(err))
}

// status is TF Serving's ModelVersionStatus of version v (0: of every version known:
// served, or on its way), highest first.
func (r *registry) status(v int64) ([]*pb.ModelVersionStatus, *Error) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*pb.ModelVersionStatus
	add := func(v int64, state pb.ModelVersionStatus_State, err error) {
		st := &pb.StatusProto{ErrorCode: corepb.Code_OK}
		if err != nil {
			st = &pb.StatusProto{ErrorCode: statusCode(err), ErrorMessage: err.Error()}
		}
		out = append(out, &pb.ModelVersionStatus{Version: v, State: state, Status: st})
	}
	for version := range r.loaded {
		if v == 0 || v == version {
			add(version, pb.ModelVersionStatus_AVAILABLE, nil)
		}
	}
	for version, st := range r.pending {
		if v == 0 || v == version {
			add(version, st.state, st.err)
		}
	}
	if len(out) == 0 {
		if v != 0 {
			return nil, errorf(codes.NotFound, "model %s version %d is not on disk, or older than the ones served (served: %v)", r.name, v, r.versionsLocked())
		}
		return nil, errorf(codes.NotFound, "model %s has no version yet", r.name)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version > out[j].Version })
	return out, nil
}

// waitForSettling gives versions found at start-up the settle time they need, so New
// returns with them served when they are whole (and not a poll later). Bounded: a version
// whose files keep changing is left to the poller.
func (r *registry) waitForSettling() error {
	for range 3 {
		r.mu.RLock()
		waiting := false
		for _, st := range r.pending {
			waiting = waiting || st.state == pb.ModelVersionStatus_START
		}
		r.mu.RUnlock()
		if !waiting {
			return nil
		}
		r.clock.Sleep(r.settle)
		if err := r.sync(); err != nil {
			return err
		}
	}
	return nil
}

// runErrorLog logs a served version's failing runs at most once per runErrorEvery, with the
// count of those not logged: a version failing every request must not flood the log.
type runErrorLog struct {
	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// runErrorEvery is the least time between two log lines of one version's failing runs.
const runErrorEvery = 10 * time.Second

func (l *runErrorLog) log(logger *log.Logger, now time.Time, prefix string, err error) {
	l.mu.Lock()
	if !l.last.IsZero() && now.Sub(l.last) < runErrorEvery {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	n := l.suppressed
	l.last, l.suppressed = now, 0
	l.mu.Unlock()
	more := ""
	if n > 0 {
		more = " (and " + strconv.Itoa(n) + " more failed runs since the last line)"
	}
	logger.Printf("%s: %v%s; such failures are logged at most once every %s", prefix, err, more, runErrorEvery)
}
