package preprocess

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
)

// codeVersion is part of every cache key: bump it whenever a change to this package
// changes the crops it produces, so stale cache entries are never read.
const codeVersion = 2 // 2: JPEG and WebP chroma interpolated as libjpeg-turbo and libwebp do

// The cache is a folder of pack files, each holding a batch of entries keyed by the
// SHA-256 of an image file's content and of every parameter that shapes its crop (so
// renaming or moving files keeps hits, and changing options or code misses).
//
// One file per entry cost more than the crop itself: creating, writing and renaming
// ~1,000 small files took 0.4 ms of system time per image, 15% of a cold pass over
// faces4. A run therefore collects its new entries and writes them as one pack every
// packEntries entries (so an interrupted run keeps all but the last batch), to a
// temporary file renamed into place: concurrent runs sharing the folder never see half a
// pack, and two runs computing the same entries at once at worst store them twice. Packs
// are opened only when they hold a hit, so those of other datasets and settings cost one
// index read per run, not a file descriptor. Every entry carries a CRC, so a corrupt one
// is detected and ignored; the recomputed entry goes into a new pack and is found there
// next time. Rejections are not cached: they are cheap to find again and their messages
// name files.
//
// Pack layout (little endian): "EMCP", version uint32, count uint32; count index records
// of key [32]byte, offset uint64, length uint32; CRC-32 of all before; then the entries.
// Entry layout: "EMOC", outcome byte, box x, y, w, h int32, score float32, crop length
// uint32, crop bytes, CRC-32 of all before.
var (
	packMagic  = []byte("EMCP")
	entryMagic = []byte("EMOC")
)

const (
	packVersion     = 1
	packHeadSize    = 4 + 4 + 4
	packRecordSize  = 32 + 8 + 4
	entryHeadSize   = 4 + 1 + 5*4 + 4
	packEntries     = 256      // entries per pack: what an interrupted run can lose
	packMaxBytes    = 64 << 20 // and a bound on the memory a batch holds
	packFilePattern = "pack-*.emc"
)

type cacheKey [32]byte

type cacheEntry struct {
	crop    []uint8
	outcome Outcome
	face    *Box
}

type packLocation struct {
	pack           int // index in cropCache.packs
	offset, length int64
}

// cropCache is an open cache folder for one run: the index of the packs present when it was
// opened, and the new entries waiting to be written. Safe for concurrent use.
type cropCache struct {
	dir      string
	cropSize int // bytes of one crop: entries of another size are unusable
	index    map[cacheKey][]packLocation
	packs    []string

	mu      sync.Mutex
	open    map[int]*os.File // packs opened for a hit: those of other datasets and settings stay closed
	pending []pendingEntry
	bytes   int
	err     error // the first failure to write, reported once by close
}

type pendingEntry struct {
	key   cacheKey
	entry []byte
}

func (p *Preprocessor) cacheKey(content []byte) cacheKey {
	sum := sha256.Sum256(content)
	h := sha256.New()
	h.Write([]byte(p.cacheTag))
	h.Write(sum[:])
	return cacheKey(h.Sum(nil))
}

// openCache indexes the packs in dir. Unreadable or corrupt packs are skipped: the cache
// only ever costs a miss.
func openCache(dir string, cropSize int) *cropCache {
	c := &cropCache{dir: dir, cropSize: cropSize, index: map[cacheKey][]packLocation{}, open: map[int]*os.File{}}
	names, _ := filepath.Glob(filepath.Join(dir, packFilePattern))
	for _, name := range names {
		if c.indexPack(name, len(c.packs)) {
			c.packs = append(c.packs, name)
		}
	}
	return c
}

func (c *cropCache) indexPack(name string, pack int) bool {
	f, err := os.Open(name)
	if err != nil {
		return false
	}
	defer f.Close()
	head := make([]byte, packHeadSize)
	if _, err := f.ReadAt(head, 0); err != nil || !bytes.HasPrefix(head, packMagic) ||
		binary.LittleEndian.Uint32(head[4:]) != packVersion {
		return false
	}
	n := int64(binary.LittleEndian.Uint32(head[8:]))
	st, err := f.Stat()
	if err != nil || packHeadSize+n*packRecordSize+4 > st.Size() {
		return false
	}
	b := make([]byte, packHeadSize+n*packRecordSize+4)
	if _, err := f.ReadAt(b, 0); err != nil {
		return false
	}
	if crc32.ChecksumIEEE(b[:len(b)-4]) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return false
	}
	for i := int64(0); i < n; i++ {
		r := b[packHeadSize+i*packRecordSize:][:packRecordSize]
		key := cacheKey(r[:32])
		loc := packLocation{pack: pack, offset: int64(binary.LittleEndian.Uint64(r[32:])),
			length: int64(binary.LittleEndian.Uint32(r[40:]))}
		c.index[key] = append(c.index[key], loc)
	}
	return true
}

// get returns the entry for key, or false when it is absent or every copy is unusable.
func (c *cropCache) get(key cacheKey) (cacheEntry, bool) {
	for _, loc := range c.index[key] {
		if loc.length != int64(entryHeadSize+c.cropSize+4) {
			continue
		}
		f, err := c.openPack(loc.pack)
		if err != nil {
			continue
		}
		b := make([]byte, loc.length)
		if _, err := f.ReadAt(b, loc.offset); err != nil {
			continue
		}
		if e, ok := decodeEntry(b, c.cropSize); ok {
			return e, true
		}
	}
	return cacheEntry{}, false
}

// openPack returns pack i, opened on its first hit and kept open until close.
func (c *cropCache) openPack(i int) (*os.File, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if f, ok := c.open[i]; ok {
		return f, nil
	}
	f, err := os.Open(c.packs[i])
	if err != nil {
		return nil, err
	}
	c.open[i] = f
	return f, nil
}

func decodeEntry(b []byte, cropSize int) (cacheEntry, bool) {
	if len(b) != entryHeadSize+cropSize+4 || !bytes.HasPrefix(b, entryMagic) ||
		crc32.ChecksumIEEE(b[:len(b)-4]) != binary.LittleEndian.Uint32(b[len(b)-4:]) ||
		int(binary.LittleEndian.Uint32(b[entryHeadSize-4:])) != cropSize {
		return cacheEntry{}, false
	}
	e := cacheEntry{crop: b[entryHeadSize : entryHeadSize+cropSize : entryHeadSize+cropSize]}
	switch b[4] {
	case 1:
		e.outcome = OutcomeFace
		u := func(i int) int { return int(int32(binary.LittleEndian.Uint32(b[5+4*i:]))) }
		e.face = &Box{X: u(0), Y: u(1), Width: u(2), Height: u(3),
			Score: math.Float32frombits(binary.LittleEndian.Uint32(b[5+16:]))}
	case 2:
		e.outcome = OutcomeFallback
	case 3:
		e.outcome = OutcomeCenter
	case 4:
		e.outcome = OutcomeWhole
	default:
		return cacheEntry{}, false
	}
	return e, true
}

func encodeEntry(r Result) []byte {
	b := make([]byte, 0, entryHeadSize+len(r.Crop)+4)
	b = append(b, entryMagic...)
	var box Box
	switch r.Outcome {
	case OutcomeFace:
		b = append(b, 1)
		box = *r.Face
	case OutcomeCenter:
		b = append(b, 3)
	case OutcomeWhole:
		b = append(b, 4)
	default:
		b = append(b, 2)
	}
	for _, v := range []uint32{uint32(int32(box.X)), uint32(int32(box.Y)), uint32(int32(box.Width)),
		uint32(int32(box.Height)), math.Float32bits(box.Score), uint32(len(r.Crop))} {
		b = binary.LittleEndian.AppendUint32(b, v)
	}
	b = append(b, r.Crop...)
	return binary.LittleEndian.AppendUint32(b, crc32.ChecksumIEEE(b))
}

// put queues a new entry and writes a pack when enough are waiting.
func (c *cropCache) put(key cacheKey, r Result) {
	if r.Outcome == OutcomeRejected {
		return
	}
	e := encodeEntry(r)
	c.mu.Lock()
	c.pending = append(c.pending, pendingEntry{key, e})
	c.bytes += len(e)
	var batch []pendingEntry
	if len(c.pending) >= packEntries || c.bytes >= packMaxBytes {
		batch, c.pending, c.bytes = c.pending, nil, 0
	}
	c.mu.Unlock()
	if batch != nil {
		c.record(c.writePack(batch)) // outside the lock: the other workers go on
	}
}

func (c *cropCache) record(err error) {
	if err != nil {
		c.mu.Lock()
		if c.err == nil {
			c.err = err
		}
		c.mu.Unlock()
	}
}

// close writes the entries still waiting and releases the packs. The error is the first
// failure to write: the run's results are valid, only the next run will not be faster.
func (c *cropCache) close() error {
	c.mu.Lock()
	batch := c.pending
	c.pending, c.bytes = nil, 0
	c.mu.Unlock()
	if len(batch) > 0 {
		c.record(c.writePack(batch))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, f := range c.open {
		f.Close()
	}
	c.open = nil
	return c.err
}

// writePack writes entries as one pack, atomically. Its name comes from its keys, so it
// cannot replace a pack holding other entries.
func (c *cropCache) writePack(entries []pendingEntry) error {
	index := make([]byte, 0, packHeadSize+len(entries)*packRecordSize+4)
	index = append(index, packMagic...)
	index = binary.LittleEndian.AppendUint32(index, packVersion)
	index = binary.LittleEndian.AppendUint32(index, uint32(len(entries)))
	offset := int64(cap(index))
	names := sha256.New()
	for _, e := range entries {
		index = append(index, e.key[:]...)
		index = binary.LittleEndian.AppendUint64(index, uint64(offset))
		index = binary.LittleEndian.AppendUint32(index, uint32(len(e.entry)))
		offset += int64(len(e.entry))
		names.Write(e.key[:])
	}
	index = binary.LittleEndian.AppendUint32(index, crc32.ChecksumIEEE(index))

	tmp, err := os.CreateTemp(c.dir, ".tmp-*")
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(c.dir, 0o755); err != nil {
			return err
		}
		tmp, err = os.CreateTemp(c.dir, ".tmp-*")
	}
	if err != nil {
		return err
	}
	_, err = tmp.Write(index)
	for _, e := range entries {
		if err == nil {
			_, err = tmp.Write(e.entry)
		}
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		name := fmt.Sprintf("pack-%s.emc", hex.EncodeToString(names.Sum(nil)[:12]))
		err = os.Rename(tmp.Name(), filepath.Join(c.dir, name))
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// cachedFile preprocesses path through cache (nil = no cache); hit reports whether the
// crop came from the cache.
func (p *Preprocessor) cachedFile(path string, cache *cropCache) (r Result, hit bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return rejected(path, fmt.Errorf("%s: %w", path, unwrapPathError(err))), false
	}
	if cache == nil {
		return p.Bytes(path, data), false
	}
	key := p.cacheKey(data)
	if c, ok := cache.get(key); ok {
		return Result{File: path, Crop: c.crop, Outcome: c.outcome, Face: c.face}, true
	}
	r = p.Bytes(path, data)
	cache.put(key, r)
	return r, false
}
