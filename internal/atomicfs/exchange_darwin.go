package atomicfs

import "golang.org/x/sys/unix"

// exchange swaps the names src and dst atomically (both must exist): macOS' renamex_np
// with RENAME_SWAP (APFS and HFS+ support it).
func exchange(src, dst string) error {
	return unix.RenamexNp(src, dst, unix.RENAME_SWAP)
}

// CanExchange reports whether this build swaps directories atomically (Replace never leaves
// dst missing); a filesystem may still refuse the exchange at run time.
const CanExchange = true
