"""Drive the real Keras 3.15.1 callbacks over scripted epoch logs.

Prints (or writes to argv[1]) JSON with every scenario's inputs and the
decisions Keras made, so TestKerasParity in callbacks_parity_test.go can feed
the same inputs to the Go port and compare. Non-finite floats are encoded as
the strings "nan", "inf", "-inf" because JSON has no literal for them.
"""

import json
import math
import os
import sys
import tempfile
import warnings

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import numpy as np  # noqa: E402
import keras  # noqa: E402

NAN = float("nan")
INF = float("inf")


def enc(x):
    if isinstance(x, float) and not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def enc_tree(x):
    if isinstance(x, dict):
        return {k: enc_tree(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [enc_tree(v) for v in x]
    return enc(x)


def vl(*values):
    return [{"loss": v + 0.5, "val_loss": v} for v in values]


def va(*values):
    return [
        {"loss": 1.0 - v, "accuracy": v - 0.01, "val_loss": 1.0 - v, "val_accuracy": v}
        for v in values
    ]


# (name, callback, params, compile metrics, initial lr, logs)
SCENARIOS = [
    # --- EarlyStopping ---
    ("es_plateau_patience2", "EarlyStopping", {"patience": 2},
     [], 0.01, vl(1.0, 0.9, 0.9, 0.95, 0.8, 0.85, 0.86, 0.87)),
    ("es_exact_tie", "EarlyStopping", {"monitor": "loss", "patience": 1},
     [], 0.01, [{"loss": 0.5}] * 4),
    ("es_float32_tie", "EarlyStopping", {"patience": 3},
     [], 0.01, vl(0.3, 0.30000001, 0.29999999, 0.2999999)),
    ("es_min_delta_exact", "EarlyStopping", {"patience": 1, "min_delta": 0.1},
     [], 0.01, vl(1.0, 0.9, 0.8, 0.7)),
    ("es_min_delta_more", "EarlyStopping", {"patience": 1, "min_delta": 0.1},
     [], 0.01, vl(1.0, 0.8999, 0.7998, 0.6997, 0.6)),
    ("es_min_delta_less", "EarlyStopping", {"patience": 1, "min_delta": 0.1},
     [], 0.01, vl(1.0, 0.9001, 0.8, 0.7001)),
    ("es_min_delta_negative", "EarlyStopping", {"patience": 1, "min_delta": -0.05},
     [], 0.01, vl(1.0, 0.96, 0.9, 0.86, 0.84)),
    ("es_baseline_never_reached_improving", "EarlyStopping",
     {"patience": 2, "baseline": 0.5},
     [], 0.01, vl(1.0, 0.9, 0.8, 0.7, 0.6, 0.55)),
    ("es_baseline_never_reached_plateau", "EarlyStopping",
     {"patience": 2, "baseline": 0.5, "restore_best_weights": True},
     [], 0.01, vl(0.9, 0.8, 0.85, 0.9, 0.95, 0.7)),
    ("es_baseline_reached", "EarlyStopping", {"patience": 2, "baseline": 0.5},
     [], 0.01, vl(0.6, 0.45, 0.46, 0.47, 0.48, 0.3)),
    ("es_baseline_max", "EarlyStopping",
     {"monitor": "val_accuracy", "mode": "max", "patience": 1, "baseline": 0.8},
     [], 0.01, va(0.5, 0.7, 0.85, 0.84, 0.83)),
    ("es_mode_max_val_accuracy", "EarlyStopping",
     {"monitor": "val_accuracy", "mode": "max", "patience": 2},
     [], 0.01, va(0.5, 0.6, 0.6, 0.55, 0.7, 0.7, 0.69, 0.71)),
    ("es_auto_val_accuracy", "EarlyStopping",
     {"monitor": "val_accuracy", "patience": 1},
     ["accuracy"], 0.01, va(0.5, 0.6, 0.59, 0.61, 0.61)),
    ("es_auto_accuracy_train", "EarlyStopping",
     {"monitor": "accuracy", "patience": 1},
     ["accuracy"], 0.01, va(0.5, 0.6, 0.6, 0.7)),
    ("es_auto_val_loss", "EarlyStopping", {"patience": 1},
     ["accuracy"], 0.01, vl(1.0, 1.1, 0.9, 0.95)),
    ("es_auto_unknown_metric", "EarlyStopping",
     {"monitor": "val_foo", "patience": 1},
     [], 0.01, [{"val_foo": 1.0}, {"val_foo": 0.5}]),
    ("es_auto_accuracy_not_compiled", "EarlyStopping",
     {"monitor": "val_accuracy", "patience": 1},
     [], 0.01, va(0.5, 0.6)),
    ("es_mode_min_on_accuracy", "EarlyStopping",
     {"monitor": "val_accuracy", "mode": "min", "patience": 1},
     [], 0.01, va(0.5, 0.4, 0.45, 0.46)),
    ("es_unknown_mode_falls_back_to_auto", "EarlyStopping",
     {"mode": "bogus", "patience": 1},
     [], 0.01, vl(1.0, 0.9, 0.95, 0.97)),
    ("es_restore_after_stop", "EarlyStopping",
     {"patience": 2, "restore_best_weights": True},
     [], 0.01, vl(1.0, 0.5, 0.7, 0.8, 0.9, 0.1)),
    ("es_restore_without_stop", "EarlyStopping",
     {"patience": 5, "restore_best_weights": True},
     [], 0.01, vl(1.0, 0.5, 0.7, 0.8)),
    ("es_restore_first_epoch_best", "EarlyStopping",
     {"patience": 1, "restore_best_weights": True},
     [], 0.01, vl(0.1, 0.5, 0.7)),
    ("es_restore_start_from_epoch_never_monitored", "EarlyStopping",
     {"patience": 1, "restore_best_weights": True, "start_from_epoch": 10},
     [], 0.01, vl(1.0, 0.5, 0.7)),
    ("es_start_from_epoch", "EarlyStopping",
     {"patience": 1, "start_from_epoch": 3, "restore_best_weights": True},
     [], 0.01, vl(0.1, 0.2, 0.3, 0.9, 0.95, 1.0, 1.1)),
    ("es_patience0", "EarlyStopping", {"patience": 0},
     [], 0.01, vl(1.0, 1.1, 0.5)),
    ("es_patience0_first_epoch_never_stops", "EarlyStopping",
     {"patience": 0, "baseline": 0.1},
     [], 0.01, vl(1.0, 0.9)),
    ("es_missing_monitor", "EarlyStopping", {"patience": 1},
     [], 0.01, [{"loss": 1.0}, {"loss": 0.9, "val_loss": 1.0}, {"loss": 0.8},
                {"loss": 0.7, "val_loss": 1.1}, {"loss": 0.6, "val_loss": 1.2}]),
    ("es_nan_first", "EarlyStopping",
     {"patience": 2, "restore_best_weights": True},
     [], 0.01, vl(NAN, 0.5, 0.4, 0.3)),
    ("es_nan_later", "EarlyStopping", {"patience": 2},
     [], 0.01, vl(1.0, NAN, 0.9, NAN, NAN, NAN)),
    ("es_inf", "EarlyStopping", {"patience": 1},
     [], 0.01, vl(INF, 1e30, -INF, -INF)),
    ("es_large_patience_runs_out", "EarlyStopping", {"patience": 3, "min_delta": 0.01},
     [], 0.01, vl(1.0, 0.995, 0.99, 0.985, 0.98, 0.97)),
    # --- ReduceLROnPlateau ---
    ("rl_basic", "ReduceLROnPlateau", {"factor": 0.5, "patience": 2},
     [], 0.01, vl(1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.85, 0.85, 0.85)),
    ("rl_defaults", "ReduceLROnPlateau", {},
     [], 0.001, vl(*([1.0] * 13), *([0.99995] * 12))),
    ("rl_cooldown", "ReduceLROnPlateau", {"factor": 0.5, "patience": 1, "cooldown": 2},
     [], 0.1, vl(*([1.0] * 10))),
    ("rl_cooldown_with_improvements", "ReduceLROnPlateau",
     {"factor": 0.2, "patience": 1, "cooldown": 3},
     [], 0.1, vl(1.0, 1.0, 0.9, 0.95, 0.8, 0.8, 0.8, 0.8, 0.8, 0.7, 0.7)),
    ("rl_min_lr_floor", "ReduceLROnPlateau",
     {"factor": 0.5, "patience": 1, "min_lr": 0.001},
     [], 0.004, vl(*([1.0] * 7))),
    ("rl_min_lr_float32_edge", "ReduceLROnPlateau",
     {"factor": 0.5, "patience": 1, "min_lr": 0.00100000001},
     [], 0.001, vl(*([1.0] * 4))),
    ("rl_min_lr_not_float32_exact", "ReduceLROnPlateau",
     {"factor": 0.7, "patience": 1, "min_lr": 0.0123},
     [], 0.05, vl(*([1.0] * 10))),
    ("rl_min_lr_above_lr", "ReduceLROnPlateau",
     {"factor": 0.5, "patience": 1, "min_lr": 0.5},
     [], 0.1, vl(*([1.0] * 4))),
    ("rl_factor_zero", "ReduceLROnPlateau", {"factor": 0.0, "patience": 1},
     [], 0.1, vl(*([1.0] * 4))),
    ("rl_factor_negative", "ReduceLROnPlateau", {"factor": -0.5, "patience": 1},
     [], 0.1, vl(*([1.0] * 4))),
    ("rl_factor_rounding_chain", "ReduceLROnPlateau", {"factor": 0.3, "patience": 1},
     [], 0.1, vl(*([1.0] * 12))),
    ("rl_factor_ge1", "ReduceLROnPlateau", {"factor": 1.0}, [], 0.1, vl(1.0)),
    ("rl_min_delta_edge", "ReduceLROnPlateau",
     {"factor": 0.5, "patience": 1, "min_delta": 0.01},
     [], 0.1, vl(1.0, 0.99, 0.98, 0.9699, 0.96, 0.95)),
    ("rl_patience0", "ReduceLROnPlateau", {"factor": 0.5, "patience": 0},
     [], 0.1, vl(1.0, 1.0, 0.5, 0.6)),
    ("rl_auto_val_accuracy", "ReduceLROnPlateau",
     {"monitor": "val_accuracy", "factor": 0.5, "patience": 1, "min_delta": 0},
     ["accuracy"], 0.1, va(0.5, 0.6, 0.6, 0.65, 0.64, 0.63)),
    ("rl_mode_max", "ReduceLROnPlateau",
     {"monitor": "val_accuracy", "mode": "max", "factor": 0.5, "patience": 1},
     [], 0.1, va(0.5, 0.50001, 0.6, 0.6)),
    ("rl_missing_monitor", "ReduceLROnPlateau",
     {"factor": 0.5, "patience": 1, "cooldown": 1},
     [], 0.1, [{"loss": 1.0, "val_loss": 1.0}, {"loss": 1.0, "val_loss": 1.0},
               {"loss": 1.0}, {"loss": 1.0}, {"loss": 1.0, "val_loss": 1.0},
               {"loss": 1.0, "val_loss": 1.0}]),
    ("rl_nan", "ReduceLROnPlateau", {"factor": 0.5, "patience": 1},
     [], 0.1, vl(1.0, NAN, 0.5, NAN, 0.4)),
    ("rl_auto_unknown", "ReduceLROnPlateau", {"monitor": "val_foo"},
     [], 0.1, [{"val_foo": 1.0}]),
    # --- ModelCheckpoint ---
    ("mc_every_epoch", "ModelCheckpoint",
     {"filepath": "ckpt/model_{epoch:02d}.keras"},
     [], 0.01, vl(1.0, 1.1, 0.9)),
    ("mc_best_only_min", "ModelCheckpoint",
     {"filepath": "ckpt/best.keras", "save_best_only": True},
     [], 0.01, vl(1.0, 1.0, 0.9, 0.95, 0.30000001, 0.3, 0.29)),
    ("mc_best_only_auto_val_accuracy", "ModelCheckpoint",
     {"filepath": "ckpt/best_{epoch}.keras", "monitor": "val_accuracy", "save_best_only": True},
     ["accuracy"], 0.01, va(0.5, 0.6, 0.6, 0.55, 0.7)),
    ("mc_initial_value_threshold", "ModelCheckpoint",
     {"filepath": "ckpt/best.keras", "save_best_only": True, "initial_value_threshold": 0.5},
     [], 0.01, vl(0.6, 0.55, 0.5, 0.49, 0.495, 0.3)),
    ("mc_initial_value_threshold_max", "ModelCheckpoint",
     {"filepath": "ckpt/best.keras", "monitor": "val_accuracy", "mode": "max",
      "save_best_only": True, "initial_value_threshold": 0.7},
     [], 0.01, va(0.6, 0.7, 0.71, 0.69, 0.8)),
    ("mc_missing_monitor_saves", "ModelCheckpoint",
     {"filepath": "ckpt/best.keras", "save_best_only": True},
     [], 0.01, [{"loss": 1.0, "val_loss": 1.0}, {"loss": 0.9}, {"loss": 0.8, "val_loss": 1.1}]),
    ("mc_format_metrics", "ModelCheckpoint",
     {"filepath": "ckpt/e{epoch:03d}-{val_loss:.4f}-{loss:.2e}.keras"},
     [], 0.01, vl(1.0, 0.123456, 1e-5)),
    ("mc_format_missing_key", "ModelCheckpoint",
     {"filepath": "ckpt/{val_accuracy:.2f}.keras"},
     [], 0.01, vl(1.0)),
    ("mc_auto_unknown_even_without_best_only", "ModelCheckpoint",
     {"filepath": "ckpt/m.keras", "monitor": "val_foo"},
     [], 0.01, [{"val_foo": 1.0}]),
    ("mc_nan", "ModelCheckpoint",
     {"filepath": "ckpt/best.keras", "save_best_only": True},
     [], 0.01, vl(1.0, NAN, 0.5)),
]

FORMAT_CASES = [
    ("m_{epoch}.keras", 1, {}),
    ("m_{epoch:02d}.keras", 3, {}),
    ("m_{epoch:04d}_{val_loss:.3f}.keras", 12, {"val_loss": 0.123456}),
    ("m_{val_loss}.keras", 1, {"val_loss": 0.1}),
    ("m_{val_loss}.keras", 1, {"val_loss": 1e-7}),
    ("m_{val_loss:.2e}.keras", 1, {"val_loss": 12345.678}),
    ("m_{val_loss:g}.keras", 1, {"val_loss": 0.00001234}),
    ("m_{val_loss:.3g}.keras", 1, {"val_loss": 1234567.0}),
    ("m_{val_accuracy:.1%}.keras", 1, {"val_accuracy": 0.8765}),
    ("m_{val_loss:+.2f}_{loss:8.3f}|{loss:<8.2f}|{loss:^9.1f}.keras", 1,
     {"val_loss": -0.5, "loss": 2.25}),
    ("m_{val_loss:08.3f}.keras", 1, {"val_loss": -1.5}),
    ("m_{epoch:.2f}.keras", 2, {}),
    ("{{literal}}_{epoch}", 5, {}),
    ("m_{val_loss:.4f}.keras", 1, {"val_loss": NAN}),
    ("m_{missing}.keras", 1, {}),
    ("m_{val_loss:d}.keras", 1, {"val_loss": 1.0}),
]

REPR_CASES = [0.0, -0.0, 1.0, 0.1, 1e-4, 1e-5, 0.00012345, 123456789.0, 1e15,
              1e16, 1.5e16, 1e100, 2.5e-300, float(np.float32(0.001)),
              float(np.float32(0.1)), -3.25, 5e-324, NAN, INF, -INF]

CSV_CASES = [
    ("csv_basic_with_val", {}, None,
     [{"loss": 0.5, "accuracy": 0.75, "val_loss": 0.6, "val_accuracy": 0.7},
      {"loss": 0.4, "accuracy": float(np.float32(0.8)), "val_loss": 0.55, "val_accuracy": 0.72}]),
    ("csv_no_val_keys_adds_val_columns", {}, None,
     [{"loss": 0.5, "learning_rate": float(np.float32(0.001))},
      {"loss": 1e-5, "learning_rate": 1e16}]),
    ("csv_missing_keys_na", {}, None,
     [{"loss": 0.5, "val_loss": 0.6}, {"loss": 0.4}, {"loss": 0.3, "val_loss": 0.2, "extra": 1.0}]),
    ("csv_separator", {"separator": ";"}, None,
     [{"loss": 0.5, "val_loss": 123456789.0}, {"loss": NAN, "val_loss": INF}]),
    ("csv_append_to_existing", {"append": True}, "epoch,loss,val_loss\r\n0,1.0,1.0\r\n",
     [{"loss": 0.5, "val_loss": 0.6}]),
    ("csv_append_to_empty", {"append": True}, "",
     [{"loss": 0.5, "val_loss": 0.6}]),
    ("csv_append_no_file", {"append": True}, None,
     [{"loss": 0.5, "val_loss": 0.6}]),
    ("csv_overwrite_existing", {}, "old junk\n",
     [{"loss": 0.5, "val_loss": 0.6}]),
    ("csv_key_needing_quotes", {}, None,
     [{"a,b": 1.0, "val_x": 2.0}]),
]


def make_model(metrics, lr):
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate=lr), loss="mse",
                  metrics=list(metrics), run_eagerly=True)
    if metrics:
        # Compile metrics are built on first use; fit would have built them
        # before the first on_epoch_end.
        x = np.zeros((2, 1), "float32")
        y = np.array([[0.0], [1.0]], "float32")
        model.evaluate(x, y, verbose=0)
    return model


def weight_of(model):
    return int(round(float(model.get_weights()[0][0, 0])))


def run_scenario(name, kind, params, metrics, lr, logs_seq):
    result = {"error": None, "error_at": None, "epochs": []}
    model = make_model(metrics, lr)
    saved = []

    def fake_save(filepath, overwrite=True, **kwargs):
        saved.append(filepath)

    object.__setattr__(model, "save", fake_save)
    try:
        cb = getattr(keras.callbacks, kind)(**params)
    except Exception as e:  # noqa: BLE001
        result["error"], result["error_at"] = f"{type(e).__name__}: {e}", "init"
        return result
    cb.set_model(model)
    model.stop_training = False
    cb.on_train_begin()
    for epoch, logs in enumerate(logs_seq):
        # Weights encode the epoch so the restored epoch is visible.
        model.set_weights([np.full((1, 1), 100 + epoch, "float32")])
        logs = dict(logs)
        n_saved = len(saved)
        try:
            cb.on_epoch_end(epoch, logs)
        except Exception as e:  # noqa: BLE001
            result["error"], result["error_at"] = f"{type(e).__name__}: {e}", epoch
            return result
        record = {
            "lr": float(keras.ops.convert_to_numpy(model.optimizer.learning_rate)),
            "logs_learning_rate": logs.get("learning_rate"),
            "saved": saved[n_saved:],
            "stop_training": bool(model.stop_training),
            "best": getattr(cb, "best", None),
        }
        for attr in ("wait", "cooldown_counter", "stopped_epoch", "best_epoch"):
            if hasattr(cb, attr):
                record[attr] = getattr(cb, attr)
        result["epochs"].append(record)
        if model.stop_training:
            break
    cb.on_train_end()
    result["final_weight_epoch"] = weight_of(model) - 100
    return result


def run_format(template, epoch, logs):
    try:
        return {"out": template.format(epoch=epoch, **logs), "error": None}
    except Exception as e:  # noqa: BLE001
        return {"out": None, "error": f"{type(e).__name__}: {e}"}


def run_csv(tmp, name, params, existing, logs_seq):
    path = os.path.join(tmp, name + ".csv")
    if existing is not None:
        with open(path, "w", newline="") as f:
            f.write(existing)
    cb = keras.callbacks.CSVLogger(path, **params)
    cb.on_train_begin()
    for epoch, logs in enumerate(logs_seq):
        cb.on_epoch_end(epoch, dict(logs))
    cb.on_train_end()
    with open(path, "r", newline="") as f:
        return f.read()


def main():
    warnings.simplefilter("ignore")
    out = {"keras_version": keras.__version__, "scenarios": [], "format_cases": [],
           "repr_cases": [], "csv_cases": []}
    with tempfile.TemporaryDirectory() as tmp:
        cwd = os.getcwd()
        os.chdir(tmp)
        try:
            for name, kind, params, metrics, lr, logs_seq in SCENARIOS:
                out["scenarios"].append({
                    "name": name, "callback": kind, "params": params,
                    "metrics": metrics, "initial_lr": lr, "logs": logs_seq,
                    "result": run_scenario(name, kind, params, metrics, lr, logs_seq),
                })
            for template, epoch, logs in FORMAT_CASES:
                out["format_cases"].append({"template": template, "epoch": epoch,
                                            "logs": logs, **run_format(template, epoch, logs)})
            for x in REPR_CASES:
                out["repr_cases"].append({"value": x, "repr": repr(x)})
            for name, params, existing, logs_seq in CSV_CASES:
                out["csv_cases"].append({"name": name, "params": params, "existing": existing,
                                         "logs": logs_seq,
                                         "content": run_csv(tmp, name, params, existing, logs_seq)})
        finally:
            os.chdir(cwd)
    text = json.dumps(enc_tree(out), indent=1, allow_nan=False)
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w") as f:
            f.write(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
