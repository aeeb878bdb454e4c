// Package archtest holds no code: its test checks the project's dependency rules (the data
// path reads left to right, library packages stay light), so a change that breaks them fails
// `make test`.
package archtest
