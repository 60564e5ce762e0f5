"""Run All on a CPU-only laptop must finish in minutes: slow cells follow the notebook's RUN_SLOW switch, GPU cells
skip themselves without CUDA (issue 12, item 9)."""
import json
from pathlib import Path

import pytest

NBS = sorted((Path(__file__).resolve().parents[1] / "nbs").glob("*.ipynb"))

def code_cells(p):
    return ["".join(c["source"]) for c in json.loads(p.read_text())["cells"] if c["cell_type"] == "code"]

def flagged(p, flag):
    return [s for s in code_cells(p) if s.lstrip().startswith(f"#| {flag}")]

def test_some_notebooks_have_slow_and_gpu_cells():     # the checks below would pass vacuously otherwise
    assert sum(len(flagged(p, "slow")) for p in NBS) >= 5 and sum(len(flagged(p, "gpu")) for p in NBS) >= 1

@pytest.mark.parametrize("nb", [p for p in NBS if flagged(p, "slow")], ids=lambda p: p.name)
def test_slow_cells_follow_the_switch(nb):
    cells = code_cells(nb)
    first_slow = next(i for i, s in enumerate(cells) if s.lstrip().startswith("#| slow"))
    assert any("RUN_SLOW = run_slow()" in s for s in cells[:first_slow]), f"{nb.name}: no RUN_SLOW switch before its first slow cell"
    for s in flagged(nb, "slow"):
        body = [l for l in s.splitlines()[1:] if l.strip() and not l.lstrip().startswith("#")]
        assert body and body[0].startswith("if RUN_SLOW"), f"{nb.name}: a slow cell does not start with `if RUN_SLOW`:\n{s}"

@pytest.mark.parametrize("nb", [p for p in NBS if flagged(p, "gpu")], ids=lambda p: p.name)
def test_gpu_cells_guard_themselves(nb):
    for s in flagged(nb, "gpu"):
        assert "torch.cuda.is_available()" in s, f"{nb.name}: a gpu cell runs without checking for CUDA:\n{s}"
