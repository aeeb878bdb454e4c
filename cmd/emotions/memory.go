//go:build linux

package main

// #include <malloc.h>
import "C"

import "os"

// limitMallocArenas caps glibc's malloc arenas at 2 (unless MALLOC_ARENA_MAX is set). glibc
// gives every contending thread its own arena, up to 8 per core; TensorFlow's thread pools then
// spread freed training buffers over many arenas that never shrink back. Measured on
// InceptionResNetV2 training (batch 64, 2 cores): peak RSS 6.7 GB with the default, 4.6 GB with
// two arenas, at the same speed (experiments/RESULTS.md, bench-memory). mallopt must run before
// TensorFlow starts its threads: emotions calls it first thing in main.
func limitMallocArenas() {
	if _, ok := os.LookupEnv("MALLOC_ARENA_MAX"); ok {
		return // glibc already read the user's choice at start-up
	}
	C.mallopt(C.M_ARENA_MAX, 2)
}
