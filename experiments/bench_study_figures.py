#!/usr/bin/env python3
"""The figures of bench_study.sh: reads each round's measurements, prints the per-phase table of
both sides (stderr) and the final JSON object (stdout).

    bench_study_figures.py --backbone B --epochs E ROUND_DIR...

A round directory holds
  go/new-model.proc.json, go/train.proc.json   bench_proc.py figures of the two processes
  go/summary.json                              RUN/summary.json of `emotions train`
  go/evaluate.proc.json, go/evaluate.json      only when `train` has no --test: a separate
                                               `emotions evaluate --json` process and its report
  peer/proc.json, peer/figures.json            bench_proc.py figures and study_peer.py's JSON

Go's phases come from summary.json's "timing" (written by `emotions train`) and "test"; a key
that is not there is reported in go_missing and its figures (and those derived from it, such as
the overhead and the goals) are null: nothing is estimated in its place. Overhead = wall -
time inside the train steps, per side; medians over the rounds.
"""
import argparse
import json
import os
import statistics
import sys

# #23's goals: Go's whole run <= 0.7x the peer's, and Go's steady steps no slower than the
# peer's (the same kernels: a slower step is time the loop takes from them).
WALL_GOAL, STEADY_GOAL = 0.7, 1.0
GO_TIMING = ("load_model_s", "preprocess_s", "first_step_s", "train_step_s", "steps", "validation_s",
             "checkpoint_blocking_s", "checkpoint_blocking_per_epoch_s", "test_s", "fit_s")
# (key, label) of the table; a side without the phase shows "-".
PHASES = (
    ("wall_s", "wall (all processes)"),
    ("overhead_s", "overhead = wall - train steps"),
    ("train_step_s", "inside train steps"),
    ("import_s", "python imports"),
    ("new_model_s", "new-model process"),
    ("train_process_s", "train process"),
    ("load_model_s", "model load"),
    ("build_s", "model build + compile"),
    ("model_s", "model creation total"),
    ("preprocess_s", "preprocessing"),
    ("fit_s", "training loop"),
    ("first_step_s", "  first step"),
    ("steady_step_s", "  steady steps"),
    ("validation_s", "  validation"),
    ("checkpoint_blocking_s", "  checkpoint blocking"),
    ("loop_other_s", "  rest of the loop"),
    ("test_s", "test evaluation"),
    ("other_s", "rest (start-up, exit, ...)"),
    ("steps", "train steps"),
    ("images_per_s", "images/s (steady steps)"),
    ("fit_images_per_s", "images/s (training loop)"),
    ("peak_rss_mb", "peak RSS MB"),
    ("test_accuracy", "test accuracy"),
)


def read(path):
    with open(path) as f:
        return json.load(f)


def total(*parts):
    """Sum, or None when a part is unknown."""
    return None if any(p is None for p in parts) else sum(parts)


def minus(a, *parts):
    return None if a is None or any(p is None for p in parts) else a - sum(parts)


def ratio(a, b):
    return None if a is None or not b else a / b


def go_round(d, missing):
    new_model, train = read(os.path.join(d, "new-model.proc.json")), read(os.path.join(d, "train.proc.json"))
    summary = read(os.path.join(d, "summary.json"))
    timing = summary.get("timing")
    if timing is None:
        missing.add("timing")
        timing = {}
    t = {}
    for k in GO_TIMING:
        t[k] = timing.get(k)
        if t[k] is None and "timing" not in missing:
            missing.add("timing." + k)
    processes = [new_model, train]
    separate = os.path.exists(os.path.join(d, "evaluate.proc.json"))
    if separate:
        evaluate = read(os.path.join(d, "evaluate.proc.json"))
        processes.append(evaluate)
        report = read(os.path.join(d, "evaluate.json"))
        # The test phase is that whole process: its wall, measured around it.
        t["test_s"] = evaluate["wall_s"]
    else:
        report = summary.get("test")
        if report is None:
            missing.add("test")
    batch = summary["settings"]["batch_size"]
    f = dict(t)
    f["new_model_s"] = new_model["wall_s"]
    f["train_process_s"] = train["wall_s"]
    f["wall_s"] = sum(p["wall_s"] for p in processes)
    f["process_walls_s"] = [p["wall_s"] for p in processes]
    f["peak_rss_mb"] = max(p["peak_rss_mb"] for p in processes)
    f["model_s"] = total(f["new_model_s"], t["load_model_s"])
    f["test_accuracy"] = report.get("accuracy") if report else None
    f["batch_size"] = batch
    f["epochs_run"] = summary.get("epochs_run")
    f["test_source"] = "evaluate process" if separate else "train --test"
    f["other_s"] = minus(f["wall_s"], f["new_model_s"], t["load_model_s"], t["preprocess_s"], t["fit_s"], t["test_s"])
    return derived(f)


def peer_round(d):
    proc, f = read(os.path.join(d, "proc.json")), read(os.path.join(d, "figures.json"))
    f = dict(f)
    f["wall_s"] = proc["wall_s"]
    f["peak_rss_mb"] = proc["peak_rss_mb"]
    # Having a model to train: importing TensorFlow and Keras, building, compiling; Go's
    # counterpart is the new-model process (its own Python start and imports) + the load.
    f["model_s"] = f["import_s"] + f["build_s"]
    f["test_accuracy"] = f["test"]["accuracy"]
    f["other_s"] = minus(f["wall_s"], f["import_s"], f["preprocess_s"], f["build_s"], f["fit_s"], f["test_s"])
    return derived(f)


def derived(f):
    """The figures both sides compute the same way from their measured phases."""
    f["overhead_s"] = minus(f["wall_s"], f["train_step_s"])
    f["steady_step_s"] = minus(f["train_step_s"], f["first_step_s"])
    f["loop_other_s"] = minus(f["fit_s"], f["train_step_s"], f["validation_s"], f["checkpoint_blocking_s"])
    steps, batch = f.get("steps"), f["batch_size"]
    f["images_per_s"] = ratio((steps - 1) * batch, f["steady_step_s"]) if steps else None
    f["fit_images_per_s"] = ratio(steps * batch, f["fit_s"]) if steps else None
    return f


def median(rounds, key):
    values = [r.get(key) for r in rounds]
    if not values or any(v is None for v in values):
        return None
    return statistics.median(values)


def rounded(v, digits=3):
    if v is None:
        return None
    return int(round(v)) if digits == 0 else round(v, digits)


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((l.split(":", 1)[1].split() for l in f if l.startswith("flags")), [])
    except OSError:
        return None
    return [x for x in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile") if x in flags]


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return [float(x) for x in f.read().split()[:3]]
    except OSError:
        return None


def table(go, peer):
    def cell(v):
        if v is None:
            return "-"
        return f"{v:.4f}" if isinstance(v, float) and abs(v) < 1 else (f"{v:.2f}" if isinstance(v, float) else str(v))

    lines = [f"{'phase (median)':34s} {'Go':>12s} {'peer':>12s} {'Go/peer':>8s}"]
    for key, label in PHASES:
        g, p = go.get(key), peer.get(key)
        if key == "steps":
            g, p = (None if v is None else int(v) for v in (g, p))
        if g is None and p is None:
            continue
        r = ratio(g, p) if isinstance(g, (int, float)) and isinstance(p, (int, float)) else None
        lines.append(f"{label:34s} {cell(g):>12s} {cell(p):>12s} {cell(r) if r is not None else '':>8s}")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", required=True)
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--loadavg-start", help="/proc/loadavg as it read when the benchmark began")
    p.add_argument("rounds", nargs="+", help="round directories, each with go/ and peer/")
    a = p.parse_args()

    missing = set()
    go = [go_round(os.path.join(d, "go"), missing) for d in a.rounds]
    peer = [peer_round(os.path.join(d, "peer")) for d in a.rounds]
    keys = {k for k, _ in PHASES} | {"train_function_s"}
    gm = {k: median(go, k) for k in keys}
    pm = {k: median(peer, k) for k in keys}
    print(table(gm, pm), file=sys.stderr)

    wall_ratio, overhead_ratio = ratio(gm["wall_s"], pm["wall_s"]), ratio(gm["overhead_s"], pm["overhead_s"])
    steady_ratio = ratio(gm["steady_step_s"], pm["steady_step_s"])
    goal_met = None if wall_ratio is None or steady_ratio is None else (
        wall_ratio <= WALL_GOAL and steady_ratio <= STEADY_GOAL)
    go_steps, peer_steps = {r.get("steps") for r in go}, {r["steps"] for r in peer}
    if None not in go_steps and go_steps != peer_steps:
        print(f"bench: the two sides ran different numbers of steps (Go {sorted(go_steps)}, peer {sorted(peer_steps)}): "
              "the comparison is not like for like", file=sys.stderr)
    if any(r["other_s"] is not None and r["other_s"] < 0 for r in go + peer):
        print("bench: a side's phases add up to more than its wall (they overlap, e.g. test loading counted in "
              "both preprocessing and the test evaluation): its \"rest\" is negative", file=sys.stderr)
    if missing:
        print(f"bench: emotions train did not report {', '.join(sorted(missing))} in summary.json: those Go figures, "
              "and the overhead and goals that need them, are null", file=sys.stderr)
    print(f"goals: Go wall / peer wall = {cell3(wall_ratio)} (<= {WALL_GOAL}), "
          f"Go steady steps / peer steady steps = {cell3(steady_ratio)} (<= {STEADY_GOAL}): "
          f"{'met' if goal_met else 'not met' if goal_met is False else 'unknown'}", file=sys.stderr)

    out = {"bench": "study", "backbone": a.backbone, "epochs": a.epochs, "rounds": len(a.rounds),
           "batch_size": go[0]["batch_size"],
           "go_wall_s": rounded(gm["wall_s"], 2), "peer_wall_s": rounded(pm["wall_s"], 2),
           "go_overhead_s": rounded(gm["overhead_s"], 2), "peer_overhead_s": rounded(pm["overhead_s"], 2),
           "go_train_step_s": rounded(gm["train_step_s"], 2), "peer_train_step_s": rounded(pm["train_step_s"], 2)}
    for key, _ in PHASES:
        if key in ("wall_s", "overhead_s", "train_step_s"):
            continue
        digits = 0 if key == "steps" else 4 if key == "test_accuracy" else 1 if key in ("peak_rss_mb", "images_per_s", "fit_images_per_s") else 3
        if any(key in r for r in go):
            out["go_" + key] = rounded(gm[key], digits)
        if any(key in r for r in peer):
            out["peer_" + key] = rounded(pm[key], digits)
    out["peer_train_function_s"] = rounded(pm["train_function_s"], 2)
    out.update({
        "go_checkpoint_blocking_per_epoch_s": go[-1].get("checkpoint_blocking_per_epoch_s"),
        "peer_checkpoint_blocking_per_epoch_s": peer[-1]["checkpoint_blocking_per_epoch_s"],
        "go_wall_runs": [rounded(r["wall_s"], 1) for r in go], "peer_wall_runs": [rounded(r["wall_s"], 1) for r in peer],
        # A round runs both sides back to back: their ratio within a round is less exposed to
        # the machine's drift over the benchmark than the ratio of the medians.
        "go_steady_runs": [rounded(r.get("steady_step_s"), 2) for r in go],
        "peer_steady_runs": [rounded(r.get("steady_step_s"), 2) for r in peer],
        "steady_ratio_runs": [rounded(ratio(g.get("steady_step_s"), q.get("steady_step_s"))) for g, q in zip(go, peer)],
        "go_test_source": go[-1]["test_source"], "peer_faces_found_share": peer[-1]["faces_found_share"],
        "go_missing": sorted(missing),
        "wall_ratio": rounded(wall_ratio), "overhead_ratio": rounded(overhead_ratio), "steady_ratio": rounded(steady_ratio),
        "goal": f"go_wall_s <= {WALL_GOAL} x peer_wall_s and go_steady_step_s <= {STEADY_GOAL} x peer_steady_step_s",
        "goal_met": goal_met,
        "cpu_flags": cpu_flags(),
        "loadavg_start": [float(x) for x in a.loadavg_start.split()[:3]] if a.loadavg_start else None,
        "loadavg_end": loadavg(),
    })
    print(json.dumps(out))


def cell3(v):
    return "unknown" if v is None else f"{v:.3f}"


if __name__ == "__main__":
    main()
