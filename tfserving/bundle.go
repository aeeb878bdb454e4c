package tfserving

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"

	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// A version's checkpoint is a TensorFlow tensor bundle: variables.index, a LevelDB-format
// table (https://github.com/google/leveldb/blob/main/doc/table_format.md) mapping each
// tensor's name to where its bytes lie in the variables.data-SSSSS-of-NNNNN shards. Reading
// it lets a version whose shards are still being copied be told from a complete one without
// loading it (TensorFlow would load a SavedModel with no variables/ at all, and fail every
// request after). TensorFlow's BundleWriter writes the table uncompressed, with the default
// block layout; the reader takes nothing else and trusts no length it reads.

// maxIndexBytes bounds variables.index: ~100 bytes per tensor, so ~40 KB for InceptionResNetV2.
const maxIndexBytes = 64 << 20

// maxShards bounds the shard count an index may declare (TensorFlow writes one per device).
const maxShards = 1 << 16

const (
	tableFooterLen  = 48 // two block handles (up to 20 bytes each) padded to 40, then the magic
	tableMagic      = 0xdb4775248b80fb57
	blockTrailerLen = 5 // compression type, masked crc32c
	noCompression   = 0
	crcMaskDelta    = 0xa282ead8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// maskedCRC is LevelDB's and TFRecord's stored form of a crc32c.
func maskedCRC(b ...[]byte) uint32 {
	var c uint32
	for _, p := range b {
		c = crc32.Update(c, castagnoli, p)
	}
	return (c>>15 | c<<17) + crcMaskDelta
}

// bundleExtent is what an index says the shards must hold: their count and, per shard, the
// bytes its entries reach up to.
type bundleExtent struct {
	numShards int
	shardEnd  map[int]int64
}

// readBundleIndex parses a variables.index.
func readBundleIndex(b []byte) (bundleExtent, error) {
	var ext bundleExtent
	if len(b) < tableFooterLen {
		return ext, fmt.Errorf("%d bytes: shorter than a table footer (%d)", len(b), tableFooterLen)
	}
	footer := b[len(b)-tableFooterLen:]
	if binary.LittleEndian.Uint64(footer[40:]) != tableMagic {
		return ext, errors.New("no table magic number at the end: not a tensor-bundle index, or cut short")
	}
	_, _, n, err := blockHandle(footer)
	if err != nil {
		return ext, fmt.Errorf("footer: %w", err)
	}
	if _, err := tableBlock(b, footer); err != nil { // the metaindex block: empty in bundles, checked all the same
		return ext, fmt.Errorf("metaindex block: %w", err)
	}
	index, err := tableBlock(b, footer[n:])
	if err != nil {
		return ext, fmt.Errorf("index block: %w", err)
	}
	ext.shardEnd = map[int]int64{}
	header := false
	err = blockEntries(index, func(_, handle []byte) error {
		data, err := tableBlock(b, handle)
		if err != nil {
			return fmt.Errorf("data block: %w", err)
		}
		return blockEntries(data, func(key, value []byte) error {
			if len(key) == 0 {
				var h corepb.BundleHeaderProto
				if err := proto.Unmarshal(value, &h); err != nil {
					return fmt.Errorf("header: %w", err)
				}
				if h.GetNumShards() < 1 || h.GetNumShards() > maxShards {
					return fmt.Errorf("header declares %d shards (want 1 to %d)", h.GetNumShards(), maxShards)
				}
				ext.numShards, header = int(h.GetNumShards()), true
				return nil
			}
			var e corepb.BundleEntryProto
			if err := proto.Unmarshal(value, &e); err != nil {
				return fmt.Errorf("entry %q: %w", key, err)
			}
			end := e.GetOffset() + e.GetSize()
			if e.GetOffset() < 0 || e.GetSize() < 0 || end < 0 || e.GetShardId() < 0 || e.GetShardId() >= maxShards {
				return fmt.Errorf("entry %q: shard %d, offset %d, size %d out of range", key, e.GetShardId(), e.GetOffset(), e.GetSize())
			}
			ext.shardEnd[int(e.GetShardId())] = max(ext.shardEnd[int(e.GetShardId())], end)
			return nil
		})
	})
	if err != nil {
		return ext, err
	}
	if !header {
		return ext, errors.New("no bundle header (the entry with the empty key)")
	}
	for shard := range ext.shardEnd {
		if shard >= ext.numShards {
			return ext, fmt.Errorf("an entry lies in shard %d of %d", shard, ext.numShards)
		}
	}
	return ext, nil
}

// blockHandle decodes a (offset, size) pair of varints; n is the bytes it took.
func blockHandle(b []byte) (off, size uint64, n int, err error) {
	off, a := binary.Uvarint(b)
	if a <= 0 {
		return 0, 0, 0, errors.New("malformed block offset")
	}
	size, c := binary.Uvarint(b[a:])
	if c <= 0 {
		return 0, 0, 0, errors.New("malformed block size")
	}
	return off, size, a + c, nil
}

// tableBlock is the contents of the block the handle points at, its checksum verified.
func tableBlock(file, handle []byte) ([]byte, error) {
	off, size, _, err := blockHandle(handle)
	if err != nil {
		return nil, err
	}
	limit := uint64(len(file) - tableFooterLen)
	if off > limit || size > limit-off || blockTrailerLen > limit-off-size {
		return nil, fmt.Errorf("block at %d of %d bytes lies outside the %d-byte table", off, size, limit)
	}
	data := file[off : off+size]
	trailer := file[off+size : off+size+blockTrailerLen]
	if trailer[0] != noCompression {
		return nil, fmt.Errorf("block at %d is compressed (type %d): tensor bundles are written uncompressed", off, trailer[0])
	}
	if maskedCRC(data, trailer[:1]) != binary.LittleEndian.Uint32(trailer[1:]) {
		return nil, fmt.Errorf("block at %d fails its checksum", off)
	}
	return data, nil
}

// blockEntries calls each with every key/value of a block, in order. Keys share a prefix with
// the one before; the restart array at the block's end only serves seeking and is skipped.
func blockEntries(block []byte, each func(key, value []byte) error) error {
	if len(block) < 4 {
		return errors.New("block shorter than its restart count")
	}
	restarts := uint64(binary.LittleEndian.Uint32(block[len(block)-4:]))
	if restarts > uint64(len(block)-4)/4 {
		return fmt.Errorf("block claims %d restart points in %d bytes", restarts, len(block))
	}
	entries := block[:uint64(len(block))-4-4*restarts]
	var key []byte
	for len(entries) > 0 {
		var lens [3]uint64
		for i := range lens {
			v, n := binary.Uvarint(entries)
			if n <= 0 {
				return errors.New("malformed entry header")
			}
			lens[i], entries = v, entries[n:]
		}
		shared, unshared, valueLen := lens[0], lens[1], lens[2]
		if shared > uint64(len(key)) || unshared > uint64(len(entries)) || valueLen > uint64(len(entries))-unshared {
			return errors.New("entry runs past its block")
		}
		key = append(key[:shared], entries[:unshared]...)
		if err := each(key, entries[unshared:unshared+valueLen]); err != nil {
			return err
		}
		entries = entries[unshared+valueLen:]
	}
	return nil
}

// shardName is TensorFlow's DataFilename.
func shardName(prefix string, shard, of int) string {
	return fmt.Sprintf("%s.data-%05d-of-%05d", prefix, shard, of)
}

// checkVariables says what the checkpoint at prefix (DIR/variables/variables) lacks: an index
// that reads whole, or a shard file holding every byte the index places in it.
func checkVariables(prefix string) error {
	index := prefix + ".index"
	b, err := readBounded(index, maxIndexBytes)
	if err != nil {
		return err
	}
	ext, err := readBundleIndex(b)
	if err != nil {
		return fmt.Errorf("%s: %w", index, err)
	}
	for shard, end := range ext.shardEnd {
		path := shardName(prefix, shard, ext.numShards)
		st, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s is missing (the index places %d bytes in it)", path, end)
		}
		if err != nil {
			return err
		}
		if st.Size() < end {
			return fmt.Errorf("%s holds %d bytes; the index places %d there: still being copied, or cut short", path, st.Size(), end)
		}
	}
	return nil
}

// readBounded reads a file the disk holds but someone else wrote, refusing one over limit.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s is missing", path)
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > limit {
		return nil, fmt.Errorf("%s: %d bytes, more than the %d it may have", path, st.Size(), limit)
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil && st.Size() > 0 {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

// variableOps are the graph ops that hold a variable a checkpoint must restore.
var variableOps = map[string]bool{"VarHandleOp": true, "VariableV2": true, "Variable": true}

// checkComplete says why the SavedModel at dir cannot be served yet: a checkpoint its graph
// needs that is missing or incomplete, or an asset the graph names that is not there.
func checkComplete(dir string, mg *corepb.MetaGraphDef) error {
	prefix := filepath.Join(dir, "variables", "variables")
	_, err := os.Stat(prefix + ".index")
	switch {
	case errors.Is(err, fs.ErrNotExist) && hasVariables(mg):
		return fmt.Errorf("%s.index is missing, and the graph has variables to restore from it", prefix)
	case errors.Is(err, fs.ErrNotExist):
	default:
		if err := checkVariables(prefix); err != nil {
			return err
		}
	}
	for _, a := range mg.GetAssetFileDef() {
		name := a.GetFilename()
		if !filepath.IsLocal(name) {
			return fmt.Errorf("asset %q: not a path inside assets/", name)
		}
		if _, err := os.Stat(filepath.Join(dir, "assets", name)); err != nil {
			return fmt.Errorf("asset %s: %w", name, err)
		}
	}
	return nil
}

// hasVariables reports whether the graph has variables to restore (TensorFlow loads a
// SavedModel without variables/ as if it had none, and every run then fails).
func hasVariables(mg *corepb.MetaGraphDef) bool {
	for _, n := range mg.GetGraphDef().GetNode() {
		if variableOps[n.GetOp()] {
			return true
		}
	}
	for _, f := range mg.GetGraphDef().GetLibrary().GetFunction() {
		for _, n := range f.GetNodeDef() {
			if variableOps[n.GetOp()] {
				return true
			}
		}
	}
	for _, n := range mg.GetObjectGraphDef().GetNodes() {
		if n.GetVariable() != nil {
			return true
		}
	}
	return false
}
