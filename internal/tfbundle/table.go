package tfbundle

import (
	"encoding/binary"
	"hash/crc32"
)

// The index is a table in LevelDB's format as TensorFlow's table::TableBuilder writes it with
// the bundle's options (no compression, 256 KiB blocks, a restart point every 16 keys; one per
// key in the index block), so that TensorFlow reads it like its own.
const (
	blockSize       = 262144
	restartInterval = 16
	tableMagic      = 0xdb4775248b80fb57
	handleMaxLen    = 20 // two varint64s
)

type blockBuilder struct {
	interval int
	buf      []byte
	restarts []uint32
	counter  int
	lastKey  []byte
}

func newBlockBuilder(interval int) *blockBuilder {
	return &blockBuilder{interval: interval, restarts: []uint32{0}}
}

func (b *blockBuilder) reset() {
	b.buf, b.restarts, b.counter, b.lastKey = b.buf[:0], append(b.restarts[:0], 0), 0, b.lastKey[:0]
}

func (b *blockBuilder) empty() bool { return len(b.buf) == 0 }

func (b *blockBuilder) sizeEstimate() int { return len(b.buf) + 4*len(b.restarts) + 4 }

// add appends an entry, its key sharing a prefix with the previous one except at restart
// points.
func (b *blockBuilder) add(key, value []byte) {
	shared := 0
	if b.counter < b.interval {
		for shared < len(key) && shared < len(b.lastKey) && key[shared] == b.lastKey[shared] {
			shared++
		}
	} else {
		b.restarts = append(b.restarts, uint32(len(b.buf)))
		b.counter = 0
	}
	b.buf = binary.AppendUvarint(b.buf, uint64(shared))
	b.buf = binary.AppendUvarint(b.buf, uint64(len(key)-shared))
	b.buf = binary.AppendUvarint(b.buf, uint64(len(value)))
	b.buf = append(b.buf, key[shared:]...)
	b.buf = append(b.buf, value...)
	b.lastKey = append(b.lastKey[:0], key...)
	b.counter++
}

// finish returns the block's bytes: the entries, then the restart offsets and their count.
func (b *blockBuilder) finish() []byte {
	for _, r := range b.restarts {
		b.buf = binary.LittleEndian.AppendUint32(b.buf, r)
	}
	return binary.LittleEndian.AppendUint32(b.buf, uint32(len(b.restarts)))
}

type blockHandle struct{ offset, size uint64 }

func (h blockHandle) append(dst []byte) []byte {
	return binary.AppendUvarint(binary.AppendUvarint(dst, h.offset), h.size)
}

type tableBuilder struct {
	out          []byte
	data, index  *blockBuilder
	lastKey      []byte
	pendingIndex bool
	pending      blockHandle
}

func newTableBuilder() *tableBuilder {
	return &tableBuilder{data: newBlockBuilder(restartInterval), index: newBlockBuilder(1)}
}

// add appends an entry; keys come in increasing bytewise order.
func (t *tableBuilder) add(key string, value []byte) {
	if t.pendingIndex {
		t.index.add(shortestSeparator(t.lastKey, []byte(key)), t.pending.append(nil))
		t.pendingIndex = false
	}
	t.lastKey = append(t.lastKey[:0], key...)
	t.data.add([]byte(key), value)
	if t.data.sizeEstimate() >= blockSize {
		t.flush()
	}
}

func (t *tableBuilder) flush() {
	if t.data.empty() {
		return
	}
	t.pending = t.writeBlock(t.data)
	t.pendingIndex = true
}

func (t *tableBuilder) writeBlock(b *blockBuilder) blockHandle {
	raw := b.finish()
	h := blockHandle{offset: uint64(len(t.out)), size: uint64(len(raw))}
	t.out = append(t.out, raw...)
	crc := crc32.Update(crc32.Update(0, castagnoli, raw), castagnoli, []byte{0}) // + the type: none
	t.out = append(t.out, 0)
	t.out = binary.LittleEndian.AppendUint32(t.out, mask(crc))
	b.reset()
	return h
}

// finish writes the last data block, an empty metaindex block, the index block and the footer.
func (t *tableBuilder) finish() []byte {
	t.flush()
	meta := t.writeBlock(newBlockBuilder(restartInterval))
	if t.pendingIndex {
		t.index.add(shortSuccessor(t.lastKey), t.pending.append(nil))
		t.pendingIndex = false
	}
	index := t.writeBlock(t.index)
	footer := index.append(meta.append(nil))
	footer = append(footer, make([]byte, 2*handleMaxLen-len(footer))...)
	footer = binary.LittleEndian.AppendUint32(footer, uint32(tableMagic&0xffffffff))
	footer = binary.LittleEndian.AppendUint32(footer, uint32(tableMagic>>32))
	return append(t.out, footer...)
}

// shortestSeparator is a short key >= start and < limit (TensorFlow's FindShortestSeparator
// for its bytewise order): the index block then holds short keys.
func shortestSeparator(start, limit []byte) []byte {
	start = append([]byte(nil), start...)
	i := 0
	for i < len(start) && i < len(limit) && start[i] == limit[i] {
		i++
	}
	if i >= len(start) || i >= len(limit) {
		return start // one is a prefix of the other
	}
	if start[i] < 0xff && start[i]+1 < limit[i] {
		start[i]++
		start = start[:i+1]
	}
	return start
}

// shortSuccessor is a short key >= key (FindShortSuccessor).
func shortSuccessor(key []byte) []byte {
	key = append([]byte(nil), key...)
	for i, c := range key {
		if c != 0xff {
			key[i] = c + 1
			return key[:i+1]
		}
	}
	return key
}
