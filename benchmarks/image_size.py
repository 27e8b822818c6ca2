"""Size of the workflow image and how long its offline build takes, as the README quotes them.

    .venv/bin/python benchmarks/image_size.py [--engine podman] [--build]

With ``--build``, ``drivers/build-image --offline`` runs first and is timed (the layers it can reuse from an
earlier build are reused, as for a user). Writes ``benchmarks/results/image.json``; the README's sentence is
rendered from it by :func:`readme_line` and checked by a test.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "image.json"


def readme_line(result: dict) -> str:
    return f"{result['bytes'] / 1e9:.2f} GB ({result['bytes']:,} bytes, `{result['image']}`, {result['engine']})."


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", default="podman")
    parser.add_argument("--build", action="store_true", help="build the image offline first, timed")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from madminer_notebooks.workflow.image import image_name

    name = image_name()
    result: dict = {"image": name, "engine": args.engine, "measured": datetime.date.today().isoformat()}
    if args.build:
        load = os.getloadavg()[0]
        start = time.perf_counter()
        subprocess.run([str(ROOT / "drivers" / "build-image"), "--offline", "--engine", args.engine], check=True)
        result["offline_build_seconds"] = round(time.perf_counter() - start, 1)
        result["load_before_build"] = load
    size = subprocess.run([args.engine, "image", "inspect", name, "--format", "{{.Size}}"], capture_output=True,
                          text=True, check=True)  # fmt: skip
    result["bytes"] = int(size.stdout.strip())
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(readme_line(result))


if __name__ == "__main__":
    main()
