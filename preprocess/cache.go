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
)

// codeVersion is part of every cache key: bump it whenever a change to this package
// changes the crops it produces, so stale cache entries are never read.
const codeVersion = 1

// The cache keeps one small file per image, <dir>/<key[:2]>/<key>.bin, keyed by the
// SHA-256 of the file's content and of every parameter that shapes the crop (so renaming
// or moving files keeps hits, and changing options or code misses). Entries are written to
// a temporary file and renamed, so concurrent runs sharing a directory never see half an
// entry; each ends with a CRC so a corrupt entry is detected, ignored and rewritten.
// Rejections are not cached: they are cheap to find again and their messages name files.
//
// Entry layout (little endian): "EMOC", outcome byte, box x, y, w, h int32, score
// float32, crop length uint32, crop bytes, CRC-32 of all before.
var cacheMagic = []byte("EMOC")

type cacheEntry struct {
	crop    []uint8
	outcome Outcome
	face    *Box
}

func (p *Preprocessor) cacheKey(content []byte) string {
	sum := sha256.Sum256(content)
	h := sha256.New()
	h.Write([]byte(p.cacheTag))
	h.Write(sum[:])
	return hex.EncodeToString(h.Sum(nil))
}

func cachePath(dir, key string) string {
	return filepath.Join(dir, key[:2], key+".bin")
}

// readCache returns the entry for key, or false when it is absent or unusable.
func (p *Preprocessor) readCache(dir, key string) (cacheEntry, bool) {
	b, err := os.ReadFile(cachePath(dir, key))
	want := p.opts.InputSize * p.opts.InputSize * 3
	const head = 4 + 1 + 5*4 + 4
	if err != nil || len(b) != head+want+4 || !bytes.HasPrefix(b, cacheMagic) {
		return cacheEntry{}, false
	}
	if crc32.ChecksumIEEE(b[:len(b)-4]) != binary.LittleEndian.Uint32(b[len(b)-4:]) {
		return cacheEntry{}, false
	}
	if int(binary.LittleEndian.Uint32(b[head-4:])) != want {
		return cacheEntry{}, false
	}
	c := cacheEntry{crop: b[head : head+want : head+want]}
	switch b[4] {
	case 1:
		c.outcome = OutcomeFace
		u := func(i int) int { return int(int32(binary.LittleEndian.Uint32(b[5+4*i:]))) }
		c.face = &Box{X: u(0), Y: u(1), Width: u(2), Height: u(3),
			Score: math.Float32frombits(binary.LittleEndian.Uint32(b[5+16:]))}
	case 2:
		c.outcome = OutcomeFallback
	default:
		return cacheEntry{}, false
	}
	return c, true
}

// writeCache stores an entry; failures only cost a future miss, so they are returned for
// the caller to report once, not treated as fatal.
func writeCache(dir, key string, r Result) error {
	var b bytes.Buffer
	b.Write(cacheMagic)
	var box Box
	switch r.Outcome {
	case OutcomeFace:
		b.WriteByte(1)
		box = *r.Face
	case OutcomeFallback:
		b.WriteByte(2)
	default:
		return nil
	}
	for _, v := range []uint32{uint32(int32(box.X)), uint32(int32(box.Y)), uint32(int32(box.Width)),
		uint32(int32(box.Height)), math.Float32bits(box.Score), uint32(len(r.Crop))} {
		b.Write(binary.LittleEndian.AppendUint32(nil, v))
	}
	b.Write(r.Crop)
	b.Write(binary.LittleEndian.AppendUint32(nil, crc32.ChecksumIEEE(b.Bytes())))

	path := cachePath(dir, key)
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if errors.Is(err, fs.ErrNotExist) { // first entry in this shard: one mkdir, not one per entry
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		tmp, err = os.CreateTemp(filepath.Dir(path), ".tmp-*")
	}
	if err != nil {
		return err
	}
	_, err = tmp.Write(b.Bytes())
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

// cachedFile preprocesses path through the cache in dir ("" = no cache); hit reports
// whether the crop came from the cache.
func (p *Preprocessor) cachedFile(path, dir string) (r Result, hit bool, cacheErr error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return rejected(path, fmt.Errorf("%s: %w", path, unwrapPathError(err))), false, nil
	}
	if dir == "" {
		return p.Bytes(path, data), false, nil
	}
	key := p.cacheKey(data)
	if c, ok := p.readCache(dir, key); ok {
		return Result{File: path, Crop: c.crop, Outcome: c.outcome, Face: c.face}, true, nil
	}
	r = p.Bytes(path, data)
	return r, false, writeCache(dir, key, r)
}
