package tfgraph

// #include <tensorflow/c/c_api.h>
import "C"

import (
	"errors"
	"fmt"
	"unsafe"

	tf "github.com/wamuir/graft/tensorflow"

	"github.com/emotions-dev/emotions/internal/tfbundle"
)

// errNotBundled: a snapshot holds a tensor tfbundle does not write (a variant, say), so
// TensorFlow's SaveV2 writes it.
var errNotBundled = errors.New("not written by tfbundle")

// viaTensorFlow makes Write use TensorFlow's SaveV2 (for tests: the bytes it writes are what
// writeBundle must write).
func viaTensorFlow() WriteOption { return func(w *writeSettings) { w.viaTensorFlow = true } }

// writeBundle writes the snapshot's checkpoint at prefix with tfbundle: the files TensorFlow's
// SaveV2 writes for the same keys and values, byte for byte, but with direct I/O, so the
// write does not cost the training steps beside it the CPU of the page cache's copy.
func (s *Snapshot) writeBundle(prefix string) error {
	for _, v := range s.values {
		if v.DataType() != tf.String && C.TF_DataTypeSize(C.TF_DataType(v.DataType())) <= 0 {
			return errNotBundled
		}
	}
	w, err := tfbundle.Create(prefix, tfbundle.Options{})
	if err != nil {
		return err
	}
	for i, v := range s.values {
		key := s.plan.keys[i]
		if v.DataType() == tf.String {
			var values []string
			if values, err = Strings(v); err == nil {
				err = w.AddStrings(key, v.Shape(), values)
			}
		} else {
			err = w.Add(key, tfbundle.DataType(v.DataType()), v.Shape(), tensorData(v))
		}
		if err != nil {
			w.Abort()
			return fmt.Errorf("write the snapshot's %s: %w", key, err)
		}
	}
	return w.Close()
}

// tensorData is t's buffer as TensorFlow holds it (not a copy): valid while t is.
func tensorData(t *tf.Tensor) []byte {
	c := (*graftTensor)(unsafe.Pointer(t)).c
	n := int(C.TF_TensorByteSize(c))
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(C.TF_TensorData(c)), n)
}
