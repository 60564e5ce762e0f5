"""Users have only the repository: no notebook, module, README or model card may send them to a file outside it."""
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# The project's internal notes (design, style, the prototype's findings, the face pool's rules) are not shipped;
# what users need of them is written in the notebooks in the project's own words.
OUTSIDE = ("ARCHITECTURE.md", "PSEUDO_FAKES.md", "STYLE.md", "facepool/README", "design notes", "../shared", "design/")

def shipped_texts():
    for p in sorted((ROOT / "nbs").glob("**/*.ipynb")):
        nb = json.loads(p.read_text())
        for i, c in enumerate(nb["cells"]):
            yield f"{p.name} cell {i}", "".join(c["source"])
            for o in c.get("outputs", []):
                yield f"{p.name} cell {i} output", json.dumps(o)
    for p in [*sorted((ROOT / "sksha").glob("**/*.py")), ROOT / "README.md", *sorted((ROOT / "data_samples").glob("*.md"))]:
        yield str(p.relative_to(ROOT)), p.read_text()

def test_the_scan_sees_every_notebook_and_module():
    names = {n.split(" ")[0] for n, _ in shipped_texts()}
    assert "06_model.ipynb" in names and "sksha/demo.py" in names and "README.md" in names

@pytest.mark.parametrize("needle", OUTSIDE)
def test_no_reference_to_a_file_outside_the_repository(needle):
    hits = [name for name, text in shipped_texts() if needle in text]
    assert not hits, f"{needle!r} is named in {hits}: write what the reader needs in the project instead"
