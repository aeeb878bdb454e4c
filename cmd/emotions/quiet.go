//go:build linux

package main

// TensorFlow logs at INFO to stderr by default (the oneDNN notice, every SavedModel loading
// step) and reads TF_CPP_MIN_LOG_LEVEL while its libraries initialise: before any Go code,
// or any constructor of this program's own, runs. Only an executable's preinit functions run
// earlier (before libc's own initialiser, which puts back the environment the process started
// with: a setenv there is lost). So when the user has not chosen a level, the preinit function
// re-executes the program with level 2 (warnings and errors only) before TensorFlow has
// initialised or printed anything. The user's own TF_CPP_MIN_LOG_LEVEL (0: everything) is kept.
//
// Some lines TensorFlow 2.18 logs through its private copy of absl, which does not read
// TF_CPP_MIN_LOG_LEVEL and whose level cannot be set from outside (its setters are not
// exported): "MLIR V1 optimization pass is not enabled", at INFO, when the first session
// optimises its graph, after absl's "All log messages before absl::InitializeLog() ..." notice.
// absl writes each line to stderr with one fwrite, which this program defines over libc's
// (an executable's symbols come first for every library): absl lines below
// TF_CPP_MIN_LOG_LEVEL and that notice are dropped; everything else goes to libc's fwrite.

// #cgo LDFLAGS: -ldl
// #define _GNU_SOURCE
// #include <dlfcn.h>
// #include <stdio.h>
// #include <stdlib.h>
// #include <string.h>
// #include <unistd.h>
//
// static void emotions_default_tf_log_level(int argc, char **argv, char **envp) {
// 	static const char name[] = "TF_CPP_MIN_LOG_LEVEL=";
// 	int n = 0;
// 	(void)argc;
// 	for (; envp[n] != NULL; n++) {
// 		if (strncmp(envp[n], name, sizeof name - 1) == 0) {
// 			return;
// 		}
// 	}
// 	char *env[n + 2];
// 	for (int i = 0; i < n; i++) {
// 		env[i] = envp[i];
// 	}
// 	env[n] = (char *)"TF_CPP_MIN_LOG_LEVEL=2";
// 	env[n + 1] = NULL;
// 	execve("/proc/self/exe", argv, env); // on failure, carry on at TensorFlow's default level
// }
//
// __attribute__((section(".preinit_array"), used))
// static void (*const emotions_preinit)(int, char **, char **) = emotions_default_tf_log_level;
//
// // tf_min_log_level is TF_CPP_MIN_LOG_LEVEL as TensorFlow reads it (unset or not a number: 0).
// static int tf_min_log_level(void) {
// 	static int level = -1;
// 	int l = __atomic_load_n(&level, __ATOMIC_RELAXED);
// 	if (l < 0) {
// 		const char *v = getenv("TF_CPP_MIN_LOG_LEVEL");
// 		l = v == NULL ? 0 : atoi(v);
// 		if (l < 0) {
// 			l = 0;
// 		}
// 		__atomic_store_n(&level, l, __ATOMIC_RELAXED);
// 	}
// 	return l;
// }
//
// // absl_severity is the severity of an absl log line, 0 (INFO) to 3 (FATAL), from its prefix
// // "I1203 08:00:41.007641 ..." ("I0000 00:00:<seconds>..." before absl is initialised); -1
// // for any other text.
// static int absl_severity(const char *s, size_t n) {
// 	static const char severities[] = "IWEF";
// 	static const char shape[] = "L0000 00:00:";
// 	if (n < sizeof shape - 1) {
// 		return -1;
// 	}
// 	for (size_t i = 1; i < sizeof shape - 1; i++) {
// 		if (shape[i] == '0' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i]) {
// 			return -1;
// 		}
// 	}
// 	for (int i = 0; i < 4; i++) {
// 		if (s[0] == severities[i]) {
// 			return i;
// 		}
// 	}
// 	return -1;
// }
//
// static const char absl_notice[] = "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n";
//
// typedef size_t (*fwrite_func)(const void *, size_t, size_t, FILE *);
//
// size_t fwrite(const void *restrict ptr, size_t size, size_t n, FILE *restrict stream) {
// 	static fwrite_func libc_fwrite;
// 	fwrite_func f = __atomic_load_n(&libc_fwrite, __ATOMIC_ACQUIRE);
// 	if (f == NULL) {
// 		f = (fwrite_func)dlsym(RTLD_NEXT, "fwrite");
// 		if (f == NULL) {
// 			return 0;
// 		}
// 		__atomic_store_n(&libc_fwrite, f, __ATOMIC_RELEASE);
// 	}
// 	if (stream == stderr && n == 1 && size > 0) {
// 		int level = tf_min_log_level();
// 		int severity = absl_severity(ptr, size);
// 		if (level > 0 && ((severity >= 0 && severity < level) ||
// 				(size == sizeof absl_notice - 1 && memcmp(ptr, absl_notice, size) == 0))) {
// 			return n; // dropped, as if written
// 		}
// 	}
// 	return f(ptr, size, n, stream);
// }
import "C"
