//go:build !linux || !cgo

package malloc

// Supported reports whether Trim can return memory here: only glibc has malloc_trim.
func Supported() bool { return false }

// Trim does nothing where the C library is not glibc (or cgo is off).
func Trim() bool { return false }
