// Package malloc hands memory that the C allocator keeps back to the operating system.
//
// TensorFlow allocates through the C library's malloc. glibc keeps what is freed in its arenas
// for reuse instead of returning it, so a process that loaded and unloaded a model, or ran a
// burst of large requests, stays at its peak resident size long after the memory is free.
package malloc
