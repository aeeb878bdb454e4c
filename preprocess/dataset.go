package preprocess

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"github.com/emotions-dev/emotions/savedmodel"
)

// Dataset holds the preprocessed images of a class-folder tree, in a deterministic order:
// classes in the model's order, files sorted by path within each class.
type Dataset struct {
	Classes []string
	Size    int       // crops are Size x Size x 3
	Crops   [][]uint8 // one per accepted file
	Labels  []int32   // index into Classes
	Files   []string
	Results []Result // per accepted file, parallel to Crops
	// Rejected are the files that could not be used, each with its reason.
	Rejected              []Result
	Counts                []int // accepted files per class
	FacesFound, Fallbacks int
	CacheHits             int // accepted files whose crop came from the cache
	// CacheErr is the first failure to write the cache, if any: the run is still valid,
	// only the next one will not be faster.
	CacheErr error
}

// PersonOf is the person a photo shows, from the naming convention of LFW and faces4
// (Person_Name_0001.jpg -> Person_Name): the file name without its extension and a trailing
// _NNNN. A name without that suffix is its own person.
func PersonOf(path string) string {
	name := filepath.Base(path)
	name = strings.TrimSuffix(name, filepath.Ext(name))
	if i := strings.LastIndex(name, "_"); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			return name[:i]
		}
	}
	return name
}

// LoadOptions control how files are loaded.
type LoadOptions struct {
	Workers     int    // 0 = runtime.NumCPU()
	CacheDir    string // "" = no cache
	Progress    bool   // show a progress bar (only when ProgressOut is a terminal)
	ProgressOut io.Writer
	Description string // the progress bar's label
	// AllowEmptyClasses lets a class folder be missing or empty (evaluating on a subset);
	// training needs every class, so by default that is an error.
	AllowEmptyClasses bool
}

// ErrClassMissing is wrapped by LoadClassDirs' errors for a class with no folder, an empty
// folder or no usable image, so callers can say how to accept a subset of the classes.
var ErrClassMissing = errors.New("class has no images")

// LoadClassDirs preprocesses DIR/<class>/** for the given classes (their order gives the
// labels). A subfolder of DIR that is not a class is an error naming it, as is a class
// with no usable image unless AllowEmptyClasses. Files that cannot be decoded are listed
// in Rejected and do not stop the load. Hidden files and folders (".*") are skipped, as
// are plain files directly in DIR (a README or a manifest).
func LoadClassDirs(dir string, classes []string, p *Preprocessor, o LoadOptions) (*Dataset, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read data folder: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() && !hidden(e.Name()) && !slices.Contains(classes, e.Name()) {
			return nil, fmt.Errorf("%s: folder %q is not one of the model's classes (%s)",
				dir, e.Name(), strings.Join(classes, ", "))
		}
	}
	var paths []string
	var labels []int32
	for i, class := range classes {
		files, err := listImages(filepath.Join(dir, class))
		if errors.Is(err, fs.ErrNotExist) && o.AllowEmptyClasses {
			continue
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s: no folder for class %q (expected %s): %w", dir, class, filepath.Join(dir, class), ErrClassMissing)
		}
		if err != nil {
			return nil, err
		}
		if len(files) == 0 && !o.AllowEmptyClasses {
			return nil, fmt.Errorf("%s: class folder is empty: %w", filepath.Join(dir, class), ErrClassMissing)
		}
		paths = append(paths, files...)
		for range files {
			labels = append(labels, int32(i))
		}
	}
	if o.Description == "" {
		o.Description = "preprocess " + filepath.Base(dir)
	}
	results, hits, cacheErr := loadAll(paths, p, o)
	d := &Dataset{
		Classes:  slices.Clone(classes),
		Size:     p.opts.InputSize,
		Counts:   make([]int, len(classes)),
		CacheErr: cacheErr,
	}
	for i, r := range results {
		if r.Outcome == OutcomeRejected {
			d.Rejected = append(d.Rejected, r)
			continue
		}
		d.Crops = append(d.Crops, r.Crop)
		d.Labels = append(d.Labels, labels[i])
		d.Files = append(d.Files, r.File)
		d.Results = append(d.Results, r)
		d.Counts[labels[i]]++
		if r.Outcome == OutcomeFace {
			d.FacesFound++
		} else {
			d.Fallbacks++
		}
		if hits[i] {
			d.CacheHits++
		}
	}
	if !o.AllowEmptyClasses {
		for i, n := range d.Counts {
			if n == 0 {
				return nil, fmt.Errorf("%s: none of the files of class %q could be used (first: %v): %w",
					dir, classes[i], firstRejection(d.Rejected, filepath.Join(dir, classes[i])+string(filepath.Separator)), ErrClassMissing)
			}
		}
	}
	return d, nil
}

func firstRejection(rs []Result, prefix string) error {
	for _, r := range rs {
		if strings.HasPrefix(r.File, prefix) {
			return r.Err
		}
	}
	return nil
}

func hidden(name string) bool { return strings.HasPrefix(name, ".") }

// listImages returns the non-hidden files under dir, recursively, sorted by path.
func listImages(dir string) ([]string, error) {
	if st, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !st.IsDir() {
		return nil, fmt.Errorf("%s: not a folder", dir)
	}
	var files []string
	err := filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("list %s: %w", path, unwrapPathError(err))
		}
		if path != dir && hidden(e.Name()) {
			if e.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !e.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	return files, err // WalkDir visits in lexical order
}

// LoadFiles preprocesses paths, keeping their order; failures are rejected Results.
func LoadFiles(paths []string, p *Preprocessor, o LoadOptions) []Result {
	if o.Description == "" {
		o.Description = "preprocess"
	}
	results, _, _ := loadAll(paths, p, o)
	return results
}

// loadAll runs the preprocessor over paths on o.Workers goroutines; results keep the
// order of paths whatever order the workers finish in.
func loadAll(paths []string, p *Preprocessor, o LoadOptions) (results []Result, hits []bool, cacheErr error) {
	results = make([]Result, len(paths))
	hits = make([]bool, len(paths))
	workers := o.Workers
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	bar := newProgress(len(paths), o)
	var cache *cropCache
	if o.CacheDir != "" {
		cache = openCache(o.CacheDir, p.opts.InputSize*p.opts.InputSize*3)
		defer func() {
			if err := cache.close(); err != nil {
				cacheErr = fmt.Errorf("write cache in %s: %w", o.CacheDir, err)
			}
		}()
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(workers, max(1, len(paths))); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				results[i], hits[i] = p.cachedFile(paths[i], cache)
				if bar != nil {
					bar.Add(1)
				}
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	if bar != nil {
		bar.Finish()
	}
	return results, hits, cacheErr
}

// newProgress returns a bar, or nil when it is not wanted or would only litter a log file.
func newProgress(n int, o LoadOptions) *progressbar.ProgressBar {
	out := o.ProgressOut
	if out == nil {
		out = os.Stderr
	}
	f, isFile := out.(*os.File)
	if !o.Progress || n == 0 || !isFile || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	return progressbar.NewOptions(n,
		progressbar.OptionSetWriter(out),
		progressbar.OptionSetDescription(o.Description),
		progressbar.OptionShowCount(),
		progressbar.OptionShowIts(),
		progressbar.OptionSetItsString("img"),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(out) }),
	)
}

// Normalize writes one crop (packed RGB bytes) into out as the model's float input.
// len(out) must equal len(crop).
func Normalize(crop []uint8, norm savedmodel.Normalization, out []float32) {
	if len(crop) == 0 {
		return
	}
	_ = out[len(crop)-1] // one bounds check, not one per pixel
	for i := 0; i+2 < len(crop); i += 3 {
		norm.Apply(float32(crop[i]), float32(crop[i+1]), float32(crop[i+2]), out[i:i+3])
	}
}

// Batch fills x (len(indices)*Size*Size*3) with the normalised crops at indices,
// augmented first when aug is not nil (rng then drives the augmentation).
func (d *Dataset) Batch(indices []int, norm savedmodel.Normalization, aug *Augmenter, rng *rand.Rand, x []float32) {
	n := d.Size * d.Size * 3
	var tmp []uint8
	if aug != nil {
		tmp = make([]uint8, n)
	}
	for j, i := range indices {
		crop := d.Crops[i]
		if aug != nil {
			aug.Apply(rng, crop, tmp)
			crop = tmp
		}
		Normalize(crop, norm, x[j*n:(j+1)*n])
	}
}
