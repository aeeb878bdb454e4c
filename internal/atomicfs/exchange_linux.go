package atomicfs

import "golang.org/x/sys/unix"

// exchange swaps the names src and dst atomically (both must exist).
func exchange(src, dst string) error {
	return unix.Renameat2(unix.AT_FDCWD, src, unix.AT_FDCWD, dst, unix.RENAME_EXCHANGE)
}

// CanExchange reports whether this build swaps directories atomically (Replace never leaves
// dst missing); a filesystem may still refuse the exchange at run time.
const CanExchange = true
