"""Turns a model directory into the layout export.py wrote before emotions.json format 2: a
complete serving SavedModel in serving/ (graph + a checkpoint of the initial weights under the
serving keys) and a format-1 emotions.json. usage: make_old_layout.py NEW_MODEL OLD_MODEL"""
import json
import os
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf

new, old = sys.argv[1:3]
shutil.copytree(new, old)
meta = json.load(open(os.path.join(old, "emotions.json")))
tpl = os.path.join(old, meta["serving"]["dir"])
serving = os.path.join(old, "serving")
os.makedirs(os.path.join(serving, "variables"))
shutil.move(os.path.join(old, meta["serving"]["graph"]), os.path.join(serving, "saved_model.pb"))
shutil.move(os.path.join(old, meta["serving"]["key_map"]), os.path.join(serving, "key_map.json"))
object_graph = open(os.path.join(old, meta["serving"]["object_graph"]), "rb").read()
shutil.rmtree(tpl)

key_map = json.load(open(os.path.join(serving, "key_map.json")))["map"]
reader = tf.train.load_checkpoint(os.path.join(old, "variables", "variables"))
keys = sorted(key_map)
tf.raw_ops.SaveV2(prefix=os.path.join(serving, "variables", "variables"),
                  tensor_names=keys + ["_CHECKPOINTABLE_OBJECT_GRAPH"], shape_and_slices=[""] * (len(keys) + 1),
                  tensors=[tf.constant(reader.get_tensor(key_map[k])) for k in keys] + [tf.constant(object_graph)])

for k in ("input_height", "input_width", "channels", "color", "output"):
    meta.pop(k)
meta.update(format=1, serving={"dir": "serving", "key_map": "serving/key_map.json"})
with open(os.path.join(old, "emotions.json"), "w") as f:
    json.dump(meta, f, indent=2)
