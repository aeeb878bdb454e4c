//go:build linux && cgo

package malloc

/*
#include <features.h>
#ifdef __GLIBC__
#include <malloc.h>
static int emotions_malloc_trim(void) { return malloc_trim(0); }
static int emotions_has_trim(void) { return 1; }
#else
static int emotions_malloc_trim(void) { return 0; }
static int emotions_has_trim(void) { return 0; }
#endif
*/
import "C"

// Supported reports whether Trim can return memory here: only glibc has malloc_trim.
func Supported() bool { return C.emotions_has_trim() != 0 }

// Trim returns the free memory of every malloc arena to the operating system (glibc's
// malloc_trim(0), which also releases free pages inside an arena, not only at its top), and
// reports whether any was returned. It takes each arena's lock in turn: call it after memory
// was freed in bulk, not on every request.
func Trim() bool { return C.emotions_malloc_trim() != 0 }
