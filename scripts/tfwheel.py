"""Which TensorFlow wheel a Python environment holds, for `make setup` and scripts/tflink.sh.

tensorflow-cpu and tensorflow (the GPU build) install the same `tensorflow/` package, so pip
would put one over the other in the same venv and leave a mix of both: `check SPEC` refuses
that before pip runs. `describe` names the installed wheel for tflink.sh's messages.

Usage: python tfwheel.py check 'tensorflow[and-cuda]==2.18.1' | python tfwheel.py describe
"""
import importlib.metadata as md
import re
import sys


def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def installed():
    """(name, version) of every distribution that provides the `tensorflow` package."""
    found = []
    for dist in md.distributions():
        if any(str(f) == "tensorflow/__init__.py" for f in dist.files or []):
            found.append((canonical(dist.metadata["Name"]), dist.version))
    return sorted(set(found))


def main(argv):
    if len(argv) == 2 and argv[0] == "check":
        spec = argv[1]
        wanted = canonical(re.split(r"[\[<>=!~;@ ]", spec.strip(), maxsplit=1)[0])
        others = [f"{n}=={v}" for n, v in installed() if n != wanted]
        if others:
            print(f"setup: this venv holds {', '.join(others)} but TF_PACKAGE={spec} asks for "
                  f"{wanted}: both install tensorflow/ and would overwrite each other's files. "
                  f"Start a fresh venv (rm -rf .venv .tflib && make setup TF_PACKAGE='{spec}'), "
                  "or leave TF_PACKAGE unset to keep the installed one.", file=sys.stderr)
            return 1
        return 0
    if argv == ["describe"]:
        wheels = installed()
        if not wheels:
            print("no TensorFlow wheel")
            return 1
        print(", ".join(f"{n} {v}" for n, v in wheels))
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
