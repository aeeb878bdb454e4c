//go:build !linux && !darwin

package atomicfs

import "errors"

// exchange is not available on this system: Replace falls back to moving the old
// directory aside (see the package comment for what that loses).
func exchange(src, dst string) error {
	return errors.New("atomic exchange of two names is not supported on this system")
}

// CanExchange reports whether this build swaps directories atomically (Replace never leaves
// dst missing); a filesystem may still refuse the exchange at run time.
const CanExchange = false
