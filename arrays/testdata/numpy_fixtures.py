"""Writes the .npz files that arrays' tests read, made by NumPy itself.

Usage: numpy_fixtures.py OUT_DIR
       numpy_fixtures.py --describe FILE.npz   (prints what np.load reads, as expected.json)

  plain.npz, compressed.npz  every supported dtype (np.savez, np.savez_compressed)
  expected.json              per array of those: dtype, shape and C-order values as strings
                             (floats as hex bits, bytes as hex, ints and bools in decimal)
  unsupported_*.npz          one array of a dtype ReadNPZ refuses
  casts.npz                  float16/bfloat16 conversions computed by NumPy and ml_dtypes
"""

import json
import os
import sys
import warnings

import numpy as np

warnings.simplefilter("ignore")


def encode(a):
    a = np.asarray(a)
    kind = a.dtype.kind
    flat = a.astype(a.dtype.newbyteorder("=")).ravel(order="C")
    if kind == "f":
        return [format(int(x), "x") for x in flat.view("u%d" % a.dtype.itemsize)]
    if kind == "S":
        return [x.hex() for x in flat.tolist()]
    if kind == "U":
        return flat.tolist()
    return [str(int(x)) for x in flat.tolist()]


def describe(arrays):
    out = {}
    for k, a in arrays.items():
        a = np.asarray(a)
        out[k] = {
            "dtype": "string" if a.dtype.kind in "US" else a.dtype.name,
            "kind": a.dtype.kind,
            "shape": list(a.shape),
            "values": encode(a),
        }
    return out


if sys.argv[1] == "--describe":
    with np.load(sys.argv[2]) as z:
        json.dump(describe({k: z[k] for k in z.files}), sys.stdout)
    sys.exit(0)

out = sys.argv[1]
rng = np.random.default_rng(7)

arrays = {
    "f2": np.array([0, -0.0, 1.5, 65504, np.inf, -np.inf, 6e-8, -2.5], dtype=np.float16),
    "f4": rng.standard_normal((2, 3)).astype(np.float32),
    "f8": np.array([0.1, -1e300, np.inf, 5e-324, -0.0]),
    "i1": np.array([-128, 0, 127], np.int8),
    "i2": np.array([-32768, 1, 32767], np.int16),
    "i4": np.arange(-3, 3, dtype=np.int32).reshape(3, 2),
    "i8": np.array([-(2**63), 0, 2**63 - 1], np.int64),
    "u1": np.array([0, 200, 255], np.uint8),
    "u2": np.array([0, 40000, 65535], np.uint16),
    "b1": np.array([[True, False], [False, True]]),
    "U": np.array(["a", "h\u00e9llo", "", "\u65e5\u672c\u8a9e", "\U0001f600"]),
    "S": np.array([b"ab", b"", b"\xff\x00z"]),
    "scalar": np.float32(3.25),
    "scalar_i": np.int64(-7),
    "scalar_U": np.str_("hi"),
    "cube": np.arange(24, dtype=np.int16).reshape(2, 3, 4),
    "empty": np.zeros((0, 3), np.float32),
    "fortran2": np.asfortranarray(np.arange(6, dtype=np.float64).reshape(2, 3)),
    "fortran3": np.asfortranarray(np.arange(24, dtype=np.int32).reshape(2, 3, 4)),
    "fortranU": np.asfortranarray(np.array([["a", "bb", "c"], ["dd", "e", "ff"]])),
    "be_i4": np.arange(4, dtype=">i4"),
    "be_f8": np.array([1.5, -2.25], dtype=">f8"),
    "be_f2": np.array([1.5, -2.25], dtype=">f2"),
    "be_u2": np.array([1, 65000], dtype=">u2"),
    "be_U": np.array(["xy", "z"], dtype=">U2"),
    "a/b": np.array([1, 2], np.uint8),  # np.load's key keeps the slash
}
np.savez(os.path.join(out, "plain.npz"), **arrays)
np.savez_compressed(os.path.join(out, "compressed.npz"), **arrays)


with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(describe(arrays), f)

unsupported = {
    "complex": np.array([1 + 2j]),
    "object": np.array([{"a": 1}, None], dtype=object),
    "uint32": np.array([1, 2], np.uint32),
    "uint64": np.array([1, 2], np.uint64),
    "struct": np.array([(1, 2.0)], dtype=[("a", "<i4"), ("b", "<f8")]),
    "datetime": np.array(["2024-01-01"], dtype="datetime64[D]"),
    "longdouble": np.array([1.0], dtype=np.longdouble),
}
try:
    import ml_dtypes

    unsupported["bfloat16"] = np.array([1.0], dtype=ml_dtypes.bfloat16)
except ImportError:
    pass
for k, a in unsupported.items():
    np.savez(os.path.join(out, "unsupported_%s.npz" % k), x=a)

# Casts: edge values, then random ones spread over every exponent.
f32_edges = np.array(
    [
        0.0, -0.0, 1.0, -1.0, 65504.0, 65505.0, 65519.996, 65520.0, 65536.0, 1e10, -1e10,
        2.0**-24, 2.0**-25, 2.0**-25 * 1.0000001, 3 * 2.0**-26, 2.0**-26, 2.0**-14,
        2.0**-14 - 2.0**-25, 2.0**-14 - 2.0**-24, 1 + 2.0**-11, 1 + 3 * 2.0**-11,
        1 + 2.0**-8, 1 + 3 * 2.0**-8, 3.3895314e38, 3.4028235e38, 1e-45, 1e-40,
        1.1754942e-38, 0.1, 1 / 3,
    ],
    dtype=np.float32,
)
f32_special = np.array(
    [0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FA00000,
     0x7F802000, 0x7F801FFF, 0x00000001, 0x807FFFFF],
    dtype=np.uint32,
).view(np.float32)
f32_bits = rng.integers(0, 2**32, 50000, dtype=np.uint64).astype(np.uint32).view(np.float32)
f32_range = (rng.uniform(-1, 1, 50000) * 2.0 ** rng.uniform(-28, 18, 50000)).astype(np.float32)
f32_in = np.concatenate([f32_edges, -f32_edges, f32_special, f32_bits, f32_range])

ties = np.array([k * 2.0**-25 for k in range(1, 64)] + [1 + k * 2.0**-11 for k in range(8)]
                + [1 + k * 2.0**-8 for k in range(8)] + [65504 + k * 8.0 for k in range(4)])
f64_edges = np.concatenate([ties, ties * (1 + 2.0**-40), ties * (1 - 2.0**-40),
                            [1 + 2.0**-8 + 2.0**-30, 1 + 2.0**-11 + 2.0**-40, 1e300, 5e-324,
                             3.4e38, 3.40282357e38, 3.3961e38]])
f64_special = np.array(
    [0x7FF0000000000000, 0xFFF0000000000000, 0x7FF8000000000000, 0xFFF8000000000000,
     0x7FF0000000000001, 0x7FF4000000000000, 0x7FF0040000000000],
    dtype=np.uint64,
).view(np.float64)
f64_range = rng.uniform(-1, 1, 50000) * 2.0 ** rng.uniform(-30, 18, 50000)
f64_wide = rng.uniform(-1, 1, 20000) * 2.0 ** rng.uniform(-140, 130, 20000)
f64_in = np.concatenate([f64_edges, -f64_edges, f64_special, f64_range, f64_wide])

casts = {
    "f32_in": f32_in,
    "f32_to_f16": f32_in.astype(np.float16).view(np.uint16),
    "f64_in": f64_in,
    "f64_to_f16": f64_in.astype(np.float16).view(np.uint16),
    "f16_all": np.arange(65536, dtype=np.uint16),
    "f16_to_f32": np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32),
}
try:
    import ml_dtypes

    casts["f32_to_bf16"] = f32_in.astype(ml_dtypes.bfloat16).view(np.uint16)
    casts["f64_to_bf16"] = f64_in.astype(ml_dtypes.bfloat16).view(np.uint16)
    casts["f16_to_bf16"] = np.arange(65536, dtype=np.uint16).view(np.float16).astype(ml_dtypes.bfloat16).view(np.uint16)
except ImportError:
    pass
np.savez(os.path.join(out, "casts.npz"), **casts)
