package preprocess

import (
	"bytes"
	"encoding/binary"

	exif "github.com/dsoprea/go-exif/v3"
)

const orientationTag = 0x0112

// exifOrientation returns the EXIF Orientation (1..8) of an encoded image, 1 when absent
// or unreadable: a photo with a broken EXIF block is still a photo.
//
// Locating the EXIF block is format-specific and done here by walking the container's
// segments (JPEG APP1, PNG eXIf, WebP EXIF chunk, TIFF's own header) rather than with
// go-exif's byte search, which could match "Exif" inside compressed image data. Parsing
// the TIFF structure inside it is left to go-exif.
func exifOrientation(format string, data []byte) int {
	var payload []byte
	switch format {
	case "jpeg":
		payload = jpegExif(data)
	case "png":
		payload = pngExif(data)
	case "webp":
		payload = webpExif(data)
	case "tiff":
		payload = data
	}
	if len(payload) < 8 {
		return 1
	}
	return parseOrientation(payload)
}

func parseOrientation(tiff []byte) (o int) {
	defer func() { // go-exif reports some errors by panicking with non-error values
		if recover() != nil {
			o = 1
		}
	}()
	tags, _, err := exif.GetFlatExifData(tiff, nil)
	if err != nil {
		return 1
	}
	for _, t := range tags {
		if t.TagId != orientationTag || t.IfdPath != "IFD" {
			continue
		}
		if v, ok := t.Value.([]uint16); ok && len(v) > 0 && v[0] >= 1 && v[0] <= 8 {
			return int(v[0])
		}
	}
	return 1
}

// jpegExif returns the TIFF payload of the first APP1 "Exif" segment, walking markers
// until the image data starts.
func jpegExif(d []byte) (exif []byte) {
	jpegSegments(d, func(marker byte, seg []byte) bool {
		if marker == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			exif = seg[6:]
			return false
		}
		return true
	})
	return exif
}

// jpegSegments calls yield with each marker segment's payload before the first scan (the
// metadata and the frame header), until yield returns false or the data stops making sense.
func jpegSegments(d []byte, yield func(marker byte, payload []byte) bool) {
	i := 2 // after SOI
	for i+4 <= len(d) {
		if d[i] != 0xFF {
			return
		}
		marker := d[i+1]
		if marker == 0xFF { // fill byte
			i++
			continue
		}
		if marker == 0xD8 || marker == 0x01 || (marker >= 0xD0 && marker <= 0xD7) {
			i += 2
			continue
		}
		if marker == 0xDA || marker == 0xD9 { // start of scan / end of image
			return
		}
		n := int(binary.BigEndian.Uint16(d[i+2:]))
		if n < 2 || i+2+n > len(d) {
			return
		}
		if !yield(marker, d[i+4:i+2+n]) {
			return
		}
		i += 2 + n
	}
}

func pngExif(d []byte) []byte {
	i := 8 // after the signature
	for i+12 <= len(d) {
		n := int(binary.BigEndian.Uint32(d[i:]))
		if n < 0 || i+12+n > len(d) {
			return nil
		}
		if string(d[i+4:i+8]) == "eXIf" {
			return d[i+8 : i+8+n]
		}
		i += 12 + n
	}
	return nil
}

func webpExif(d []byte) (exif []byte) {
	if len(d) < 12 {
		return nil
	}
	webpChunks(d[12:], func(fourcc string, payload []byte) bool {
		if fourcc == "EXIF" {
			// Some writers keep JPEG's "Exif\0\0" prefix inside the chunk.
			exif = bytes.TrimPrefix(payload, []byte("Exif\x00\x00"))
			return false
		}
		return true
	})
	return exif
}

// webpChunks calls yield with each RIFF chunk in d (a WebP file's after its 12-byte
// header, or an animation frame's after its 16-byte header), until yield returns false or
// a chunk runs past the data.
func webpChunks(d []byte, yield func(fourcc string, payload []byte) bool) {
	for i := 0; i+8 <= len(d); {
		n := int(binary.LittleEndian.Uint32(d[i+4:]))
		if n < 0 || n > len(d)-i-8 {
			return
		}
		if !yield(string(d[i:i+4]), d[i+8:i+8+n]) {
			return
		}
		i += 8 + n + n&1
	}
}
