"""The data rule for the congress portraits: they may be self-blended in memory for training, validation and testing,
but a fake made from one is never saved, shipped or drawn, and a congress face is never face-swapped. These tests
make the code break the rule on purpose and check it refuses, then check a whole demo run leaves no such fake."""
import json
import re
from pathlib import Path

import numpy as np
import pytest

import sksha.forgery as forgery
from sksha.core import samples_dir
from sksha.forgery import (FixedPseudoFakeDataset, OnlineSelfBlendDataset, check_showable, congress_reals,
                           is_in_memory_only, london_reals, make_forgery, plot_gallery)

IMAGE_EXT = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".mp4", ".avi"}


def test_congress_self_blends_are_made_in_memory_and_marked():
    rows = congress_reals("congress_train")[:2]
    assert len(rows) == 2 and all(r["source"].startswith("us_congress") for r in rows)
    online = OnlineSelfBlendDataset(rows, image_size=32)
    assert [online[i]["label"].item() for i in range(2)] == [0.0, 1.0]
    assert not is_in_memory_only(online[0]) and is_in_memory_only(online[1])
    fixed = FixedPseudoFakeDataset(rows, image_size=32, methods=("self_blend",))
    assert [is_in_memory_only(fixed[i]) for i in range(4)] == [False, True, False, True]


def test_congress_faces_are_never_swapped():
    c, london = congress_reals("congress")[0], london_reals("train")[0]
    with pytest.raises(ValueError, match="never manipulated"): make_forgery("face_swap", c, partner=london)
    with pytest.raises(ValueError, match="never manipulated"): make_forgery("face_swap", london, partner=c)
    with pytest.raises(ValueError, match="never manipulated"): FixedPseudoFakeDataset([c] + london_reals("val")[:2])


def test_a_congress_fake_cannot_be_drawn():
    fixed = FixedPseudoFakeDataset(congress_reals("congress")[:2], image_size=32, methods=("self_blend",))
    with pytest.raises(ValueError, match="in memory only"): check_showable([fixed[0], fixed[1]], "a test figure")
    assert check_showable([fixed[0], fixed[2]])                   # the reals may be shown
    with pytest.raises(ValueError, match="never manipulated"): plot_gallery(congress_reals("congress")[:2])

    class Mixed:                                                  # a test split that smuggles in a congress fake
        rows = [{"label": 0}, {"label": 1}]
        def __len__(self): return 2
        def __getitem__(self, i): return fixed[i]
    from sksha.demo import save_gradcam_gallery
    with pytest.raises(ValueError, match="in memory only"):
        save_gradcam_gallery(Path("never-written.png"), None, Mixed(), n=2)
    assert not Path("never-written.png").exists()


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_no_congress_fake_on_disk_after_a_demo(tmp_path, monkeypatch):
    "A ci demo run trains and validates on congress self-blends; the only images it writes show London faces."
    from sksha.demo import run_demo
    before = _files(samples_dir())
    shown = []
    real_check = forgery.check_showable
    def spy(items, what="a figure"):
        items = real_check(items, what); shown.extend(it["identity"] for it in items); return items
    monkeypatch.setattr(forgery, "check_showable", spy)
    m = run_demo(tmp_path / "r", profile="ci", steps=1, minutes=5, gradcam=4, robustness_levels=(2,), quiet=True)
    assert m["settings"]["data"] == "mixed" and m["training"]["congress_train"] > 500   # congress fakes were used ...
    images = sorted(p for p in _files(tmp_path) if Path(p).suffix.lower() in IMAGE_EXT)
    assert images == ["r/gradcam.png", "r/robustness.png", "r/roc.png"], images         # ... none was written,
    assert len(shown) == 4 and all(i.startswith("london_") for i in shown), shown       # the gallery is London's,
    assert _files(samples_dir()) == before                                              # and data_samples is untouched
    scores = (tmp_path / "r" / "scores.csv").read_text()
    assert "congress,real/congress/" in scores                                          # scores only, of the real's path


def test_shipped_data_holds_no_congress_fake():
    rows = list(csv_rows())
    listed = {r["path"] for r in rows} | {r["mask"] for r in rows if r["mask"]}
    for rel in _files(samples_dir()):
        if Path(rel).suffix.lower() in {".jpg", ".png"}:
            assert rel in listed, f"{rel} is not in the manifest"
    for r in rows:
        if r["source"].startswith("us_congress"):
            assert r["method"] == "real" and r["label"] == "0" and not r["mask"] and not r["partner"], r
        if r["method"] != "real":
            assert r["source"].startswith("frl_london_") and r["partner"] in ("", *{x["identity"] for x in rows if x["identity"].startswith("london_")}), r


def csv_rows():
    import csv
    with open(samples_dir() / "manifest.csv", newline="") as f: yield from csv.DictReader(f)


MAKES_FAKES = re.compile(r"self_blend|make_forgery|FixedPseudoFakeDataset|OnlineSelfBlendDataset|demo_data")


def test_no_notebook_draws_a_congress_fake():
    "A stored figure comes from a cell; no cell that both reads congress portraits and makes fakes stores a picture."
    nbs = sorted((Path(__file__).resolve().parent.parent / "nbs").rglob("*.ipynb"))
    assert nbs
    for nb_path in nbs:
        nb = json.loads(nb_path.read_text())
        for cell in nb["cells"]:
            if cell["cell_type"] != "code": continue
            src = "".join(cell["source"])
            has_image = any("image/png" in o.get("data", {}) for o in cell.get("outputs", []))
            if has_image and "congress" in src and MAKES_FAKES.search(src):
                pytest.fail(f"{nb_path.name}: a cell that makes fakes from congress portraits stores a figure:\n{src[:300]}")
