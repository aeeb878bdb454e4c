"""face-api's facial-expression net (Vincent Mühler's face-api.js, MIT; the weights as shipped in
the npm package @vladmandic/face-api, MIT) re-implemented with TensorFlow ops, so a second,
independently trained teacher runs beside fer in Python without Node.

The weights are a TF.js weights manifest + .bin (uint8-quantised: value = q * scale + min), read
out of the npm tarball, which is fetched from the npm registry into the cache when missing.
The forward pass follows face-api.js 0.22.2 src/faceFeatureExtractor (FaceFeatureExtractor.ts,
denseBlock.ts) and src/faceExpressionNet: RGB 112x112, minus the mean RGB, /255, four dense
blocks of 4 convolutions (the first of each with stride 2; each later one sees the sum of the
block's earlier outputs), 7x7 average pool, a 256->7 fully connected layer, softmax over
neutral, happy, sad, angry, fearful, disgusted, surprised.

Checked against face-api.js 0.22.2 itself (Node, @tensorflow/tfjs-core 1.7 CPU backend,
faceExpressionNet.loadFromDisk on the same weights) given the same 112x112 inputs, made from the
145 faces4 valid crops: largest difference of a probability 1.7e-6, same argmax everywhere.
"""
import json
import os
import tarfile
import urllib.request

VERSION = "1.7.15"
URL = "https://registry.npmjs.org/@vladmandic/face-api/-/face-api-%s.tgz" % VERSION
MANIFEST = "package/model/face_expression_model-weights_manifest.json"
CLASSES = ["neutral", "happy", "sad", "angry", "fearful", "disgusted", "surprised"]
MEAN_RGB = (122.782, 117.001, 104.298)
SIZE = 112


def tarball(cache):
    path = os.path.join(cache, "vladmandic-face-api-%s.tgz" % VERSION)
    if not os.path.exists(path):
        os.makedirs(cache, exist_ok=True)
        with urllib.request.urlopen(URL, timeout=120) as r, open(path + ".tmp", "wb") as f:
            f.write(r.read())
        os.replace(path + ".tmp", path)
    return path


def load_weights(cache):
    """name -> float32 array, decoded as TF.js does (tfjs-core io/io_utils decodeWeights)."""
    import numpy as np
    with tarfile.open(tarball(cache)) as t:
        manifest = json.load(t.extractfile(MANIFEST))
        weights = {}
        for group in manifest:
            buf = b"".join(t.extractfile("package/model/" + p).read() for p in group["paths"])
            off = 0
            for w in group["weights"]:
                n = int(np.prod(w["shape"]))
                q = w.get("quantization")
                if q:
                    if q["dtype"] != "uint8":
                        raise SystemExit("%s: %s is quantised as %s, only uint8 is read" % (MANIFEST, w["name"], q["dtype"]))
                    a = np.frombuffer(buf, np.uint8, n, off).astype(np.float32) * q["scale"] + q["min"]
                    off += n
                else:
                    a = np.frombuffer(buf, np.float32, n, off)
                    off += 4 * n
                weights[w["name"]] = a.reshape(w["shape"])
            if off != len(buf):  # a manifest that does not describe its .bin exactly
                raise SystemExit("%s: the manifest reads %d of the %d bytes of %s" % (MANIFEST, off, len(buf), group["paths"]))
    return weights


class FaceExpressionNet:
    def __init__(self, cache):
        import tensorflow as tf
        self.w = {k: tf.constant(v) for k, v in load_weights(cache).items()}

    def _sep(self, x, name, stride):
        import tensorflow as tf
        w = self.w
        y = tf.nn.separable_conv2d(x, w[name + "/depthwise_filter"], w[name + "/pointwise_filter"],
                                   [1, stride, stride, 1], "SAME")
        return y + w[name + "/bias"]

    def _block(self, x, name, first):
        import tensorflow as tf
        if first:
            out1 = tf.nn.conv2d(x, self.w[name + "/conv0/filters"], 2, "SAME") + self.w[name + "/conv0/bias"]
        else:
            out1 = self._sep(x, name + "/conv0", 2)
        out1 = tf.nn.relu(out1)
        out2 = self._sep(out1, name + "/conv1", 1)
        out3 = self._sep(tf.nn.relu(out1 + out2), name + "/conv2", 1)
        out4 = self._sep(tf.nn.relu(out1 + out2 + out3), name + "/conv3", 1)
        return tf.nn.relu(out1 + out2 + out3 + out4)

    def probs(self, rgb255):
        """Softmax over CLASSES for faces rgb255 float32 [n,112,112,3] in [0,255]."""
        import tensorflow as tf
        x = (rgb255 - tf.constant(MEAN_RGB, tf.float32)) / 255.0
        for i in range(4):
            x = self._block(x, "dense%d" % i, i == 0)
        x = tf.nn.avg_pool2d(x, 7, 2, "VALID")
        x = tf.reshape(x, [-1, 256])
        return tf.nn.softmax(x @ self.w["fc/weights"] + self.w["fc/bias"]).numpy()
