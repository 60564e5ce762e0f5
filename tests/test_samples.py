"""The shipped data_samples/: manifest integrity, identity-disjoint splits, the consent rule, size, attribution."""
import csv
import importlib.util
import os
from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np
import pytest

from sksha.core import load_image, samples_dir
from sksha.datasets import load_manifest
from sksha.forgery import parse_landmarks

COLUMNS = ["path", "label", "method", "identity", "split", "source", "mask"]
LONDON_SPLITS = ("train", "val", "test")
CONGRESS_SPLITS = ("congress_train", "congress_val", "congress")  # "congress" is the held-out group
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


@pytest.fixture(scope="module")
def rows():
    return load_manifest()


def test_columns_and_values(rows):
    with open(samples_dir() / "manifest.csv", newline="") as f: header = next(csv.reader(f))
    assert header[:len(COLUMNS)] == COLUMNS
    for r in rows:
        assert r["method"] in ("real", "self_blend", "face_swap")
        assert r["split"] in LONDON_SPLITS + CONGRESS_SPLITS
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
    congress = [r for r in rows if r["split"] in CONGRESS_SPLITS]
    assert len(congress) >= 300
    for r in congress:
        assert (r["method"], r["label"], r["expression"], r["mask"], r["partner"]) == ("real", 0, "portrait", "", ""), r
        assert r["source"].startswith("us_congress") and r["identity"].startswith("congress_"), r
        assert r["relpath"] == f"real/congress/{r['identity'][len('congress_'):]}.jpg", r
    fakes = [r for r in rows if r["method"] != "real"]
    assert fakes and all(r["source"].startswith("frl_london_") and r["identity"].startswith("london_") for r in fakes)
    assert all(r["split"] in LONDON_SPLITS for r in fakes)
    assert not any(r["source"].startswith("us_congress") or r["identity"].startswith("congress_")
                   for r in rows if r["split"] not in CONGRESS_SPLITS)


def test_congress_groups_person_disjoint(rows):
    groups = {s: [r["identity"] for r in rows if r["split"] == s] for s in CONGRESS_SPLITS}
    assert len(groups["congress"]) == 100   # the held-out group: exactly the 100 shipped before the others came
    assert len(groups["congress_val"]) == 100
    assert len(groups["congress_train"]) >= 100
    everyone = [i for ids in groups.values() for i in ids]
    assert len(everyone) == len(set(everyone))  # one photo per person, so no person is in two groups
    sources = [r["source"] for r in rows if r["split"] in CONGRESS_SPLITS]
    assert len(sources) == len(set(sources))


def test_no_stored_congress_fake(rows):
    "Every image file here is in the manifest, and every file under fake/ or masks/ comes from a London photo."
    root = samples_dir()
    listed = {r["relpath"] for r in rows} | {Path(r["mask"]).relative_to(root).as_posix() for r in rows if r["mask"]}
    images = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES}
    assert images == listed, sorted(images ^ listed)[:10]
    london_made = {Path(r["mask"]).relative_to(root).as_posix() for r in rows if r["mask"]} | {
        r["relpath"] for r in rows if r["method"] != "real"}
    made = [p.relative_to(root).as_posix() for d in ("fake", "masks") for p in (root / d).rglob("*") if p.is_file()]
    assert made and set(made) <= london_made
    by_path = {r["relpath"]: r for r in rows}
    for rel in made:
        if rel.startswith("fake/"): assert by_path[rel]["source"].startswith("frl_london_"), rel
    assert all(p.name.startswith("london_") for p in (root / "video").iterdir())
    assert {p.stem for p in (root / "real" / "congress").iterdir()} == {
        r["identity"][len("congress_"):] for r in rows if r["split"] in CONGRESS_SPLITS}


def _build_script():
    spec = importlib.util.spec_from_file_location("build_samples", samples_dir() / "build_samples.py")
    module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)
    return module


def test_congress_groups_follow_the_seeded_order(rows):
    "Held out = the first 100 face-bearing portraits of the build's seeded order, val the next 100, train the rest."
    build = _build_script()
    args = build.parse_args(["--seed", "0"])
    pool = Path(os.environ.get("SKSHA_FACEPOOL", args.facepool))
    if not (pool / build.CONGRESS).is_dir(): pytest.skip(f"no facepool at {pool} (set SKSHA_FACEPOOL)")
    rng = np.random.default_rng(args.seed)   # replay the build's use of the generator: London split, then congress
    build.london_splits(pool / build.LONDON["03"][0] / "london_info.csv", args.val, args.test, rng)
    portraits = sorted((pool / build.CONGRESS).glob("*.jpg"))
    order = [f"{build.CONGRESS}/{portraits[i].name}" for i in rng.permutation(len(portraits))]
    split_of = {r["source"]: r["split"] for r in rows if r["split"] in CONGRESS_SPLITS}
    faced = [s for s in order if s in split_of]  # a portrait with no detected face has no row
    assert [split_of[s] for s in faced] == [build.congress_split(k, args.congress, args.congress_val)
                                            for k in range(len(faced))]
    assert len(faced) == len(split_of)


def test_every_split_has_all_methods(rows):
    for split in LONDON_SPLITS:
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
