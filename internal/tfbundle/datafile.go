package tfbundle

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

const (
	// stagingSize is the unit of the data file's writes: large enough that a direct write
	// keeps the disk busy, small enough to hold once per writer.
	stagingSize = 8 << 20
	// dioAlign is the alignment direct I/O needs of the buffer, the offset and the length:
	// 4096 satisfies every Linux block device (512 or 4096-byte logical blocks).
	dioAlign = 4096
)

// dataFile appends bytes to a file through an aligned staging buffer, with direct I/O where
// the file system takes it; a refused direct write (EINVAL) switches the file to the page
// cache and is written again.
type dataFile struct {
	f       *os.File
	path    string
	direct  bool
	buf     []byte // stagingSize bytes, dioAlign-aligned
	n       int    // bytes staged in buf
	written int64  // bytes of the tensors written to the file so far
}

// openDirect and misalign are replaced by tests: a file system without direct I/O, a buffer
// the kernel refuses.
var (
	openDirect = openDirectFile
	misalign   = 0
)

func createDataFile(path string, direct bool) (*dataFile, error) {
	var f *os.File
	var err error
	if direct {
		f, err = openDirect(path)
		if err != nil && errors.Is(err, syscall.EINVAL) { // the file system has no direct I/O
			direct = false
		} else if err != nil {
			return nil, err
		}
	}
	if f == nil {
		// Not O_EXCL: a refused O_DIRECT open may have created the file (tmpfs did).
		if f, err = os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644); err != nil {
			return nil, err
		}
	}
	raw := make([]byte, stagingSize+dioAlign)
	off := misalign
	if r := int(addressOf(raw) % dioAlign); r != 0 {
		off += dioAlign - r
	}
	return &dataFile{f: f, path: path, direct: direct, buf: raw[off : off+stagingSize : off+stagingSize]}, nil
}

func (d *dataFile) write(p []byte) error {
	for len(p) > 0 {
		c := copy(d.buf[d.n:], p)
		d.n += c
		p = p[c:]
		if d.n == len(d.buf) {
			if err := d.writeStaged(d.n); err != nil {
				return err
			}
			d.written += int64(d.n)
			d.n = 0
		}
	}
	return nil
}

// writeStaged writes the first n staged bytes (n is a multiple of dioAlign in direct mode).
func (d *dataFile) writeStaged(n int) error {
	_, err := d.f.Write(d.buf[:n])
	if err != nil && d.direct && errors.Is(err, syscall.EINVAL) {
		// The device wants more than dioAlign, or the file system took O_DIRECT at open
		// and refuses it now: the page cache then. The failed write wrote nothing.
		if serr := setDirect(d.f, false); serr != nil {
			return fmt.Errorf("write %s: %w (and leaving direct I/O: %v)", d.path, err, serr)
		}
		d.direct = false
		if _, serr := d.f.Seek(d.written, 0); serr != nil {
			return serr
		}
		_, err = d.f.Write(d.buf[:n])
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", d.path, err)
	}
	return nil
}

// close writes what is staged and closes the file. Direct I/O writes whole blocks: the last
// one is padded with zeros and the file cut back to the tensors' length.
func (d *dataFile) close() error {
	err := d.flushTail()
	if cerr := d.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", d.path, cerr)
	}
	d.f = nil
	return err
}

func (d *dataFile) flushTail() error {
	if d.n == 0 {
		return nil
	}
	n := d.n
	if d.direct {
		n = (d.n + dioAlign - 1) / dioAlign * dioAlign
		clear(d.buf[d.n:n])
	}
	if err := d.writeStaged(n); err != nil {
		return err
	}
	d.written += int64(d.n)
	d.n = 0
	if err := d.f.Truncate(d.written); err != nil {
		return fmt.Errorf("truncate %s: %w", d.path, err)
	}
	return nil
}

func (d *dataFile) abort() {
	if d.f != nil {
		d.f.Close()
		d.f = nil
	}
}
