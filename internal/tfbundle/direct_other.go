//go:build !linux

package tfbundle

import (
	"os"
	"syscall"
	"unsafe"
)

// Direct I/O is Linux's O_DIRECT here: elsewhere the data file goes through the page cache.
func openDirectFile(string) (*os.File, error) { return nil, syscall.EINVAL }

func setDirect(*os.File, bool) error { return nil }

func addressOf(b []byte) uintptr { return uintptr(unsafe.Pointer(unsafe.SliceData(b))) }
