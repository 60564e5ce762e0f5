"""The shipped data_samples/: manifest integrity, identity-disjoint splits, the consent rule, size, attribution."""
import csv
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from sksha.core import load_image, samples_dir
from sksha.datasets import load_manifest
from sksha.forgery import parse_landmarks

COLUMNS = ["path", "label", "method", "identity", "split", "source", "mask"]


@pytest.fixture(scope="module")
def rows():
    return load_manifest()


def test_columns_and_values(rows):
    with open(samples_dir() / "manifest.csv", newline="") as f: header = next(csv.reader(f))
    assert header[:len(COLUMNS)] == COLUMNS
    for r in rows:
        assert r["method"] in ("real", "self_blend", "face_swap")
        assert r["split"] in ("train", "val", "test", "congress")
        assert r["label"] == (0 if r["method"] == "real" else 1)
        assert bool(r["mask"]) == (r["method"] != "real")
        assert r["relpath"].startswith("real/" if r["method"] == "real" else f"fake/{r['method']}/")


def test_paths_exist_and_read(rows):
    root = samples_dir()
    for r in rows:
        assert (root / r["relpath"]).is_file(), r["relpath"]
        if r["mask"]: assert Path(r["mask"]).is_file(), r["mask"]
    for r in rows[::50]:  # a sample: decodable, square, landmarks inside the crop
        image = load_image(r["path"])
        assert image.shape[0] == image.shape[1] >= 96
        lm = parse_landmarks(r["landmarks"])
        assert (lm > 0).all() and (lm < image.shape[0]).all()
        if r["mask"]:
            mask = cv2.imread(r["mask"], cv2.IMREAD_GRAYSCALE)
            assert mask.shape == image.shape[:2] and mask.max() > 0


def test_identity_disjoint_splits(rows):
    splits = defaultdict(set)
    for r in rows: splits[r["identity"]].add(r["split"])
    assert all(len(s) == 1 for s in splits.values()), {i: s for i, s in splits.items() if len(s) > 1}
    per_split = defaultdict(set)
    for r in rows: per_split[r["split"]].add(r["identity"])
    assert min(len(per_split[s]) for s in ("train", "val", "test")) >= 8


def test_fakes_in_their_source_split(rows):
    reals = {(r["identity"], r["source"]): r["split"] for r in rows if r["method"] == "real"}
    identity_split = {r["identity"]: r["split"] for r in rows}
    for r in rows:
        if r["method"] == "real": continue
        assert reals[r["identity"], r["source"]] == r["split"]  # made from a real of this split
        if r["method"] == "face_swap":
            assert r["partner"].startswith("london_") and r["partner"] != r["identity"]
            assert identity_split[r["partner"]] == r["split"]


def test_congress_real_only(rows):
    congress = [r for r in rows if r["split"] == "congress"]
    assert len(congress) >= 20
    assert all(r["method"] == "real" and r["source"].startswith("us_congress") for r in congress)
    fakes = [r for r in rows if r["method"] != "real"]
    assert fakes and all(r["source"].startswith("frl_london_") and r["identity"].startswith("london_") for r in fakes)
    assert all(r["split"] != "congress" for r in fakes)
    assert not any(r["source"].startswith("us_congress") for r in rows if r["split"] != "congress")


def test_every_split_has_all_methods(rows):
    for split in ("train", "val", "test"):
        assert {r["method"] for r in rows if r["split"] == split} == {"real", "self_blend", "face_swap"}


def test_total_size_under_25_mb():
    total = sum(p.stat().st_size for p in samples_dir().rglob("*") if p.is_file())
    assert total < 25 * 2**20, f"data_samples is {total / 2**20:.1f} MB"


def test_attribution_and_readme():
    text = (samples_dir() / "ATTRIBUTION.md").read_text()
    for needed in ("Face Research Lab London Set", "CC BY 4.0", "10.6084/m9.figshare.5047666",
                   "public domain", "U.S. Government Publishing Office", "Changes made", "cropped", "resized"):
        assert needed in text, needed
    assert "build_samples.py" in (samples_dir() / "README.md").read_text()
    assert (samples_dir() / "build_samples.py").is_file()


def test_sample_video_reads_back():
    videos = sorted((samples_dir() / "video").glob("*.mp4"))
    assert videos
    cap, frames = cv2.VideoCapture(str(videos[0])), 0
    while True:
        ok, frame = cap.read()
        if not ok: break
        frames += 1
        assert frame.shape[2] == 3
    cap.release()
    assert frames >= 30
