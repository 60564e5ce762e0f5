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
