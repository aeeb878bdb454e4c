package main

import (
	"os"
	"syscall"
)

// TensorFlow logs at INFO to stderr by default (oneDNN notices, every SavedModel loading step)
// and reads TF_CPP_MIN_LOG_LEVEL once, while the library initialises: before any Go code runs.
// So when the user has not chosen a level, emotions re-executes itself once with level 2
// (warnings and errors only). The only line that still gets through is the one TensorFlow
// prints from its library initialiser in the first process.
func quietTensorFlow() {
	if _, ok := os.LookupEnv("TF_CPP_MIN_LOG_LEVEL"); ok {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	env := append(os.Environ(), "TF_CPP_MIN_LOG_LEVEL=2")
	_ = syscall.Exec(exe, os.Args, env) // on failure, carry on with TensorFlow's default level
}
