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

GLOSSARY_TERMS = ("F_ec", "F_ha", "d4", "SKS", "HA", "MGR", "RGA", "RECCE", "EER", "AUC", "AP", "ACC", "SBI", "DDP",
                  "AMP", "L_cls", "L_r", "L_m", "operating threshold", "c23", "Grad-CAM")

def test_glossary_explains_the_symbols_and_the_index_links_it():
    text = "".join("".join(c["source"]) for c in json.loads((ROOT / "nbs" / "glossary.ipynb").read_text())["cells"])
    missing = [t for t in GLOSSARY_TERMS if f"**{t}" not in text and f", {t}" not in text]
    assert not missing, f"the glossary does not define {missing}"
    used = "".join(t for n, t in shipped_texts() if ".ipynb" in n and not n.startswith("glossary"))
    assert all(t in used for t in GLOSSARY_TERMS), "a glossary term no notebook uses: keep the list honest"
    assert "glossary.ipynb" in (ROOT / "nbs" / "index.ipynb").read_text()


def test_course_page_covers_every_notebook_once_with_measured_times():
    "The syllabus (nbs/course.ipynb): every numbered notebook in exactly one session, each with its three run times."
    import re
    text = "\n".join("".join(c["source"]) for c in json.loads((ROOT / "nbs" / "course.ipynb").read_text())["cells"])
    sessions = re.findall(r"^## Session (\d+):", text, flags=re.M)
    assert sessions == [str(i) for i in range(1, len(sessions) + 1)] and 8 <= len(sessions) <= 10
    rows = re.findall(r"^\| `(\d\d[a-z]?_\w+)` \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$", text, flags=re.M)
    numbered = sorted(p.stem for p in (ROOT / "nbs").glob("[0-9][0-9]*_*.ipynb"))
    assert sorted(r[0] for r in rows) == numbered, "every numbered notebook in exactly one session"
    for name, *times in rows:
        for t in times: assert re.fullmatch(r"\s*\d+(\.\d)? (s|min)\s*", t), f"{name}: run time {t!r} is not a measurement"
    index = (ROOT / "nbs" / "index.ipynb").read_text()
    assert "course.ipynb" in index and "course.ipynb" in (ROOT / "README.md").read_text()


def test_exercise_solutions_are_linked_and_exist():
    "A notebook that promises tested solutions links a notebook in nbs/solutions/ that exists (nbdev_test runs it)."
    import re
    linked = set()
    for nb in sorted((ROOT / "nbs").glob("*.ipynb")):
        text = nb.read_text()
        for target in re.findall(r"\(solutions/([\w.]+\.ipynb)\)", text):
            assert (ROOT / "nbs" / "solutions" / target).is_file(), f"{nb.name} links solutions/{target}, which is missing"
            assert target.startswith(nb.stem), f"{nb.name} links the solutions of another notebook: {target}"
            linked.add(target)
    shipped = {p.name for p in (ROOT / "nbs" / "solutions").glob("*.ipynb")}
    assert linked and shipped == linked, f"solutions notebooks no exercise links: {sorted(shipped - linked)}"


NUMBERED = sorted((ROOT / "nbs").glob("[0-9][0-9]*_*.ipynb"))

@pytest.mark.parametrize("nb", NUMBERED, ids=lambda p: p.stem)
def test_every_notebook_is_a_lesson(nb):
    "Objectives and prerequisites up front; a questionnaire and exercises (difficulty, hint, tested solutions) at the end."
    import re
    md = ["".join(c["source"]) for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown"]
    opening = next((i for i, s in enumerate(md) if "**You will learn**" in s), None)
    assert opening is not None and opening <= 4, f"{nb.name}: no '**You will learn**' cell near the top"
    assert any("**You need**" in s for s in md[opening:opening + 2]), f"{nb.name}: the objectives say nothing of what is assumed"
    text = "\n".join(md)
    quiz = text.split("## Questionnaire", 1)
    assert len(quiz) == 2, f"{nb.name}: no '## Questionnaire'"
    questions = re.findall(r"^\d+\. ", quiz[1].split("## Exercises", 1)[0], flags=re.M)
    assert len(questions) >= 5, f"{nb.name}: {len(questions)} questions; a questionnaire has at least 5"
    exercises = re.split(r"^\d+\. ", quiz[1].split("## Exercises", 1)[1], flags=re.M)[1:]
    assert len(exercises) >= 3, f"{nb.name}: {len(exercises)} exercises"
    for k, ex in enumerate(exercises, 1):
        assert re.match(r"★{1,3} ", ex), f"{nb.name} exercise {k}: starts with its difficulty (★, ★★ or ★★★)"
        assert "*Hint*" in ex, f"{nb.name} exercise {k}: has no *Hint*"
    assert f"(solutions/{nb.stem}_solutions.ipynb)" in text, f"{nb.name}: the exercises link no tested solutions"
