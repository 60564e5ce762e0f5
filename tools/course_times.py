#!/usr/bin/env python
"""Write measured run times into the course page's tables (nbs/course.ipynb), from `run_notebooks.py --json` files.

    python tools/run_notebooks.py --mode default --json default.json
    python tools/run_notebooks.py --mode full --json full.json      # or --store: the same run refreshes the outputs
    python tools/run_notebooks.py --mode test --json test.json
    python tools/course_times.py default.json full.json test.json

Each row `| `NN_topic` | Run All | full | test |` of the course page takes the notebook's measured seconds in the
three modes (later files win where a notebook was measured twice). A notebook without slow cells runs the same in
Run All and in full mode, so one of those two measurements serves for both. A row whose notebook was not measured in
all three modes keeps its old times and is listed. Failed runs are never used.
Exit status: 0 rows updated, 1 some notebook had no usable measurement (listed; the others are written),
2 usage error (a file that is missing or not run_notebooks JSON), 130 interrupted.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODES = ("default", "full", "test")
ROW = re.compile(r"^\| `(\d\d[a-z]?_\w+)` \| [^|]+ \| [^|]+ \| [^|]+ \|$", flags=re.M)


def fmt(seconds: float) -> str:
    "Seconds as the course page prints them: '12 s' under 90 s, else '1.5 min'."
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.1f} min"


def read_times(files: list[Path]) -> dict[str, dict[str, float]]:
    "{notebook: {mode: seconds}} from run_notebooks JSON files; ValueError naming a file that is not one."
    times: dict[str, dict[str, float]] = {}
    for f in files:
        try: rows = json.loads(f.read_text())
        except (OSError, json.JSONDecodeError) as e: raise ValueError(f"{f}: cannot read it as JSON ({e})") from None
        if not isinstance(rows, list) or not all(isinstance(r, dict) and {"notebook", "mode", "seconds", "error"} <= set(r)
                                                 for r in rows):
            raise ValueError(f"{f}: not a run_notebooks.py --json file (a list of rows with notebook, mode, seconds, error)")
        for r in rows:
            if r["error"] is None and r["mode"] in MODES: times.setdefault(r["notebook"], {})[r["mode"]] = float(r["seconds"])
    return times


def has_slow_cells(nb: Path) -> bool:
    return any("".join(c["source"]).lstrip().startswith("#| slow") for c in json.loads(nb.read_text())["cells"])


def update(course: Path, times: dict[str, dict[str, float]], nbs: Path) -> tuple[list[str], list[str]]:
    "Rewrite the measured rows of `course`; return (updated notebooks, rows left as they were)."
    nb = json.loads(course.read_text())
    updated, kept = [], []
    for cell in nb["cells"]:
        text = "".join(cell["source"])
        def row(m: re.Match) -> str:
            name, t = m.group(1), dict(times.get(m.group(1), {}))
            if (nbs / f"{name}.ipynb").is_file() and not has_slow_cells(nbs / f"{name}.ipynb"):
                for a, b in (("default", "full"), ("full", "default")):
                    if a in t and b not in t: t[b] = t[a]           # without slow cells, Run All is the full run
            if not set(MODES) <= set(t):
                kept.append(name); return m.group(0)
            updated.append(name)
            return f"| `{name}` | {fmt(t['default'])} | {fmt(t['full'])} | {fmt(t['test'])} |"
        new = ROW.sub(row, text)
        if new != text: cell["source"] = new.splitlines(True)
    course.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return updated, kept


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="course_times.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("json", nargs="+", type=Path, help="run_notebooks.py --json files")
    p.add_argument("--course", type=Path, default=ROOT / "nbs" / "course.ipynb", help="the course page (default nbs/course.ipynb)")
    p.add_argument("--nbs", type=Path, default=ROOT / "nbs", help="the notebooks' folder, to see which have slow cells (default nbs/)")
    try: a = p.parse_args(argv)
    except SystemExit as e: return int(e.code or 0)
    try:
        if not a.course.is_file(): raise ValueError(f"--course {a.course}: no such file")
        missing = [str(f) for f in a.json if not f.is_file()]
        if missing: raise ValueError(f"no such file: {', '.join(missing)} (make it with run_notebooks.py --json)")
        times = read_times(a.json)
        updated, kept = update(a.course, times, a.nbs)
    except ValueError as e:
        print(f"course_times.py: error: {e}", file=sys.stderr); return 2
    except KeyboardInterrupt:
        print("course_times.py: interrupted", file=sys.stderr); return 130
    print(f"{len(updated)} rows updated: {', '.join(updated) or '-'}")
    unmeasured = [n for n in kept if n in times]
    if unmeasured:
        print(f"not measured in all three modes, kept as they were: {', '.join(unmeasured)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
