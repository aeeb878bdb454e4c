package preprocess

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// Dataset holds the preprocessed images of a class-folder tree, in a deterministic order:
// classes in the model's order, files sorted by path within each class.
type Dataset struct {
	Classes       []string
	Height, Width int       // crops are Height x Width x 3 (RGB)
	Crops         [][]uint8 // one per accepted file
	Labels        []int32   // index into Classes
	Files         []string
	Results       []Result // per accepted file, parallel to Crops
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
	Workers  int    // 0 = runtime.NumCPU()
	CacheDir string // "" = no cache
	// Progress, if set, is called after each file with the count done and the total (from
	// the loading goroutines: it must be safe for concurrent use). The CLI draws its progress
	// bar with it; the package itself draws nothing.
	Progress func(done, total int)
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
	results, hits, cacheErr := loadAll(paths, p, o)
	d := &Dataset{
		Classes:  slices.Clone(classes),
		Height:   p.opts.Height,
		Width:    p.opts.Width,
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
	var done atomic.Int64
	var cache *cropCache
	if o.CacheDir != "" {
		cache = openCache(o.CacheDir, p.opts.Height*p.opts.Width*3)
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
				if o.Progress != nil {
					o.Progress(int(done.Add(1)), len(paths))
				}
			}
		}()
	}
	for i := range paths {
		next <- i
	}
	close(next)
	wg.Wait()
	return results, hits, cacheErr
}

// Batch fills x (len(indices) * in.Values()) with the crops at indices as the model's input,
// augmented first when aug is not nil (rng then drives the augmentation). in's size must be
// the dataset's.
func (d *Dataset) Batch(indices []int, in Input, aug *Augmenter, rng *rand.Rand, x []float32) {
	values := in.Values()
	var tmp []uint8
	if aug != nil {
		tmp = make([]uint8, in.CropBytes())
	}
	for j, i := range indices {
		crop := d.Crops[i]
		if aug != nil {
			aug.Apply(rng, crop, tmp)
			crop = tmp
		}
		in.Normalize(crop, x[j*values:(j+1)*values])
	}
}
