"""Writes the decode-parity fixtures: one small image per format variant, and the pixels Pillow
decodes from each, for preprocess/parity_test.go.

usage: .venv/bin/python preprocess/testdata/parity/gen.py [OUT_DIR]   (default: this folder)

Every variant is written from the same seeded 57x41 pattern (a gradient, a sharp-edged block and
noise, so that misplaced rows, swapped channels or a wrong palette show). Pillow writes the
variants it can write; the rest are written by hand below (BMP and TIFF layouts, PNG bit depths
and Adam7, GIF offsets, YCCK), and jpegtran (Debian libjpeg-turbo-progs) recodes one JPEG with
arithmetic coding. Each file is then opened with Pillow and its pixels written as the reference,
brought to what our decoder returns (opaque 8-bit RGB):

- transparency is composited on white, rounded, as preprocess/raster.go does;
- 16-bit gray keeps its high byte (Pillow's own I;16 -> L conversion clips at 255 instead of
  scaling, which no viewer does); 16-bit colour is already the high byte in Pillow.

Variants Pillow does not open get no Pillow reference; where the generator knows their pixels
exactly (it wrote them), those are written instead and marked "generator".

manifest.json lists every variant: file, family, label, whether Pillow decodes it (and its error
if not), whether it is lossy, and its reference file (raw RGB rows, gzip-compressed, named by
content so that variants decoding to the same pixels share one).
The output is deterministic for a given Pillow and jpegtran: regenerate after changing either.
"""
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib

import numpy as np
import PIL
from PIL import Image

W, H = 57, 41  # odd, and not a multiple of 8 or 16: edge blocks, row padding, chroma rounding
OUT = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__)))


def pattern():
    rng = np.random.default_rng(16)
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    r = x * 255 / (W - 1)
    g = y * 255 / (H - 1)
    b = 128 + 100 * np.sin((x + 2 * y) / 5)
    img = np.stack([r, g, b], axis=-1) + rng.normal(0, 10, (H, W, 3))
    img[8:20, 30:47] = (20, 200, 60)  # a flat block with sharp edges
    img[26:33, 5:12] = (250, 250, 250)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def alpha_pattern():
    y, x = np.mgrid[0:H, 0:W].astype(np.float64)
    d = np.hypot((x - W / 2) / (W / 2), (y - H / 2) / (H / 2))
    a = np.clip(255 * (1.2 - d), 0, 255)
    a[:, :6] = 0  # fully transparent columns
    a[14:22, 24:34] = 255  # a fully opaque block
    return np.rint(a).astype(np.uint8)


RGB = pattern()
ALPHA = alpha_pattern()
GRAY = np.rint(RGB @ np.array([0.299, 0.587, 0.114])).astype(np.uint8)
GRAY16 = (GRAY.astype(np.uint16) << 8) | np.random.default_rng(7).integers(0, 256, (H, W), dtype=np.uint16)
RGB16 = (RGB.astype(np.uint16) << 8) | np.random.default_rng(8).integers(0, 256, (H, W, 3), dtype=np.uint16)
ALPHA16 = (ALPHA.astype(np.uint16) << 8) | np.random.default_rng(9).integers(0, 256, (H, W), dtype=np.uint16)


def quantized(colors):
    """The pattern as a palette image of at most `colors` colours: (indices HxW, palette Nx3)."""
    p = Image.fromarray(RGB).quantize(colors, dither=Image.Dither.NONE)
    pal = np.array(p.getpalette()[: 3 * colors], dtype=np.uint8).reshape(-1, 3)
    return np.array(p), pal


def gray_levels(bits):
    """GRAY reduced to `bits` bits per sample (values 0 .. 2^bits-1)."""
    return (GRAY.astype(np.uint32) * ((1 << bits) - 1) // 255).astype(np.uint8)


# ---------------------------------------------------------------- hand-written encoders


def pack_rows(samples, bits, byte_order=">"):
    """Packs rows of sample values MSB-first at `bits` bits, each row padded to a byte."""
    if bits >= 8:
        dtype = byte_order + "u2" if bits == 16 else np.uint8
        return [row.astype(dtype).tobytes() for row in samples]
    rows = []
    for row in samples:
        flat = row.reshape(-1)
        out = bytearray((len(flat) * bits + 7) // 8)
        for i, v in enumerate(flat):
            bit = i * bits
            out[bit // 8] |= int(v) << (8 - bits - bit % 8)
        rows.append(bytes(out))
    return rows


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png(samples, bits, color_type, palette=None, trns=None, interlace=False):
    """A PNG of HxWxC samples (or HxW), any bit depth, optionally Adam7-interlaced."""
    h, w = samples.shape[:2]
    samples = samples.reshape(h, w, -1)
    def scanlines(sub):
        return b"".join(b"\x00" + r for r in pack_rows(sub, bits)) if sub.size else b""

    if interlace:
        passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]
        raw = b"".join(scanlines(samples[y0::dy, x0::dx]) for x0, y0, dx, dy in passes)
    else:
        raw = scanlines(samples)
    out = b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, bits, color_type, 0, 0, int(interlace)))
    if palette is not None:
        out += png_chunk(b"PLTE", palette.astype(np.uint8).tobytes())
    if trns is not None:
        out += png_chunk(b"tRNS", trns)
    return out + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b"")


def bmp(bits, rows, palette=None, header=40, compression=0, masks=None, top_down=False, colors_used=None,
        pixel_data=None, palette_entry=4):
    """A BMP file. rows: packed top-to-bottom pixel rows (each padded here to 4 bytes), or
    pixel_data: the already-encoded pixel array (RLE). masks: (r, g, b[, a]) for BITFIELDS, in the
    header when it has room (52+ bytes) or after a 40-byte one."""
    if pixel_data is None:
        padded = [r + b"\x00" * (-len(r) % 4) for r in rows]
        pixel_data = b"".join(padded if top_down else padded[::-1])
    height = -H if top_down else H
    if header == 12:  # OS/2 1.x / BITMAPCOREHEADER: 16-bit sizes, 3-byte palette entries
        info = struct.pack("<IHHHH", 12, W, H, 1, bits)
    else:
        ncolors = colors_used if colors_used is not None else 0
        info = struct.pack("<IiiHHIIiiII", header, W, height, 1, bits, compression, len(pixel_data), 2835, 2835, ncolors, 0)
        extra = b""
        if masks is not None and header >= 52:
            extra = struct.pack("<%dI" % len(masks), *masks)
        info += extra
        if header == 108 or header == 124:
            if masks is None:
                info += b"\x00" * 16
            elif len(masks) == 3:
                info += b"\x00" * 4
            info += b"BGRs" + b"\x00" * 48  # sRGB colour space; endpoints and gamma unused
            if header == 124:
                info += struct.pack("<IIII", 4, 0, 0, 0)  # LCS_GM_IMAGES intent, no profile
        info += b"\x00" * (header - len(info))
        if masks is not None and header == 40:
            info += struct.pack("<3I", *masks[:3])
    pal = b""
    if palette is not None:
        pal = b"".join(bytes((int(b), int(g), int(r))) + b"\x00" * (palette_entry - 3) for r, g, b in palette)
    offset = 14 + len(info) + len(pal)
    return b"BM" + struct.pack("<IHHI", offset + len(pixel_data), 0, 0, offset) + info + pal + pixel_data


def rle8(indices, skip=None):
    """BMP RLE8, bottom-up rows: encoded runs, absolute runs (padded to words), end-of-line,
    end-of-bitmap, and a delta escape leaving out pixels x..x+n-1 of row y (skip = (y, x, n))."""
    out = bytearray()
    for y in range(H - 1, -1, -1):
        row = [int(v) for v in indices[y]]
        segments = [(0, W)]
        if skip and skip[0] == y:
            segments = [(0, skip[1]), (skip[1] + skip[2], W)]
        for k, (a, b) in enumerate(segments):
            if k:
                out += bytes((0, 2, skip[2], 0))
            x = a
            while x < b:
                run = 1
                while x + run < b and run < 255 and row[x + run] == row[x]:
                    run += 1
                if run >= 2 or b - x < 3:
                    out += bytes((run, row[x]))
                    x += run
                    continue
                n = 1
                while x + n < b and n < 255 and not (x + n + 1 < b and row[x + n] == row[x + n + 1]):
                    n += 1
                if n < 3:
                    out += b"".join(bytes((1, v)) for v in row[x:x + n])
                else:
                    out += bytes((0, n)) + bytes(row[x:x + n]) + (b"\x00" if n % 2 else b"")
                x += n
        out += b"\x00\x00"
    return bytes(out[:-2]) + b"\x00\x01"


def rle4(indices):
    """BMP RLE4, bottom-up rows: runs of one value, runs alternating two values, and absolute
    runs of odd and even lengths (padded to nibbles, then words)."""
    out = bytearray()
    for y in range(H - 1, -1, -1):
        row = [int(v) for v in indices[y]]
        x = 0
        while x < W:
            run = 1
            while x + run < W and run < 255 and row[x + run] == row[x]:
                run += 1
            if run >= 3:
                out += bytes((run, row[x] << 4 | row[x]))
                x += run
                continue
            n = 1
            while x + n < W and n < 255 and not (x + n + 2 < W and row[x + n] == row[x + n + 1] == row[x + n + 2]):
                n += 1
            if n >= 3:
                nib = row[x:x + n] + [0]
                data = bytes(nib[i] << 4 | nib[i + 1] for i in range(0, n, 2))
                out += bytes((0, n)) + data + (b"\x00" if len(data) % 2 else b"")
                x += n
                continue
            out += bytes((n, row[x] << 4 | (row[x + 1] if n > 1 else 0)))
            x += n
        out += b"\x00\x00"
    return bytes(out[:-2]) + b"\x00\x01"


def packbits(data):
    out, i = bytearray(), 0
    while i < len(data):
        run = 1
        while i + run < len(data) and run < 128 and data[i + run] == data[i]:
            run += 1
        if run > 1:
            out += bytes((257 - run, data[i]))
            i += run
            continue
        j = i + 1
        while j < len(data) and j - i < 128 and not (j + 1 < len(data) and data[j] == data[j + 1]):
            j += 1
        out += bytes((j - i - 1,)) + data[i:j]
        i = j
    return bytes(out)


TIFF_TYPES = {1: "B", 3: "H", 4: "I", 16: "Q"}


def tiff(samples, bits, photometric, compression=1, planar=1, tile=None, rows_per_strip=None,
         extra_samples=None, colormap=None, big_endian=False, predictor=1, fill_order=1):
    """A TIFF of HxWxC samples: strips or tiles, chunky or planar, none/deflate/packbits;
    fill_order 2 stores each byte's bits least significant first."""
    bo = ">" if big_endian else "<"
    samples = samples.reshape(H, W, -1)
    spp = samples.shape[2]

    def encode_block(block):  # block: h x w x c samples -> bytes
        if predictor == 2:
            block = block.astype(np.int32)
            block[:, 1:] = block[:, 1:] - block[:, :-1]
            block = (block % (1 << bits)).astype(samples.dtype)
        rows = pack_rows(block.reshape(block.shape[0], -1) if bits >= 8 else block, bits, bo)
        if fill_order == 2:
            rows = [bytes(int(f"{b:08b}"[::-1], 2) for b in r) for r in rows]
        if compression == 8:
            return zlib.compress(b"".join(rows), 9)
        if compression == 32773:  # each row packed on its own, as the specification asks
            return b"".join(packbits(r) for r in rows)
        return b"".join(rows)

    planes = [samples[:, :, i:i + 1] for i in range(spp)] if planar == 2 else [samples]
    blocks = []
    for plane in planes:
        if tile:
            tw, th = tile
            for ty in range(0, H, th):
                for tx in range(0, W, tw):
                    t = np.zeros((th, tw, plane.shape[2]), plane.dtype)
                    part = plane[ty:ty + th, tx:tx + tw]
                    t[:part.shape[0], :part.shape[1]] = part
                    blocks.append(encode_block(t))
        else:
            rps = rows_per_strip or H
            for y in range(0, H, rps):
                blocks.append(encode_block(plane[y:y + rps]))

    data = bytearray(b"II*\x00" if not big_endian else b"MM\x00*") + b"\x00\x00\x00\x00"
    offsets = []
    for b in blocks:
        offsets.append(len(data))
        data += b + (b"\x00" if len(b) % 2 else b"")
    tags = {
        256: (3, [W]), 257: (3, [H]), 258: (3, [bits] * spp), 259: (3, [compression]), 262: (3, [photometric]),
        277: (3, [spp]), 284: (3, [planar]),
    }
    if tile:
        tags.update({322: (3, [tile[0]]), 323: (3, [tile[1]]), 324: (4, offsets), 325: (4, [len(b) for b in blocks])})
    else:
        tags.update({273: (4, offsets), 278: (3, [rows_per_strip or H]), 279: (4, [len(b) for b in blocks])})
    if extra_samples is not None:
        tags[338] = (3, extra_samples)
    if colormap is not None:
        tags[320] = (3, colormap)
    if predictor != 1:
        tags[317] = (3, [predictor])
    if fill_order != 1:
        tags[266] = (3, [fill_order])
    ifd_at = len(data)
    data[4:8] = struct.pack(bo + "I", ifd_at)
    n = len(tags)
    ifd = bytearray(struct.pack(bo + "H", n))
    overflow = bytearray()
    overflow_at = ifd_at + 2 + 12 * n + 4
    for tag in sorted(tags):
        typ, values = tags[tag]
        payload = struct.pack(bo + TIFF_TYPES[typ] * len(values), *values)
        if len(payload) <= 4:
            ifd += struct.pack(bo + "HHI", tag, typ, len(values)) + payload + b"\x00" * (4 - len(payload))
        else:
            ifd += struct.pack(bo + "HHII", tag, typ, len(values), overflow_at + len(overflow))
            overflow += payload + (b"\x00" if len(payload) % 2 else b"")
    ifd += b"\x00\x00\x00\x00"
    return bytes(data + ifd + overflow)


def ycc(r, g, b):
    """JFIF full-range YCbCr from RGB (float arrays)."""
    y = 0.299 * r + 0.587 * g + 0.114 * b
    cb = 128 - 0.168736 * r - 0.331264 * g + 0.5 * b
    cr = 128 + 0.5 * r - 0.418688 * g - 0.081312 * b
    return [np.clip(np.rint(v), 0, 255).astype(np.uint8) for v in (y, cb, cr)]


def set_adobe_transform(jpeg, transform):
    """Rewrites the transform byte of the Adobe APP14 segment libjpeg wrote."""
    i = jpeg.index(b"Adobe") - 4  # after the marker and the segment length
    seg = bytearray(jpeg)
    seg[i + 4 + 11] = transform
    return bytes(seg)


def sof_precision(jpeg, precision, marker):
    """Rewrites the frame header: precision and SOF marker (to turn a baseline file into 12-bit)."""
    i = jpeg.index(b"\xff\xc0")
    out = bytearray(jpeg)
    out[i + 1] = marker
    out[i + 4] = precision
    return bytes(out)


def gif_offset_frame():
    """A GIF whose only frame (30x20) sits at (10,8) on the 57x41 logical screen."""
    idx, pal = quantized(64)
    sub = Image.frombytes("P", (30, 20), np.ascontiguousarray(idx[8:28, 10:40], np.uint8).tobytes())
    sub.putpalette(pal.reshape(-1).tolist())
    b = io.BytesIO()
    sub.save(b, "GIF", interlace=False)
    d = bytearray(b.getvalue())
    d[6:10] = struct.pack("<HH", W, H)
    i = d.index(b"\x2c", 13 + 3 * (2 << (d[10] & 7)))  # image descriptor after the global colour table
    d[i + 1:i + 5] = struct.pack("<HH", 10, 8)
    return bytes(d)


def frombytes(mode, arr):
    return Image.frombytes(mode, (W, H), np.ascontiguousarray(arr, np.uint8).tobytes())


def pillow(im, fmt, **kw):
    b = io.BytesIO()
    im.save(b, fmt, **kw)
    return b.getvalue()


def jpegtran(jpeg, *args):
    tool = shutil.which("jpegtran")
    if tool is None:
        sys.exit("gen.py: jpegtran not found (apt-get install libjpeg-turbo-progs)")
    return subprocess.run([tool, *args], input=jpeg, capture_output=True, check=True).stdout


# ---------------------------------------------------------------- the variants

def variants():
    """Yields (name, family, label, file extension, bytes, lossy)."""
    rgb, rgba = Image.fromarray(RGB), frombytes("RGBA", np.dstack([RGB, ALPHA]))
    gray = Image.fromarray(GRAY)
    idx16, pal16 = quantized(16)
    idx256, pal256 = quantized(256)
    idx2, pal2 = quantized(2)
    idx4, pal4 = quantized(4)
    cmyk_arr = np.dstack([255 - RGB, np.zeros((H, W), np.uint8)])
    cmyk_arr[..., 3] = np.minimum.reduce([cmyk_arr[..., 0], cmyk_arr[..., 1], cmyk_arr[..., 2]]) // 2
    cmyk_arr[..., :3] -= cmyk_arr[..., 3:]
    cmyk = frombytes("CMYK", cmyk_arr)

    def p_image(idx, pal):
        p = frombytes("P", idx)
        p.putpalette(pal.reshape(-1).tolist())
        return p

    # JPEG
    yield "jpeg-baseline-420", "JPEG", "baseline, 4:2:0", "jpg", pillow(rgb, "JPEG", quality=90, subsampling=2), True
    yield "jpeg-baseline-422", "JPEG", "baseline, 4:2:2", "jpg", pillow(rgb, "JPEG", quality=90, subsampling=1), True
    yield "jpeg-baseline-444", "JPEG", "baseline, 4:4:4", "jpg", pillow(rgb, "JPEG", quality=90, subsampling=0), True
    yield "jpeg-optimized", "JPEG", "optimised Huffman tables", "jpg", pillow(rgb, "JPEG", quality=90, optimize=True), True
    yield "jpeg-restart", "JPEG", "restart markers every MCU row", "jpg", pillow(rgb, "JPEG", quality=90, restart_marker_rows=1), True
    yield "jpeg-progressive", "JPEG", "progressive", "jpg", pillow(rgb, "JPEG", quality=90, progressive=True), True
    yield "jpeg-progressive-444", "JPEG", "progressive, 4:4:4", "jpg", pillow(rgb, "JPEG", quality=90, progressive=True, subsampling=0), True
    transposed = pillow(Image.fromarray(np.ascontiguousarray(RGB.transpose(1, 0, 2))), "JPEG", quality=90, subsampling=1)
    yield "jpeg-baseline-440", "JPEG", "baseline, 4:4:0 (jpegtran -transpose of 4:2:2)", "jpg", jpegtran(transposed, "-transpose"), True
    yield "jpeg-gray", "JPEG", "grayscale", "jpg", pillow(gray, "JPEG", quality=90), True
    yield "jpeg-gray-progressive", "JPEG", "grayscale, progressive", "jpg", pillow(gray, "JPEG", quality=90, progressive=True), True
    yield "jpeg-rgb", "JPEG", "RGB components (Adobe transform 0)", "jpg", pillow(rgb, "JPEG", quality=90, keep_rgb=True), True
    yield "jpeg-cmyk", "JPEG", "CMYK (Adobe, inverted)", "jpg", pillow(cmyk, "JPEG", quality=90), True
    # YCCK: libjpeg turns YCCK into stored (inverted) CMYK as 255 - R(YCbCr), K as is; Pillow then
    # inverts the Adobe CMYK. So the YCC part encodes (C, M, Y) taken as RGB, and K is stored inverted.
    # Pillow's CMYK writer inverts everything it writes, hence the 255 - below.
    y_, cb, cr = ycc(*(cmyk_arr[..., i].astype(np.float64) for i in range(3)))
    ycck = frombytes("CMYK", np.dstack([255 - y_, 255 - cb, 255 - cr, cmyk_arr[..., 3]]))
    yield "jpeg-ycck", "JPEG", "YCCK (Adobe transform 2)", "jpg", set_adobe_transform(pillow(ycck, "JPEG", quality=95), 2), True
    base = pillow(rgb, "JPEG", quality=90)
    yield "jpeg-arithmetic", "JPEG", "arithmetic-coded (SOF9)", "jpg", jpegtran(base, "-arithmetic"), True
    yield "jpeg-arithmetic-progressive", "JPEG", "arithmetic-coded, progressive (SOF10)", "jpg", jpegtran(base, "-arithmetic", "-progressive"), True
    yield "jpeg-12bit", "JPEG", "12-bit samples (SOF1)", "jpg", sof_precision(pillow(gray, "JPEG", quality=90), 12, 0xC1), True

    # PNG
    for bits in (1, 2, 4):
        v = gray_levels(bits)
        yield f"png-gray-{bits}", "PNG", f"gray, {bits}-bit", "png", png(v, bits, 0), False
    yield "png-gray-8", "PNG", "gray, 8-bit", "png", pillow(gray, "PNG"), False
    yield "png-gray-16", "PNG", "gray, 16-bit", "png", png(GRAY16, 16, 0), False
    yield "png-gray-trns", "PNG", "gray, 8-bit, tRNS colour key", "png", png(GRAY, 8, 0, trns=struct.pack(">H", int(GRAY[30, 30]))), False
    yield "png-gray-alpha-8", "PNG", "gray + alpha, 8-bit", "png", pillow(frombytes("LA", np.dstack([GRAY, ALPHA])), "PNG"), False
    yield "png-gray-alpha-16", "PNG", "gray + alpha, 16-bit", "png", png(np.dstack([GRAY16, ALPHA16]), 16, 4), False
    yield "png-rgb-8", "PNG", "RGB, 8-bit", "png", pillow(rgb, "PNG"), False
    yield "png-rgb-16", "PNG", "RGB, 16-bit", "png", png(RGB16, 16, 2), False
    yield "png-rgb-trns", "PNG", "RGB, 8-bit, tRNS colour key", "png", png(RGB, 8, 2, trns=struct.pack(">HHH", 20, 200, 60)), False
    yield "png-rgba-8", "PNG", "RGBA, 8-bit", "png", pillow(rgba, "PNG"), False
    yield "png-rgba-16", "PNG", "RGBA, 16-bit", "png", png(np.dstack([RGB16, ALPHA16]), 16, 6), False
    for bits, (idx, pal) in ((1, (idx2, pal2)), (2, (idx4, pal4)), (4, (idx16, pal16)), (8, (idx256, pal256))):
        yield f"png-palette-{bits}", "PNG", f"palette, {bits}-bit", "png", png(idx, bits, 3, palette=pal), False
    trns = bytes(np.clip(np.arange(len(pal256)) * 7 % 256, 0, 255).astype(np.uint8))
    yield "png-palette-trns", "PNG", "palette with tRNS alpha", "png", png(idx256, 8, 3, palette=pal256, trns=trns), False
    yield "png-interlaced-rgb", "PNG", "Adam7 interlaced, RGB 8-bit", "png", png(RGB, 8, 2, interlace=True), False
    yield "png-interlaced-gray-1", "PNG", "Adam7 interlaced, gray 1-bit", "png", png(gray_levels(1), 1, 0, interlace=True), False
    yield "png-interlaced-palette-4", "PNG", "Adam7 interlaced, palette 4-bit", "png", png(idx16, 4, 3, palette=pal16, interlace=True), False
    yield "png-interlaced-rgba-16", "PNG", "Adam7 interlaced, RGBA 16-bit", "png", png(np.dstack([RGB16, ALPHA16]), 16, 6, interlace=True), False

    # GIF
    p256 = p_image(idx256, pal256)
    yield "gif-still", "GIF", "still", "gif", pillow(p256, "GIF", interlace=False), False
    yield "gif-interlaced", "GIF", "interlaced", "gif", pillow(p256, "GIF", interlace=True), False
    yield "gif-transparent", "GIF", "transparent index", "gif", pillow(p256, "GIF", transparency=int(idx256[30, 30])), False
    frames = [p256, p_image(np.roll(idx256, 5, axis=1), pal256), p_image(np.roll(idx256, 10, axis=0), pal256)]
    yield "gif-animated", "GIF", "animated (first frame)", "gif", pillow(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0), False
    yield "gif-offset-frame", "GIF", "first frame smaller than the screen", "gif", gif_offset_frame(), False

    # BMP
    for bits, (idx, pal) in ((1, (idx2, pal2)), (4, (idx16, pal16)), (8, (idx256, pal256))):
        yield f"bmp-{bits}bit", "BMP", f"{bits}-bit palette", "bmp", bmp(bits, pack_rows(idx, bits), pal), False
    idx20, pal20 = quantized(20)
    yield "bmp-8bit-short-palette", "BMP", "8-bit, 20-colour palette", "bmp", bmp(8, pack_rows(idx20, 8), pal20, colors_used=20), False
    ramp = np.stack([np.arange(256)] * 3, axis=1)
    yield "bmp-8bit-gray", "BMP", "8-bit gray palette", "bmp", bmp(8, pack_rows(GRAY, 8), ramp), False
    yield "bmp-2bit", "BMP", "2-bit palette", "bmp", bmp(2, pack_rows(idx4, 2), pal4), False
    bgr = RGB[..., ::-1]
    yield "bmp-24bit", "BMP", "24-bit", "bmp", pillow(rgb, "BMP"), False
    yield "bmp-24bit-top-down", "BMP", "24-bit, top-down", "bmp", bmp(24, [r.tobytes() for r in bgr], top_down=True), False
    bgrx = np.dstack([bgr, ALPHA]).astype(np.uint8)
    yield "bmp-32bit", "BMP", "32-bit BGRX", "bmp", bmp(32, [r.tobytes() for r in bgrx]), False
    r5, g5, b5 = (RGB.astype(np.uint16) >> 3)[..., 0], (RGB.astype(np.uint16) >> 3)[..., 1], (RGB.astype(np.uint16) >> 3)[..., 2]
    v555 = (r5 << 10) | (g5 << 5) | b5
    yield "bmp-16bit-555", "BMP", "16-bit 5-5-5", "bmp", bmp(16, [r.astype("<u2").tobytes() for r in v555]), False
    v565 = (r5 << 11) | ((RGB[..., 1].astype(np.uint16) >> 2) << 5) | b5
    yield "bmp-16bit-565", "BMP", "16-bit 5-6-5 bitfields", "bmp", bmp(16, [r.astype("<u2").tobytes() for r in v565], compression=3, masks=(0xF800, 0x7E0, 0x1F)), False
    yield "bmp-16bit-555-bitfields", "BMP", "16-bit 5-5-5 bitfields", "bmp", bmp(16, [r.astype("<u2").tobytes() for r in v555], compression=3, masks=(0x7C00, 0x3E0, 0x1F)), False
    yield "bmp-32bit-bitfields", "BMP", "32-bit bitfields, no alpha", "bmp", bmp(32, [r.tobytes() for r in bgrx], compression=3, masks=(0xFF0000, 0xFF00, 0xFF)), False
    rgba_bytes = np.dstack([RGB, ALPHA]).astype(np.uint8)
    yield "bmp-32bit-rgba-bitfields", "BMP", "32-bit bitfields, R-G-B-A order", "bmp", bmp(32, [r.tobytes() for r in rgba_bytes], header=56, compression=3, masks=(0xFF, 0xFF00, 0xFF0000, 0xFF000000)), False
    yield "bmp-v3-alpha", "BMP", "32-bit with alpha, 56-byte header", "bmp", bmp(32, [r.tobytes() for r in bgrx], header=56, compression=3, masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000)), False
    yield "bmp-v4-alpha", "BMP", "32-bit with alpha, V4 header", "bmp", bmp(32, [r.tobytes() for r in bgrx], header=108, compression=3, masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000)), False
    yield "bmp-v5-alpha", "BMP", "32-bit with alpha, V5 header", "bmp", bmp(32, [r.tobytes() for r in bgrx], header=124, compression=3, masks=(0xFF0000, 0xFF00, 0xFF, 0xFF000000)), False
    yield "bmp-v5-24bit", "BMP", "24-bit, V5 header", "bmp", bmp(24, [r.tobytes() for r in bgr], header=124), False
    yield "bmp-v5-8bit", "BMP", "8-bit palette, V5 header", "bmp", bmp(8, pack_rows(idx256, 8), pal256, header=124), False
    yield "bmp-rle8", "BMP", "RLE8", "bmp", bmp(8, None, pal256, compression=1, pixel_data=rle8(idx256, skip=(20, 20, 6))), False
    yield "bmp-rle4", "BMP", "RLE4", "bmp", bmp(4, None, pal16, compression=2, pixel_data=rle4(idx16)), False
    yield "bmp-os2-v1-24bit", "BMP", "OS/2 1.x header, 24-bit", "bmp", bmp(24, [r.tobytes() for r in bgr], header=12), False
    yield "bmp-os2-v1-8bit", "BMP", "OS/2 1.x header, 8-bit palette", "bmp", bmp(8, pack_rows(idx256, 8), pal256, header=12, palette_entry=3), False
    yield "bmp-os2-v2-8bit", "BMP", "OS/2 2.x header (64 bytes), 8-bit palette", "bmp", bmp(8, pack_rows(idx256, 8), pal256, header=64), False
    v101010 = (RGB.astype(np.uint32) << 2)
    v101010 = (v101010[..., 0] << 20) | (v101010[..., 1] << 10) | v101010[..., 2]
    yield "bmp-32bit-10-10-10", "BMP", "32-bit 10-10-10 bitfields", "bmp", bmp(32, [r.astype("<u4").tobytes() for r in v101010], header=56, compression=3, masks=(0x3FF00000, 0xFFC00, 0x3FF, 0)), False
    yield "bmp-jpeg", "BMP", "embedded JPEG (BI_JPEG)", "bmp", bmp(24, None, compression=4, pixel_data=pillow(rgb, "JPEG", quality=90)), True

    # TIFF
    yield "tiff-rgb", "TIFF", "RGB, uncompressed", "tif", pillow(rgb, "TIFF"), False
    yield "tiff-rgb-lzw", "TIFF", "RGB, LZW", "tif", pillow(rgb, "TIFF", compression="tiff_lzw"), False
    yield "tiff-rgb-lzw-predictor", "TIFF", "RGB, LZW, horizontal predictor", "tif", pillow(rgb, "TIFF", compression="tiff_lzw", tiffinfo={317: 2}), False
    yield "tiff-rgb-deflate", "TIFF", "RGB, Deflate", "tif", pillow(rgb, "TIFF", compression="tiff_adobe_deflate"), False
    yield "tiff-rgb-packbits", "TIFF", "RGB, PackBits", "tif", pillow(rgb, "TIFF", compression="packbits"), False
    yield "tiff-rgb-jpeg", "TIFF", "RGB, JPEG", "tif", pillow(rgb, "TIFF", compression="jpeg", quality=90), True
    yield "tiff-rgb-jpeg-strips", "TIFF", "RGB, JPEG, 16-row strips", "tif", pillow(rgb, "TIFF", compression="jpeg", quality=90, strip_size=W * 3 * 16), True
    yield "tiff-ycbcr-jpeg", "TIFF", "Y'CbCr, JPEG", "tif", pillow(rgb.convert("YCbCr"), "TIFF", compression="jpeg", quality=90), True
    yield "tiff-rgb-lzw-strips", "TIFF", "RGB, LZW, 8-row strips", "tif", pillow(rgb, "TIFF", compression="tiff_lzw", strip_size=W * 3 * 8), False
    yield "tiff-rgb-lzma", "TIFF", "RGB, LZMA", "tif", pillow(rgb, "TIFF", compression="lzma"), False
    yield "tiff-rgba", "TIFF", "RGBA, unassociated alpha", "tif", pillow(rgba, "TIFF", compression="tiff_lzw"), False
    premul = (np.dstack([RGB, ALPHA]).astype(np.uint32) * np.dstack([ALPHA] * 4) + 127) // 255
    premul[..., 3] = ALPHA
    yield "tiff-rgba-associated", "TIFF", "RGBA, associated alpha", "tif", tiff(premul.astype(np.uint8), 8, 2, extra_samples=[1]), False
    yield "tiff-rgb-16", "TIFF", "RGB, 16-bit", "tif", tiff(RGB16, 16, 2, compression=8), False
    yield "tiff-rgb-16-predictor", "TIFF", "RGB, 16-bit, Deflate, predictor", "tif", tiff(RGB16, 16, 2, compression=8, predictor=2), False
    yield "tiff-gray-16-big-endian", "TIFF", "gray, 16-bit, big-endian", "tif", tiff(GRAY16, 16, 1, big_endian=True), False
    yield "tiff-rgb-big-endian", "TIFF", "RGB, big-endian (MM)", "tif", tiff(RGB, 8, 2, big_endian=True, rows_per_strip=8), False
    yield "tiff-rgb-tiled", "TIFF", "RGB, tiled (32x32), Deflate", "tif", tiff(RGB, 8, 2, compression=8, tile=(32, 32)), False
    yield "tiff-rgb-planar", "TIFF", "RGB, planar (separate planes)", "tif", tiff(RGB, 8, 2, planar=2, rows_per_strip=16), False
    yield "tiff-rgb-planar-deflate-predictor", "TIFF", "RGB, planar, Deflate, predictor", "tif", tiff(RGB, 8, 2, planar=2, compression=8, predictor=2), False
    yield "tiff-bigtiff", "TIFF", "BigTIFF", "tif", pillow(rgb, "TIFF", big_tiff=True), False
    yield "tiff-cmyk", "TIFF", "CMYK", "tif", pillow(cmyk, "TIFF", compression="tiff_lzw"), False
    yield "tiff-gray-8", "TIFF", "gray, 8-bit", "tif", pillow(gray, "TIFF", compression="tiff_adobe_deflate"), False
    yield "tiff-gray-16", "TIFF", "gray, 16-bit", "tif", pillow(Image.fromarray(GRAY16), "TIFF"), False
    yield "tiff-gray-4", "TIFF", "gray, 4-bit", "tif", tiff(gray_levels(4), 4, 1, compression=32773), False
    yield "tiff-gray-white-is-zero", "TIFF", "gray, WhiteIsZero", "tif", tiff(255 - GRAY, 8, 0), False
    yield "tiff-gray-alpha", "TIFF", "gray + alpha", "tif", pillow(frombytes("LA", np.dstack([GRAY, ALPHA])), "TIFF"), False
    bilevel = Image.fromarray(GRAY).convert("1")
    yield "tiff-bilevel", "TIFF", "bilevel, uncompressed", "tif", pillow(bilevel, "TIFF"), False
    yield "tiff-bilevel-fill-order-2", "TIFF", "bilevel, bits least significant first", "tif", tiff(np.array(bilevel, np.uint8), 1, 1, fill_order=2), False
    yield "tiff-bilevel-ccitt-rle", "TIFF", "bilevel, CCITT modified Huffman (RLE)", "tif", pillow(bilevel, "TIFF", compression="tiff_ccitt"), False
    yield "tiff-bilevel-g3", "TIFF", "bilevel, CCITT Group 3", "tif", pillow(bilevel, "TIFF", compression="group3"), False
    yield "tiff-bilevel-g4", "TIFF", "bilevel, CCITT Group 4", "tif", pillow(bilevel, "TIFF", compression="group4"), False
    yield "tiff-palette-8", "TIFF", "palette, 8-bit", "tif", pillow(p256, "TIFF", compression="tiff_lzw"), False
    pa = p256.convert("PA")
    pa.putalpha(Image.fromarray(ALPHA))
    yield "tiff-palette-alpha", "TIFF", "palette + alpha", "tif", pillow(pa, "TIFF"), False
    cmap16 = np.zeros((3, 16), np.uint16)
    cmap16[:, :len(pal16)] = pal16.T.astype(np.uint16) * 257
    yield "tiff-palette-4", "TIFF", "palette, 4-bit", "tif", tiff(idx16, 4, 3, colormap=cmap16.reshape(-1).tolist()), False

    # WebP
    yield "webp-lossy", "WebP", "lossy", "webp", pillow(rgb, "WEBP", quality=90), True
    yield "webp-lossless", "WebP", "lossless", "webp", pillow(rgb, "WEBP", lossless=True), False
    yield "webp-lossy-alpha", "WebP", "lossy with alpha", "webp", pillow(rgba, "WEBP", quality=90), True
    yield "webp-lossless-alpha", "WebP", "lossless with alpha", "webp", pillow(rgba, "WEBP", lossless=True, exact=True), False
    shifted = [Image.fromarray(np.roll(RGB, 7 * i, axis=1)) for i in range(3)]
    yield "webp-animated", "WebP", "animated, lossy (first frame)", "webp", pillow(shifted[0], "WEBP", save_all=True, append_images=shifted[1:], duration=100, quality=90), True
    shifted_a = [frombytes("RGBA", np.dstack([np.roll(RGB, 7 * i, axis=1), ALPHA])) for i in range(3)]
    yield "webp-animated-lossless-alpha", "WebP", "animated, lossless with alpha (first frame)", "webp", pillow(shifted_a[0], "WEBP", save_all=True, append_images=shifted_a[1:], duration=100, lossless=True), False


def over_white(rgb, a):
    c, a = rgb.astype(np.uint32), a.astype(np.uint32)[..., None]
    return ((c * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


def intended():
    """The pixels the generator meant, for the lossless variants it can state exactly: checked
    against Pillow's (a disagreement is a bug here or a quirk there, printed), and the reference
    where Pillow refuses a variant."""
    idx2, pal2 = quantized(2)
    idx4, pal4 = quantized(4)
    idx16, pal16 = quantized(16)
    idx20, pal20 = quantized(20)
    idx256, pal256 = quantized(256)
    rgba = over_white(RGB, ALPHA)
    g3 = lambda g: np.dstack([g] * 3).astype(np.uint8)
    scaled = lambda bits: g3(gray_levels(bits).astype(np.uint32) * 255 // ((1 << bits) - 1))
    rle8 = pal256[idx256].copy()
    rle8[20, 20:26] = pal256[0]  # left out by the delta escape: Pillow fills index 0
    trns = np.clip(np.arange(len(pal256)) * 7 % 256, 0, 255).astype(np.uint8)
    out = {
        "png-gray-1": scaled(1), "png-gray-2": scaled(2), "png-gray-4": scaled(4), "png-gray-8": g3(GRAY),
        "png-gray-16": g3(GRAY), "png-gray-trns": over_white(g3(GRAY), np.where(GRAY == GRAY[30, 30], 0, 255)),
        "png-gray-alpha-8": over_white(g3(GRAY), ALPHA), "png-gray-alpha-16": over_white(g3(GRAY), ALPHA),
        "png-rgb-8": RGB, "png-rgb-16": RGB, "png-rgba-8": rgba, "png-rgba-16": rgba,
        "png-rgb-trns": over_white(RGB, np.where((RGB == (20, 200, 60)).all(axis=-1), 0, 255)),
        "png-palette-1": pal2[idx2], "png-palette-2": pal4[idx4], "png-palette-4": pal16[idx16], "png-palette-8": pal256[idx256],
        "png-palette-trns": over_white(pal256[idx256], trns[idx256]),
        "png-interlaced-rgb": RGB, "png-interlaced-gray-1": scaled(1), "png-interlaced-palette-4": pal16[idx16], "png-interlaced-rgba-16": rgba,
        "gif-still": pal256[idx256], "gif-interlaced": pal256[idx256],
        "bmp-1bit": pal2[idx2], "bmp-2bit": pal4[idx4], "bmp-4bit": pal16[idx16], "bmp-8bit": pal256[idx256],
        "bmp-8bit-short-palette": pal20[idx20], "bmp-8bit-gray": g3(GRAY), "bmp-24bit": RGB, "bmp-24bit-top-down": RGB,
        "bmp-32bit": RGB, "bmp-32bit-bitfields": RGB, "bmp-32bit-rgba-bitfields": rgba, "bmp-v3-alpha": rgba,
        "bmp-v4-alpha": rgba, "bmp-v5-alpha": rgba, "bmp-v5-24bit": RGB, "bmp-v5-8bit": pal256[idx256],
        "bmp-rle8": rle8, "bmp-rle4": pal16[idx16], "bmp-os2-v1-24bit": RGB, "bmp-os2-v1-8bit": pal256[idx256],
        "bmp-os2-v2-8bit": pal256[idx256],
        # 10-bit channels scaled to 8 bits the way Pillow scales its 5- and 6-bit ones: v * 255 // max
        "bmp-32bit-10-10-10": ((RGB.astype(np.uint32) << 2) * 255 // 1023).astype(np.uint8),
        "tiff-rgb": RGB, "tiff-rgb-lzw": RGB, "tiff-rgb-lzw-predictor": RGB, "tiff-rgb-deflate": RGB,
        "tiff-rgb-packbits": RGB, "tiff-rgb-lzma": RGB, "tiff-rgba": rgba, "tiff-rgba-associated": rgba,
        "tiff-rgb-16": RGB, "tiff-rgb-16-predictor": RGB, "tiff-gray-16-big-endian": g3(GRAY), "tiff-rgb-lzw-strips": RGB, "tiff-rgb-big-endian": RGB, "tiff-rgb-tiled": RGB, "tiff-rgb-planar": RGB,
        "tiff-rgb-planar-deflate-predictor": RGB, "tiff-bigtiff": RGB, "tiff-gray-8": g3(GRAY), "tiff-gray-16": g3(GRAY),
        "tiff-gray-4": scaled(4), "tiff-gray-white-is-zero": g3(GRAY), "tiff-gray-alpha": over_white(g3(GRAY), ALPHA),
        "tiff-palette-8": pal256[idx256], "tiff-palette-4": pal16[idx16],
        "webp-lossless": RGB, "webp-lossless-alpha": rgba,
    }
    return {k: np.asarray(v, np.uint8) for k, v in out.items()}


def pillow_reference(data):
    """Pillow's decoding of data (first frame), as opaque 8-bit RGB like our decoder's output."""
    im = Image.open(io.BytesIO(data))
    im.load()
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        g = (np.array(im).astype(np.uint32) >> 8).astype(np.uint8)
        return np.dstack([g] * 3), im.mode
    if im.mode in ("RGBA", "LA", "PA", "RGBa") or "transparency" in im.info:
        rgba = np.array(im.convert("RGBA"))
        return over_white(rgba[..., :3], rgba[..., 3]), im.mode
    return np.array(im.convert("RGB")), im.mode


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {"pillow": PIL.__version__, "width": W, "height": H, "variants": []}
    meant = intended()
    for name, family, label, ext, data, lossy in variants():
        file = f"{name}.{ext}"
        with open(os.path.join(OUT, file), "wb") as f:
            f.write(data)
        entry = {"name": name, "file": file, "family": family, "label": label, "lossy": lossy}
        try:
            ref, mode = pillow_reference(data)
            entry.update(pillow=True, pillow_mode=mode, reference_source="pillow")
            if name in meant:
                d = np.abs(ref.astype(int) - meant[name].astype(int))
                if d.max() > 1:
                    print(f"{name}: Pillow differs from the intended pixels by up to {d.max()} ({(d > 1).sum()} values)")
        except Exception as e:  # Pillow refuses the variant: keep why
            # without object addresses, so that regenerating gives the same manifest
            entry.update(pillow=False, pillow_error=re.sub(r" <[^>]* at 0x[0-9a-f]+>", "", f"{type(e).__name__}: {e}"))
            ref = meant.get(name)
            if ref is not None:
                entry["reference_source"] = "generator"
        if ref is not None:
            if ref.shape != (H, W, 3):
                sys.exit(f"{name}: reference shape {ref.shape}")
            raw = np.ascontiguousarray(ref, np.uint8).tobytes()
            # named by content: the many lossless variants of one picture share one file
            entry["reference"] = f"ref-{hashlib.sha256(raw).hexdigest()[:12]}.rgb.gz"
            with open(os.path.join(OUT, entry["reference"]), "wb") as f:
                f.write(gzip.compress(raw, mtime=0))
        manifest["variants"].append(entry)
        status = "pillow" if entry["pillow"] else "pillow refuses: " + entry["pillow_error"]
        print(f"{name:36s} {len(data):6d} bytes  {status}")
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
