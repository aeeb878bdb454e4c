"""Reads a tensor bundle with TensorFlow and saves the same tensors again with SaveV2, in the
order given: what TensorFlow's own BundleWriter writes, for tfbundle's test to compare.

usage: resave.py PREFIX KEYS_FILE OUT_PREFIX   (KEYS_FILE: one key per line, the add order)
"""
import sys

import tensorflow as tf

prefix, keys_file, out = sys.argv[1:4]
keys = open(keys_file, encoding="utf-8").read().split("\n")[:-1]
reader = tf.train.load_checkpoint(prefix)
stored = set(reader.get_variable_to_shape_map())
if stored != set(keys):
    sys.exit(f"resave: the bundle holds {len(stored)} keys, {len(set(keys) ^ stored)} differ from those added")
dtypes = reader.get_variable_to_dtype_map()
tensors = [tf.constant(reader.get_tensor(k), dtype=dtypes[k]) for k in keys]
tf.raw_ops.SaveV2(prefix=out, tensor_names=keys, shape_and_slices=[""] * len(keys), tensors=tensors)
print(len(keys))
