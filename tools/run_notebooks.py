#!/usr/bin/env python
"""Run the notebooks top to bottom, time each one, and (with --store) keep their outputs.

    python tools/run_notebooks.py --mode full --store        # refresh every stored output, slow cells included
    python tools/run_notebooks.py --mode default 02_sks      # time one notebook as Run All runs it in JupyterLab
    python tools/run_notebooks.py --mode test --json t.json  # time every notebook as the tests run it

Modes (what a notebook sees in its environment):
  default  Run All in JupyterLab: slow cells print that they are skipped (RUN_SLOW off), no test mode
  full     SKSHA_RUN_SLOW=1: slow cells do their work; this is the mode whose outputs the notebooks store
  test     IN_TEST=1 (as nbdev_test sets it): the small, fast variants the test suite runs

With --store (full mode only) the executed notebook replaces the source notebook and `nbdev_clean` then strips the metadata that
changes from run to run; progress-bar widgets are left out of what is stored (saved without their state,
they show their first frame, '0%', for ever). Without --store nothing is written (only timed). A notebook
that fails is reported with the cell and the error, the others still run, and the source of a failed notebook
is never overwritten.
Exit status: 0 all ran, 1 some notebook failed, 2 usage error, 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / "nbs"
MODES = {"default": {}, "full": {"SKSHA_RUN_SLOW": "1"}, "test": {"IN_TEST": "1"}}
CLEARED = ("SKSHA_RUN_SLOW", "IN_TEST", "SKSHA_TEST", "MPLBACKEND")   # set only by the mode, never inherited


def notebooks(names: list[str]) -> list[Path]:
    "The notebooks to run, in course order: every numbered one when `names` is empty; names may omit '.ipynb'."
    if not names: return sorted(NBS.glob("[0-9][0-9]*_*.ipynb"))
    found, missing = [], []
    for name in names:
        stem = Path(name).name.removesuffix(".ipynb")
        path = NBS / f"{stem}.ipynb"
        (found if path.is_file() else missing).append(path if path.is_file() else name)
    if missing:
        raise ValueError(f"no such notebook in {NBS}: {', '.join(map(str, missing))} "
                         f"(give names like 02_sks or 02_sks.ipynb)")
    return found


def figures(nb) -> int:
    "How many pictures the notebook's outputs hold."
    return sum(any(k in out.get("data", {}) for k in ("image/png", "image/jpeg")) for cell in nb.cells if cell.cell_type == "code"
               for out in cell.get("outputs", []))


def drop_progress_bars(nb) -> int:
    "Remove progress-bar widgets from the outputs (saved without their state they show '0%' for ever); how many."
    bar = re.compile(r"\d+%\|")
    dropped = 0
    for cell in nb.cells:
        if cell.cell_type != "code": continue
        keep = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data and bar.search("".join(data.get("text/plain", ""))):
                dropped += 1
            else: keep.append(out)
        cell["outputs"] = keep
    return dropped


def run_one(path: Path, mode: str, timeout: int, store: bool) -> dict:
    "Execute one notebook in its own kernel, in nbs/; return its row (seconds, figures, error)."
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError
    env = {k: v for k, v in os.environ.items() if k not in CLEARED} | MODES[mode]
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NBS)}})
    t0, error = time.perf_counter(), None
    try: client.execute(env=env)                            # the kernel's environment: this mode's switches
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as e:
        lines = [l for l in str(e).strip().splitlines() if l.strip()]
        error = lines[-1][:300] if lines else type(e).__name__
    row = dict(notebook=path.stem, mode=mode, seconds=round(time.perf_counter() - t0, 1), figures=figures(nb),
               error=error)
    if store and error is None:
        drop_progress_bars(nb)
        nbformat.write(nb, path)
        subprocess.run(["nbdev_clean", "--fname", str(path)], cwd=ROOT, check=False, capture_output=True)
    return row


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="tools/run_notebooks.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n\n".join(__doc__.split("\n\n")[1:]))
    p.add_argument("names", nargs="*", metavar="NOTEBOOK", help="notebooks to run (default: every numbered one)")
    p.add_argument("--mode", choices=sorted(MODES), default="default")
    p.add_argument("--store", action="store_true", help="write the outputs back into the notebooks")
    p.add_argument("--timeout", type=int, default=3600, help="seconds one cell may take (default 3600)")
    p.add_argument("--json", help="also write the rows to this JSON file")
    a = p.parse_args(argv)
    if a.timeout < 1: p.error(f"--timeout {a.timeout}: give a number of seconds >= 1")
    if a.store and a.mode != "full":
        p.error(f"--store with --mode {a.mode}: only full runs are stored (the outputs a reader sees are those of the "
                "real, full-size run); use --mode full --store")
    try: paths = notebooks(a.names)
    except ValueError as e: p.error(str(e))
    if a.json:
        out = Path(a.json)
        if out.is_dir() or not out.parent.is_dir():
            p.error(f"--json {out}: not a file in an existing folder")
    try: import nbclient, nbformat  # noqa: F401  (the test extras install them)
    except ImportError as e: p.error(f"{e.name} is missing: install the development extras, pip install -e '.[dev]'")
    rows = []
    print(f"{'notebook':<16}{'mode':<9}{'seconds':>9}{'figures':>9}  result", flush=True)
    try:
        for path in paths:
            row = run_one(path, a.mode, a.timeout, a.store)
            rows.append(row)
            result = "ok" + (", outputs stored" if a.store else "") if row["error"] is None else f"FAILED: {row['error']}"
            print(f"{row['notebook']:<16}{row['mode']:<9}{row['seconds']:>9.1f}{row['figures']:>9}  {result}", flush=True)
    except KeyboardInterrupt:
        print("interrupted: the notebooks finished so far are listed above", file=sys.stderr)
        return 130
    finally:
        if a.json and rows: Path(a.json).write_text(json.dumps(rows, indent=1))
    total = sum(r["seconds"] for r in rows)
    failed = [r["notebook"] for r in rows if r["error"]]
    print(f"{len(rows)} notebooks, {total / 60:.1f} min" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
