"""Packaging and command-line checks that do not belong in a teaching notebook."""
import configparser
import json
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CFG = configparser.ConfigParser(delimiters=["="])
CFG.read(ROOT / "settings.ini")
SETTINGS = CFG["DEFAULT"]


def run_cli(*args, check=True):
    "Run the installed `sksha` console script the way a user would."
    proc = subprocess.run(["sksha", *args], capture_output=True, text=True, cwd=ROOT, timeout=300)
    if check: assert proc.returncode == 0, proc.stderr
    return proc


def test_version_agrees_everywhere():
    import sksha
    assert sksha.__version__ == SETTINGS["version"]
    assert metadata.version("sksha") == SETTINGS["version"]
    assert run_cli("--version").stdout.strip() == f"sksha {SETTINGS['version']}"


def test_installed_requirements_match_settings():
    declared = {re.split(r"[<>=!~ ;\[]", r)[0].lower() for r in shlex.split(SETTINGS["requirements"])}
    installed = {re.split(r"[<>=!~ ;\[(]", r)[0].lower() for r in metadata.requires("sksha") if "extra ==" not in r}
    assert declared == installed
    dev = {re.split(r"[<>=!~ ;\[(]", r)[0].lower() for r in metadata.requires("sksha") if 'extra == "dev"' in r}
    assert {"nbdev", "execnb", "fastcore", "ghapi", "pytest", "jupyterlab"} <= dev


def test_help_lists_every_subcommand():
    from sksha.cli import COMMANDS
    out = run_cli("--help").stdout
    for name in COMMANDS: assert name in out
    assert "--version" in out


def test_unknown_subcommand_fails_with_the_valid_choices():
    proc = run_cli("no-such-command", check=False)
    assert proc.returncode == 2
    assert "invalid choice" in proc.stderr


def test_no_arguments_prints_help_and_fails():
    "No command is a usage error: the usage (with the command list) and one error line, on stderr; status 2."
    proc = run_cli(check=False)
    assert proc.returncode == 2 and "commands" in proc.stderr and proc.stdout == ""
    assert proc.stderr.strip().splitlines()[-1].startswith("sksha: error: no command given")


def test_every_subcommand_has_help():
    from sksha.cli import COMMANDS
    for name in COMMANDS:
        out = run_cli(name, "--help").stdout
        assert f"sksha {name}" in out, f"`sksha {name} --help` should show its own usage"


def test_info_reports_torch_and_samples():
    out = run_cli("info").stdout
    assert "torch" in out and "data_samples" in out


def test_notebooks_are_numbered_and_export_one_module_each():
    nbs = sorted((ROOT / "nbs").glob("*.ipynb"))
    pages = {"index.ipynb", "glossary.ipynb", "course.ipynb"}   # reference pages: they teach no component and export nothing
    assert all(ROOT / "nbs" / p in nbs for p in pages)
    for nb in nbs:
        if nb.name in pages: continue
        # NN_topic, or NNx_topic for the parts of one subject (12a_config ... 12e_train: the trainer, by concern)
        assert re.match(r"^\d\d[a-z]?_[a-z0-9_]+\.ipynb$", nb.name), f"{nb.name}: notebooks are named NN_topic.ipynb or NNx_topic.ipynb"
        cells = json.loads(nb.read_text())["cells"]
        exps = [c for c in cells if c["cell_type"] == "code" and "".join(c["source"]).lstrip().startswith("#| default_exp")]
        assert len(exps) == 1, f"{nb.name} should have exactly one '#| default_exp' cell"
        mod = "".join(exps[0]["source"]).split()[2]
        assert (ROOT / "sksha" / f"{mod.replace('.', '/')}.py").is_file(), f"{nb.name} exports {mod}, not found"


def test_committed_notebooks_are_clean():
    "`nbdev_clean` strips outputs' execution counts and metadata; a committed notebook must already be clean."
    for nb in (ROOT / "nbs").glob("*.ipynb"):
        data = json.loads(nb.read_text())
        for c in data["cells"]:
            if c["cell_type"] == "code": assert c.get("execution_count") is None, f"{nb.name}: run nbdev_clean"


def test_notebook_cells_have_stable_ids():
    "nbdev writes each cell's id into the exported module: a notebook without ids would export differently each time."
    for nb in (ROOT / "nbs").glob("*.ipynb"):
        data = json.loads(nb.read_text())
        assert (data["nbformat"], data["nbformat_minor"]) >= (4, 5), f"{nb.name}: run nbdev_clean to upgrade it"
        assert all("id" in c for c in data["cells"]), f"{nb.name}: cells without ids; run nbdev_clean"


def test_exported_modules_use_no_undefined_name():
    """A name a notebook cell defines (say `plt`, imported in the notebook's first cell) is not defined in the exported
    module: the function works in its notebook and fails for every user. pyflakes finds such names."""
    import io
    from pyflakes.api import check
    from pyflakes.reporter import Reporter
    out = io.StringIO()
    for p in sorted((ROOT / "sksha").glob("*.py")):
        check(p.read_text(), str(p.relative_to(ROOT)), Reporter(out, io.StringIO()))
    undefined = [line for line in out.getvalue().splitlines() if "undefined name" in line]
    assert not undefined, "\n".join(undefined)
