"""Writes hand-made edge cases for preprocess/decode_fuzz_test.go's targets, in Go's fuzz
corpus format (testdata/fuzz/<target>/<name>): headers that lie about sizes, offsets past the
end, runs past rows, frames past canvases. Each must end in a clean error or a raster of the
declared size. usage: python3 preprocess/testdata/fuzz/seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def go_bytes(data):
    out = []
    for b in data:
        c = chr(b)
        out.append(c if 32 <= b < 127 and c not in '"\\' else "\\x%02x" % b)
    return 'go test fuzz v1\n[]byte("' + "".join(out) + '")\n'


def write(target, name, data):
    os.makedirs(os.path.join(HERE, target), exist_ok=True)
    with open(os.path.join(HERE, target, name), "w") as f:
        f.write(go_bytes(data))


def bmp(info, rest):
    return b"BM" + struct.pack("<IHHI", 14 + len(info) + len(rest), 0, 0, 14 + len(info) + 1024) + info + rest


def info40(w, h, bits, compression, colors=0):
    return struct.pack("<IiiHHIIiiII", 40, w, h, 1, bits, compression, 0, 0, 0, colors, 0)


pal = bytes(range(256)) * 4
# RLE8: a delta far past the end, an absolute run longer than the data, a run past the row.
write("FuzzBMPDecoder", "rle8-delta-past-end", bmp(info40(8, 4, 8, 1), pal + b"\x00\x02\xff\xff\x05\x01\x00\x09\x01\x02"))
write("FuzzBMPDecoder", "rle8-run-past-row", bmp(info40(4, 2, 8, 1), pal + b"\xff\x07\x00\x00\xff\x03\x00\x01"))
write("FuzzBMPDecoder", "rle4-odd-absolute-truncated", bmp(info40(5, 1, 4, 2), pal[:64] + b"\x00\x05\x12\x34"))
# Bitfields: a non-contiguous mask; all-zero masks; a huge width with no data.
write("FuzzBMPDecoder", "bitfields-holes", bmp(info40(2, 2, 32, 3), struct.pack("<3I", 0xF0F0, 0xFF0000, 0xFF)))
write("FuzzBMPDecoder", "bitfields-zero", bmp(info40(2, 2, 16, 3), struct.pack("<3I", 0, 0, 0) + b"\x00" * 8))
write("FuzzBMPDecoder", "huge-width-no-data", bmp(info40(0x7FFFFFFF, 1, 24, 0), b""))
write("FuzzBMPDecoder", "top-down-min-int", bmp(info40(1, -2147483648, 24, 0), b"\x00" * 4))
write("FuzzBMPDecoder", "os2-core-header-short", b"BM" + struct.pack("<IHHI", 30, 0, 0, 26) + struct.pack("<IHHHH", 12, 3, 3, 1, 8))


def tiff(entries, tail=b"", big=False):
    """Little-endian (Big)TIFF with one IFD right after the header; entries: (tag, type, count, value)."""
    if big:
        head = b"II+\x00" + struct.pack("<HHQ", 8, 0, 16)
        ifd = struct.pack("<Q", len(entries)) + b"".join(struct.pack("<HHQQ", *e) for e in entries) + struct.pack("<Q", 0)
    else:
        head = b"II*\x00" + struct.pack("<I", 8)
        ifd = struct.pack("<H", len(entries)) + b"".join(struct.pack("<HHII", *e) for e in entries) + struct.pack("<I", 0)
    return head + ifd + tail


base = [(256, 3, 1, 4), (257, 3, 1, 4), (258, 3, 1, 8), (262, 3, 1, 1)]
write("FuzzTIFFDecoder", "entry-count-past-end", b"II*\x00\x08\x00\x00\x00\xff\xff" + b"\x00" * 12)
write("FuzzTIFFDecoder", "strip-offset-past-end", tiff(base + [(273, 4, 1, 0xFFFFFFF0), (279, 4, 1, 16)]))
write("FuzzTIFFDecoder", "strip-count-huge", tiff(base + [(273, 4, 0x3FFFFFFF, 8), (279, 4, 1, 16)]))
write("FuzzTIFFDecoder", "giant-tiles", tiff(base + [(322, 4, 1, 1 << 20), (323, 4, 1, 1 << 20), (324, 4, 1, 8), (325, 4, 1, 1)]))
write("FuzzTIFFDecoder", "jpeg-strip-garbage", tiff(base + [(259, 3, 1, 7), (273, 4, 1, 8), (279, 4, 1, 8), (347, 7, 4, 0xD9FFD8FF)]))
write("FuzzTIFFDecoder", "lzw-short", tiff(base + [(259, 3, 1, 5), (273, 4, 1, 8), (279, 4, 1, 4)]))
write("FuzzTIFFDecoder", "palette-without-colormap", tiff([(256, 3, 1, 2), (257, 3, 1, 2), (258, 3, 1, 4), (262, 3, 1, 3), (273, 4, 1, 8), (279, 4, 1, 2)]))
write("FuzzTIFFDecoder", "bigtiff-truncated", tiff(base + [(273, 16, 1, 8), (279, 16, 1, 16)], big=True)[:40])


def riff(chunks):
    body = b"WEBP" + b"".join(k + struct.pack("<I", len(v)) + v + (b"\x00" if len(v) % 2 else b"") for k, v in chunks)
    return b"RIFF" + struct.pack("<I", len(body)) + body


def vp8x(flags, w, h):
    return b"VP8X", bytes((flags, 0, 0, 0)) + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")


def anmf(x, y, w, h, inner):
    head = (x // 2).to_bytes(3, "little") + (y // 2).to_bytes(3, "little") + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little") + b"\x64\x00\x00\x00"
    return b"ANMF", head + inner


write("FuzzWebPDecoder", "animated-without-frame", riff([vp8x(0x02, 16, 16), (b"ANIM", b"\x00" * 6)]))
write("FuzzWebPDecoder", "frame-past-canvas", riff([vp8x(0x02, 16, 16), (b"ANIM", b"\x00" * 6), anmf(10, 10, 16, 16, b"VP8L\x05\x00\x00\x00\x2f\x0f\xc0\x03\x00\x00")]))
write("FuzzWebPDecoder", "frame-without-bitstream", riff([vp8x(0x12, 4, 4), (b"ANIM", b"\x00" * 6), anmf(0, 0, 4, 4, b"ALPH\x01\x00\x00\x00\x00\x00")]))
write("FuzzWebPDecoder", "frame-header-short", riff([vp8x(0x02, 4, 4), (b"ANMF", b"\x00" * 8)]))
write("FuzzWebPDecoder", "canvas-huge", riff([vp8x(0x02, 1 << 24, 1 << 24), anmf(0, 0, 1, 1, b"")]))

gif_head = b"GIF89a" + struct.pack("<HHBBB", 8, 8, 0x80, 0, 0) + b"\x00\x00\x00\xff\xff\xff"
write("FuzzGIFDecoder", "frame-past-screen", gif_head + b"\x2c" + struct.pack("<HHHHB", 6, 6, 8, 8, 0) + b"\x02\x02\x4c\x01\x00\x3b")
write("FuzzGIFDecoder", "empty-frame-offset", gif_head + b"\x2c" + struct.pack("<HHHHB", 7, 7, 1, 1, 0) + b"\x02\x02\x44\x01\x00\x3b")

write("FuzzJPEGDecoder", "arithmetic-sof9-without-scan", b"\xff\xd8\xff\xc9\x00\x0b\x08\x00\x10\x00\x10\x01\x01\x11\x00\xff\xd9")
write("FuzzJPEGDecoder", "sof-precision-missing", b"\xff\xd8\xff\xc0\x00\x02\xff\xd9")
write("FuzzJPEGDecoder", "segment-length-past-end", b"\xff\xd8\xff\xe1\xff\xff" + b"Exif\x00\x00")
