// Package tfbundle writes TensorFlow's tensor bundle, the format of a V2 checkpoint and of a
// SavedModel's variables/: PREFIX.data-00000-of-00001 (the tensors' bytes, one after another)
// and PREFIX.index (a table of the entries, sorted by key). It writes what TensorFlow's
// BundleWriter writes for the same tensors added in the same order, byte for byte.
//
// It exists so that a checkpoint can be written without TensorFlow's file layer, which writes
// through the page cache: the kernel's copy of every byte is CPU time taken from the training
// steps that run beside a background checkpoint (experiments/RESULTS.md, bench-checkpoint).
// This package writes the data file with direct I/O where the file system allows it, so the
// bytes go to the disk without that copy.
//
// Reference: tensorflow/core/util/tensor_bundle/tensor_bundle.cc (BundleWriter) and
// xla/tsl/lib/io/table_builder.cc, block_builder.cc, format.cc (the index table, the
// LevelDB table format).
package tfbundle

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"slices"

	fwpb "github.com/wamuir/graft/tensorflow/core/framework/tensor_shape_go_proto"
	typespb "github.com/wamuir/graft/tensorflow/core/framework/types_go_proto"
	versionspb "github.com/wamuir/graft/tensorflow/core/framework/versions_go_proto"
	corepb "github.com/wamuir/graft/tensorflow/core/protobuf/for_core_protos_go_proto"
	"google.golang.org/protobuf/proto"
)

// DataType is TensorFlow's dtype enum (types.proto; the C API's TF_DataType has the same
// values).
type DataType = typespb.DataType

// String is the dtype of string tensors, written by AddStrings.
const String = typespb.DataType_DT_STRING

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// mask is crc32c::Mask: TensorFlow (like LevelDB) stores checksums masked, so that a checksum
// of data that holds checksums is not degenerate.
func mask(crc uint32) uint32 { return (crc>>15 | crc<<17) + 0xa282ead8 }

// DataFile and IndexFile name the two files of the bundle at prefix.
func DataFile(prefix string) string  { return prefix + ".data-00000-of-00001" }
func IndexFile(prefix string) string { return prefix + ".index" }

// Writer writes one bundle. Add tensors, then Close; on any error, Abort (or Close, which
// reports it) leaves no files behind.
type Writer struct {
	prefix  string
	data    *dataFile
	entries map[string][]byte // key -> serialised BundleEntryProto
	offset  int64
	err     error
}

// Options change how the data file is written.
type Options struct {
	// Buffered writes the data file through the page cache, as TensorFlow does, instead of
	// with direct I/O.
	Buffered bool
}

// Create starts a bundle at prefix (its directory must exist): the data file is created now,
// the index by Close.
func Create(prefix string, opts Options) (*Writer, error) {
	data, err := createDataFile(DataFile(prefix), !opts.Buffered)
	if err != nil {
		return nil, fmt.Errorf("tensor bundle %s: %w", prefix, err)
	}
	return &Writer{prefix: prefix, data: data, entries: map[string][]byte{}}, nil
}

// Direct reports whether the data file is being written with direct I/O (false where the
// file system refused it, or Options.Buffered asked for the page cache).
func (w *Writer) Direct() bool { return w.data.direct }

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

func (w *Writer) newEntry(key string, dtype DataType, shape []int64) (*corepb.BundleEntryProto, error) {
	if w.err != nil {
		return nil, w.err
	}
	if key == "" {
		return nil, w.fail(errors.New("tensor bundle: the empty key is the header's"))
	}
	if _, dup := w.entries[key]; dup {
		return nil, w.fail(fmt.Errorf("tensor bundle: key %q added twice", key))
	}
	dims := make([]*fwpb.TensorShapeProto_Dim, len(shape))
	for i, d := range shape {
		if d < 0 {
			return nil, w.fail(fmt.Errorf("tensor bundle: %q has shape %v: negative dimension", key, shape))
		}
		dims[i] = &fwpb.TensorShapeProto_Dim{Size: d}
	}
	return &corepb.BundleEntryProto{Dtype: dtype, Shape: &fwpb.TensorShapeProto{Dim: dims}, Offset: w.offset}, nil
}

func (w *Writer) finishEntry(key string, e *corepb.BundleEntryProto, size int64, crc uint32) error {
	e.Size, e.Crc32C = size, mask(crc)
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(e)
	if err != nil {
		return w.fail(fmt.Errorf("tensor bundle: entry %q: %w", key, err))
	}
	w.entries[key] = b
	w.offset += size
	return nil
}

// Add appends a tensor of a fixed-size dtype: data is its contents as TensorFlow lays them out
// (little-endian, row-major), exactly the shape's elements (the caller checks that; Add
// checks only what the format needs). data is read before Add returns.
func (w *Writer) Add(key string, dtype DataType, shape []int64, data []byte) error {
	if dtype == String {
		return w.fail(fmt.Errorf("tensor bundle: %q is a string tensor: use AddStrings", key))
	}
	e, err := w.newEntry(key, dtype, shape)
	if err != nil {
		return err
	}
	if err := w.data.write(data); err != nil {
		return w.fail(fmt.Errorf("tensor bundle %s: write %q: %w", w.prefix, key, err))
	}
	return w.finishEntry(key, e, int64(len(data)), crc32.Update(0, castagnoli, data))
}

// AddStrings appends a string tensor of the given shape, its elements in row-major order, in
// TensorFlow's layout: each length as a varint64, a masked checksum of the lengths, then the
// bytes.
func (w *Writer) AddStrings(key string, shape []int64, values []string) error {
	e, err := w.newEntry(key, String, shape)
	if err != nil {
		return err
	}
	var body []byte // the lengths, their checksum, the strings
	var crc uint32
	var word [8]byte
	for _, v := range values {
		n := uint64(len(v))
		body = binary.AppendUvarint(body, n)
		if n <= 0xffffffff { // older checkpoints had 32-bit lengths: the checksum still does
			binary.LittleEndian.PutUint32(word[:4], uint32(n))
			crc = crc32.Update(crc, castagnoli, word[:4])
		} else {
			binary.LittleEndian.PutUint64(word[:], n)
			crc = crc32.Update(crc, castagnoli, word[:])
		}
	}
	body = binary.LittleEndian.AppendUint32(body, mask(crc))
	crc = crc32.Update(crc, castagnoli, body[len(body)-4:])
	start := len(body)
	for _, v := range values {
		body = append(body, v...)
	}
	crc = crc32.Update(crc, castagnoli, body[start:])
	if err := w.data.write(body); err != nil {
		return w.fail(fmt.Errorf("tensor bundle %s: write %q: %w", w.prefix, key, err))
	}
	return w.finishEntry(key, e, int64(len(body)), crc)
}

// Close finishes the data file and writes the index. It does not fsync either: the caller
// makes the directory durable (atomicfs) when it needs to.
func (w *Writer) Close() error {
	if w.err != nil {
		w.Abort()
		return w.err
	}
	if err := w.data.close(); err != nil {
		w.Abort()
		return fmt.Errorf("tensor bundle %s: %w", w.prefix, err)
	}
	if err := w.writeIndex(); err != nil {
		w.Abort()
		return fmt.Errorf("tensor bundle %s: %w", w.prefix, err)
	}
	w.err = errors.New("tensor bundle: closed")
	return nil
}

// Abort removes what was written.
func (w *Writer) Abort() {
	w.data.abort()
	os.Remove(DataFile(w.prefix))
	os.Remove(IndexFile(w.prefix))
	if w.err == nil {
		w.err = errors.New("tensor bundle: aborted")
	}
}

func (w *Writer) writeIndex() error {
	header, err := proto.MarshalOptions{Deterministic: true}.Marshal(&corepb.BundleHeaderProto{
		NumShards:  1,
		Endianness: corepb.BundleHeaderProto_LITTLE,
		Version:    &versionspb.VersionDef{Producer: 1},
	})
	if err != nil {
		return err
	}
	t := newTableBuilder()
	t.add("", header)
	keys := make([]string, 0, len(w.entries))
	for k := range w.entries {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, cmp.Compare[string]) // bytewise, as the table's comparator
	for _, k := range keys {
		t.add(k, w.entries[k])
	}
	return os.WriteFile(IndexFile(w.prefix), t.finish(), 0o644)
}
