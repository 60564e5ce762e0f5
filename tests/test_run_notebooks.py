"""tools/run_notebooks.py: the command that times the notebooks and refreshes their stored outputs."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOL = [sys.executable, str(ROOT / "tools" / "run_notebooks.py")]


def run(*args):
    return subprocess.run(TOOL + list(args), capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_times_a_notebook_without_touching_it(tmp_path):
    before = (ROOT / "nbs" / "90_cli.ipynb").read_bytes()
    r = run("90_cli", "--mode", "test", "--json", str(tmp_path / "t.json"))
    assert r.returncode == 0, r.stdout + r.stderr
    [row] = json.loads((tmp_path / "t.json").read_text())
    assert row["notebook"] == "90_cli" and row["mode"] == "test" and row["error"] is None and row["seconds"] > 0
    assert (ROOT / "nbs" / "90_cli.ipynb").read_bytes() == before          # timed only, nothing stored


def test_usage_errors_exit_2_and_say_what_to_do(tmp_path):
    r = run("no_such_notebook")
    assert r.returncode == 2 and "no such notebook" in r.stderr and "Traceback" not in r.stderr
    r = run("90_cli", "--mode", "test", "--store")
    assert r.returncode == 2 and "only full runs are stored" in r.stderr
    r = run("90_cli", "--json", str(tmp_path / "missing" / "t.json"))
    assert r.returncode == 2 and "--json" in r.stderr


def test_progress_bar_widgets_are_not_stored():
    import importlib.util
    import nbformat
    spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools" / "run_notebooks.py")
    tool = importlib.util.module_from_spec(spec); spec.loader.exec_module(tool)
    widget = {"application/vnd.jupyter.widget-view+json": {"model_id": "x"}, "text/plain": "train:   0%|   | 0/200"}
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("train()", outputs=[
        nbformat.v4.new_output("display_data", data=widget),
        nbformat.v4.new_output("stream", name="stdout", text="400 steps, 20 images/s\n"),
        nbformat.v4.new_output("display_data", data={"text/plain": "a table, 50%| not a widget"})])])
    assert tool.drop_progress_bars(nb) == 1
    assert [o["output_type"] for o in nb.cells[0].outputs] == ["stream", "display_data"]


COURSE = [sys.executable, str(ROOT / "tools" / "course_times.py")]

def test_course_times_writes_measured_rows_and_keeps_the_rest(tmp_path):
    "tools/course_times.py puts run_notebooks' measured seconds into the course page's rows, and only those."
    course = tmp_path / "course.ipynb"
    course.write_bytes((ROOT / "nbs" / "course.ipynb").read_bytes())
    rows = [{"notebook": "02_sks", "mode": m, "seconds": s, "error": None} for m, s in (("default", 11.6), ("test", 9.2))]
    rows += [{"notebook": "13_evaluate", "mode": "full", "seconds": 700.0, "error": None},
             {"notebook": "13_evaluate", "mode": "test", "seconds": 5.0, "error": "AssertionError: ..."}]
    (tmp_path / "t.json").write_text(json.dumps(rows))
    r = subprocess.run(COURSE + [str(tmp_path / "t.json"), "--course", str(course)], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    text = course.read_text()
    # 02 has no slow cells: its Run All time serves as its full time
    assert "| `02_sks` | 12 s | 12 s | 9 s |" in text
    # 13 was not measured in all three modes (its failed test run does not count): kept, listed, status 1
    old13 = [l for l in (ROOT / "nbs" / "course.ipynb").read_text().splitlines() if "| `13_evaluate` |" in l]
    assert old13 and old13[0] in text and r.returncode == 1 and "13_evaluate" in r.stderr
    before = (ROOT / "nbs" / "course.ipynb").read_text().splitlines()
    changed = [a for a, b in zip(before, text.splitlines()) if a != b]
    assert len(changed) == 1 and "02_sks" in changed[0]


def test_course_times_usage_errors_exit_2(tmp_path):
    bad = tmp_path / "bad.json"; bad.write_text('{"not": "rows"}')
    for args, says in (([str(tmp_path / "none.json")], "no such file"), ([str(bad)], "not a run_notebooks.py --json file")):
        r = subprocess.run(COURSE + args + ["--course", str(ROOT / "nbs" / "course.ipynb")], capture_output=True,
                           text=True, timeout=120)
        assert r.returncode == 2 and says in r.stderr and "Traceback" not in r.stderr
