#!/usr/bin/env python3
"""Run one command as a benchmark measures it: wall seconds and the peak resident memory of the
process tree, written as one JSON object to --out; the command's stdout and stderr pass through.

    bench_proc.py --out FIGURES.json [--stdout FILE] -- COMMAND ARGS...

The peak comes from the rusage that wait4 returns for the child, the figure /usr/bin/time -v
prints as "Maximum resident set size" (no need for the `time` package): on Linux its ru_maxrss
is the largest of the child's own peak and those of the descendants it waited for, so
`emotions new-model` counts its Python exporter (and, as with /usr/bin/time, the ~15 MB this
runner had when it forked the child, which Linux carries over the exec). Exits with the
command's status.
"""
import argparse
import json
import os
import subprocess
import sys
import time


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="JSON file to write: wall_s, peak_rss_mb, user_s, sys_s, exit_code")
    p.add_argument("--stdout", help="write the command's stdout to this file instead of passing it through")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args()
    command = a.command[1:] if a.command[:1] == ["--"] else a.command
    if not command:
        p.error("no command given")

    stdout = open(a.stdout, "wb") if a.stdout else None
    try:
        t0 = time.perf_counter()
        proc = subprocess.Popen(command, stdout=stdout)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    finally:
        if stdout:
            stdout.close()
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting again
    figures = {"wall_s": round(wall, 3), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
               "user_s": round(usage.ru_utime, 3), "sys_s": round(usage.ru_stime, 3),
               "exit_code": proc.returncode, "command": command}
    with open(a.out, "w") as f:
        json.dump(figures, f)
    sys.exit(proc.returncode if proc.returncode >= 0 else 128 - proc.returncode)


if __name__ == "__main__":
    main()
