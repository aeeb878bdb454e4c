//go:build !linux

package main

// limitMallocArenas is a glibc setting (see memory.go): nothing to do elsewhere.
func limitMallocArenas() {}
