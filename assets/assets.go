// Package assets embeds the binary files the program needs at run time, so a single
// binary works from any directory.
package assets

import _ "embed"

// Facefinder is pigo's frontal-face cascade (github.com/esimov/pigo v1.4.6,
// cascade/facefinder, MIT licence: see LICENSE.pigo beside it).
//
//go:embed facefinder
var Facefinder []byte
