"""Index builders on small fake trees in each published layout, the manifest, and FaceDataset's handling of bad files."""
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sksha.datasets import (FFPP_METHODS, DatasetIndex, FaceDataset, RobustnessAugment, SampleError,
                            build_celebdf_index, build_ffpp_index, build_folder_index, build_wilddeepfake_index,
                            group_split, import_deepfakebench_json, load_index, load_manifest, manifest_index,
                            read_celebdf_test_list, save_index, split_overlap)

PROV = dict(detector="retinaface", frames_per_video=32, crop_margin=1.3)


def touch(folder: Path, n: int = 2, size: int = 12) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n): cv2.imwrite(str(folder / f"{i:05d}.png"), np.full((size, size, 3), 30 * i + 20, np.uint8))


# ---------------------------------------------------------------- FaceForensics++

PAIRS = {"train": [["000", "003"], ["001", "002"], ["010", "011"]], "val": [["004", "005"]], "test": [["006", "007"]]}


@pytest.fixture
def ffpp(tmp_path) -> Path:
    "FF++ as `sksha extract-faces` leaves it: crops in <...>/c23/videos/<video>/, extraction.json at the top."
    root = tmp_path / "FF++"
    for split, pairs in PAIRS.items(): (root / "splits").mkdir(parents=True, exist_ok=True); (root / "splits" / f"{split}.json").write_text(json.dumps(pairs))
    for comp in ("c23", "c40"):
        for pairs in PAIRS.values():
            for a, b in pairs:
                for v in (a, b): touch(root / f"original_sequences/youtube/{comp}/videos/{v}", 4)
                for m in FFPP_METHODS:
                    for v in (f"{a}_{b}", f"{b}_{a}"): touch(root / f"manipulated_sequences/{m}/{comp}/videos/{v}", 3)
    (root / "original_sequences/youtube/c23/videos/999").mkdir()  # an empty folder is ignored
    (root / "extraction.json").write_text(json.dumps({"settings": {"backend": "retinaface", "min_score": 0.9,
                                                      "num_frames": 32, "stride": None, "margin": 1.3, "size": 299, "rule": "largest"}}))
    return root


def test_ffpp_official_pairs_keep_identities_apart(ffpp):
    idx = build_ffpp_index(ffpp, "c40", split_dir=ffpp / "splits")
    assert idx.video_counts("split") == {"test": 2 + 8, "train": 6 + 24, "val": 2 + 8}
    assert split_overlap(idx, "identity") == {} and split_overlap(idx, "source_video") == {}
    assert all(r["compression"] == "c40" for r in idx)
    fake = idx.filter(video="Face2Face/011_010")[0]
    assert (fake["label"], fake["identity"], fake["split"], fake["method"]) == (1, "011", "train", "Face2Face")
    assert idx.provenance["detector"] == "retinaface" and idx.provenance["crop_margin"] == 1.3
    assert idx.provenance["frames_per_video"] == 32  # read from extraction.json


def test_ffpp_subset_of_methods_and_thinning(ffpp):
    idx = build_ffpp_index(ffpp, methods=["Deepfakes"], split_dir=ffpp / "splits", frames_per_video=2)
    assert idx.counts("method") == {"Deepfakes": 10 * 2, "real": 10 * 2}


def test_ffpp_errors_say_what_to_do(ffpp, tmp_path):
    with pytest.raises(FileNotFoundError, match="train.json"): build_ffpp_index(ffpp)  # splits not in root
    with pytest.raises(ValueError, match="c23"): build_ffpp_index(ffpp, "hq", split_dir=ffpp / "splits")
    with pytest.raises(ValueError, match="Deepfake"): build_ffpp_index(ffpp, methods=["DeepFake"], split_dir=ffpp / "splits")
    raw = tmp_path / "raw_videos"
    (raw / "original_sequences/youtube/c23/videos").mkdir(parents=True)
    (raw / "original_sequences/youtube/c23/videos/000.mp4").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="sksha extract-faces"): build_ffpp_index(raw, split_dir=ffpp / "splits")
    (ffpp / "splits" / "val.json").write_text("[[\"004\"]]")
    with pytest.raises(ValueError, match="pairs"): build_ffpp_index(ffpp, split_dir=ffpp / "splits")


def test_save_load_roundtrip_with_relative_paths(ffpp, tmp_path):
    idx = build_ffpp_index(ffpp, split_dir=ffpp / "splits")
    csv_path = save_index(idx, ffpp / "index_c23.csv")
    assert not csv_path.read_text().splitlines()[1].startswith("/")  # stored relative to the index folder
    moved = tmp_path / "moved"
    shutil.copytree(ffpp, moved)
    back = load_index(moved / "index_c23.csv")
    assert len(back) == len(idx) and all(Path(r["path"]).is_file() and str(moved) in r["path"] for r in back)
    assert back.provenance["detector"] == "retinaface" and back.provenance["rows"] == len(idx)
    assert [r["label"] for r in back] == [r["label"] for r in idx]
    with pytest.raises(FileNotFoundError, match="index file"): load_index(tmp_path / "nope.csv")


# ---------------------------------------------------------------- Celeb-DF v2

@pytest.fixture
def celebdf(tmp_path) -> Path:
    root = tmp_path / "Celeb-DF-v2"
    for i in range(12):
        for clip in range(2): touch(root / f"Celeb-real/id{i}_{clip:04d}")
        touch(root / f"Celeb-synthesis/id{i}_id{(i + 1) % 12}_0000")
    for v in range(5): touch(root / f"YouTube-real/{v:05d}")
    (root / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00000.mp4\n1 Celeb-real/id0_0000.mp4\n0 Celeb-synthesis/id0_id1_0000.mp4\n\n")
    return root


def test_celebdf_test_list_and_identity_disjoint_train_val(celebdf):
    idx = build_celebdf_index(celebdf, val_fraction=0.3, provenance=PROV)
    test_videos = set(idx.filter(split="test").video_counts("video"))
    assert test_videos == {"YouTube-real/00000", "Celeb-real/id0_0000", "Celeb-synthesis/id0_id1_0000"}
    trainval = idx.filter(split=["train", "val"])
    assert split_overlap(trainval, "identity") == {} and trainval.counts("split").keys() == {"train", "val"}
    assert idx.provenance["identities_shared_with_test"] == 1  # id0 has another clip outside the test list
    fake = idx.filter(video="Celeb-synthesis/id3_id4_0000")[0]
    assert (fake["label"], fake["identity"], fake["source_video"], fake["method"]) == (1, "id3", "id3_0000", "Celeb-synthesis")
    assert {r["label"] for r in idx.filter(method="real")} == {0}
    # the same seed gives the same split; another seed another one
    assert build_celebdf_index(celebdf, val_fraction=0.3, provenance=PROV).rows == idx.rows


def test_celebdf_test_list_convention_and_errors(celebdf, tmp_path):
    assert read_celebdf_test_list(celebdf / "List_of_testing_videos.txt")["YouTube-real/00000"] == 0  # list's 1 = real
    bad = tmp_path / "list.txt"
    bad.write_text("1 YouTube-real/00000.mp4\nYouTube-real/00001.mp4\n")
    with pytest.raises(ValueError, match=r"list.txt:2"): read_celebdf_test_list(bad)
    bad.write_text("0 Celeb-real/id0_0000.mp4\n")
    with pytest.raises(ValueError, match="contradicts"): read_celebdf_test_list(bad)
    with pytest.raises(FileNotFoundError, match="List_of_testing_videos"): build_celebdf_index(tmp_path)


# ---------------------------------------------------------------- WildDeepfake

def make_wilddeepfake(root: Path) -> Path:
    "WildDeepfake unpacked: 8 train and 2 test source videos per folder, two sequences each (3 and 2 frames)."
    for folder in ("real_train", "fake_train", "real_test", "fake_test"):
        base = root / folder / ("extracted" if folder == "fake_train" else "")  # some copies unpack below extracted/
        for n in range(8 if "train" in folder else 2):
            touch(base / str(n) / folder.split("_")[0] / "0", 3)
            touch(base / str(n) / folder.split("_")[0] / "1", 2)
    return root


def test_wilddeepfake_layout(tmp_path):
    root = make_wilddeepfake(tmp_path / "wild")
    idx = build_wilddeepfake_index(root, val_fraction=0.25, frames_per_video=2, provenance=PROV)
    assert set(idx.counts("split")) == {"train", "val", "test"}
    assert idx.filter(split="test").counts("label") == {0: 2 * 2 * 2, 1: 2 * 2 * 2}
    assert split_overlap(idx, "source_video") == {}
    assert len(idx) == (8 + 8 + 2 + 2) * 2 * 2
    (root / "real_test" / "0").rename(tmp_path / "gone0"); (root / "real_test" / "1").rename(tmp_path / "gone1")
    (root / "real_test" / "0.tar.gz").write_bytes(b"x")
    with pytest.raises(FileNotFoundError, match="unpack"): build_wilddeepfake_index(root, provenance=PROV)
    with pytest.raises(FileNotFoundError, match="real_train"): build_wilddeepfake_index(tmp_path / "gone0", provenance=PROV)


# ---------------------------------------------------------------- plain folder

def make_plain_folder(root: Path) -> Path:
    "real/<person>_<clip>/ (2 + 1 frames) and fake/{swap,blend}/<person>_clipA/ (1 frame) for 20 people."
    for i in range(20):
        touch(root / "real" / f"p{i}_clipA", 2); touch(root / "real" / f"p{i}_clipB", 1)
        touch(root / "fake" / ("swap" if i % 2 else "blend") / f"p{i}_clipA", 1)
    return root


def test_plain_folder_with_methods_and_identities(tmp_path):
    root = make_plain_folder(tmp_path / "mine")
    idx = build_folder_index(root, {"train": .6, "val": .2, "test": .2}, seed=3,
                             identity_of=lambda p: p.parent.name.split("_")[0], provenance=PROV)
    assert idx.counts("method") == {"blend": 10, "real": 60, "swap": 10}
    assert split_overlap(idx, "identity") == {}
    assert len(idx.counts("split")) == 3
    assert idx.filter(method="swap")[0]["video"].startswith("swap/")


def test_plain_folder_loose_fakes_and_missing(tmp_path):
    root = tmp_path / "loose"
    touch(root / "real", 4); touch(root / "fake", 4)
    idx = build_folder_index(root, provenance=PROV)
    assert idx.counts("method") == {"fake": 4, "real": 4}
    with pytest.raises(FileNotFoundError, match="real/"): build_folder_index(tmp_path / "empty_dir_that_is_missing")


# ---------------------------------------------------------------- DeepfakeBench JSON

def make_deepfakebench_celebdf(tmp_path: Path) -> tuple[Path, Path]:
    "(JSON, frames root) of a DeepfakeBench Celeb-DF-v2 file; its test videos are also listed under val."
    root = tmp_path / "rgb"
    entries = {}
    for label, folder, vids in (("CelebDFv2_real", "Celeb-real", ["id0_0000", "id1_0000", "id2_0000"]),
                                ("CelebDFv2_fake", "Celeb-synthesis", ["id0_id1_0000", "id2_id0_0000"])):
        entries[label] = {"train": {}, "val": {}, "test": {}}
        for k, v in enumerate(vids):
            touch(root / "Celeb-DF-v2" / folder / "frames" / v, 3)
            frames = [f"Celeb-DF-v2\\{folder}\\frames\\{v}\\{i:05d}.png" for i in range(3)]
            info = {"label": label, "frames": frames}
            if k == 0: entries[label]["val"][v] = entries[label]["test"][v] = info  # as DeepfakeBench lists its test videos
            else: entries[label]["train"][v] = info
    (tmp_path / "Celeb-DF-v2.json").write_text(json.dumps({"Celeb-DF-v2": entries}))
    return tmp_path / "Celeb-DF-v2.json", root


def test_deepfakebench_celebdf_json_keeps_repeated_videos_in_test(tmp_path):
    _, root = make_deepfakebench_celebdf(tmp_path)
    idx = import_deepfakebench_json(tmp_path / "Celeb-DF-v2.json", root=root, frames_per_video=2, provenance=PROV)
    assert idx.counts("split", "method") == {("test", "Celeb-synthesis"): 2, ("test", "real"): 2,
                                             ("train", "Celeb-synthesis"): 2, ("train", "real"): 4}
    assert idx.provenance["videos_listed_in_several_splits"] == 2
    assert all(Path(r["path"]).is_file() for r in idx) and idx.rows[0]["compression"] == ""
    with pytest.raises(FileNotFoundError, match="root="): import_deepfakebench_json(tmp_path / "Celeb-DF-v2.json", root=tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"): import_deepfakebench_json(tmp_path / "broken.json")


# ---------------------------------------------------------------- splits, manifest, dataset

def test_group_split_is_stable_and_complete():
    groups = [f"g{i}" for i in range(300)]
    a, b = group_split(groups, seed=7), group_split(groups[:200], seed=7)
    assert all(a[g] == b[g] for g in b)  # adding groups never moves the others
    assert set(a.values()) == {"train", "val", "test"}
    with pytest.raises(ValueError, match="fractions"): group_split(groups, {"train": 0})


def test_load_manifest_contract(tmp_path, monkeypatch):
    d = tmp_path / "samples"
    touch(d / "real" / "london", 1); touch(d / "fake" / "self_blend", 1)
    (d / "manifest.csv").write_text(
        "path,label,method,identity,split,source,mask\n"
        "real/london/00000.png,0,real,001,train,001_03.jpg,\n"
        "fake/self_blend/00000.png,1,self_blend,001,train,001_03.jpg,masks/self_blend/00000.png\n"
        "real/london/00000.png,0,real,050,congress,X000001.jpg,\n")
    monkeypatch.setenv("SKSHA_DATA_SAMPLES", str(d))
    rows = load_manifest("train")
    assert [r["label"] for r in rows] == [0, 1] and all(Path(r["path"]).is_file() for r in rows)
    assert rows[1]["video"] == "self_blend/001_03" and rows[1]["mask"].endswith("masks/self_blend/00000.png")
    assert rows[0]["mask"] == "" and rows[0]["relpath"] == "real/london/00000.png"
    assert len(load_manifest()) == 3 and len(load_manifest(["train", "congress"])) == 3
    with pytest.raises(ValueError, match="congress"): load_manifest("holdout")
    item = FaceDataset(manifest_index("train"), image_size=16)[1]
    assert item["label"].item() == 1.0 and item["method"] == "self_blend"
    (d / "manifest.csv").unlink()
    with pytest.raises(FileNotFoundError, match="build_samples"): load_manifest()


def test_shipped_manifest_if_present():
    try: rows = load_manifest()
    except FileNotFoundError: pytest.skip("data_samples/manifest.csv is not built yet")
    assert {"train", "val", "test"} <= {r["split"] for r in rows}
    assert all(Path(r["path"]).is_file() for r in rows)
    idx = manifest_index(["train", "val", "test"])
    assert split_overlap(idx, "identity") == {}
    assert {r["method"] for r in load_manifest("congress")} <= {"real"}


def test_face_dataset_items_and_flip(tmp_path):
    img = np.zeros((20, 30, 3), np.uint8); img[:, :15] = 255  # left half white
    cv2.imwrite(str(tmp_path / "a.png"), img)
    rows = [dict(path=str(tmp_path / "a.png"), label=1, method="m", video="m/v", identity="p")]
    plain = FaceDataset(rows, image_size=16)[0]["image"]
    assert plain.shape == (3, 16, 16) and plain[:, :, 0].mean() == 1.0 and plain[:, :, -1].mean() == -1.0
    flipped = FaceDataset(rows, image_size=16, train=True, flip_p=1.0)[0]["image"]
    assert torch.equal(flipped, plain.flip(-1))
    aug = FaceDataset(rows * 8, image_size=16, train=True, flip_p=0, augment=RobustnessAugment(p=1.0, names=["blur"], max_severity=1))
    assert not torch.equal(aug[0]["image"], plain)
    with pytest.raises(ValueError, match="unknown perturbations"): RobustnessAugment(names=["sepia"])
    with pytest.raises(ValueError, match="on_error"): FaceDataset(rows, on_error="ignore")


def test_bad_files_named_inside_dataloader_workers(tmp_path):
    touch(tmp_path / "ok", 3)
    (tmp_path / "corrupt.png").write_bytes(b"not a png")
    rows = [dict(path=str(p), label=0) for p in sorted((tmp_path / "ok").glob("*.png"))]
    rows.insert(1, dict(path=str(tmp_path / "corrupt.png"), label=1))
    rows.append(dict(path=str(tmp_path / "missing.png"), label=1))
    loader = torch.utils.data.DataLoader(FaceDataset(rows, image_size=8), batch_size=5, num_workers=2)
    with pytest.raises(Exception, match="corrupt.png"): next(iter(loader))
    ds = FaceDataset(rows, image_size=8, on_error="skip")
    assert sorted(Path(p).name for p, _ in ds.check()) == ["corrupt.png", "missing.png"]
    with pytest.warns(UserWarning, match="corrupt.png"):
        batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=5, num_workers=0)))
    assert "corrupt.png" not in " ".join(batch["path"]) and len(batch["path"]) == 5
    with pytest.raises(SampleError, match="no readable image"):
        FaceDataset([dict(path=str(tmp_path / "missing.png"), label=0)], on_error="skip")[0]


def test_videos_to_crops_to_index_end_to_end(tmp_path):
    "`extract_faces` on a real/ + fake/<method>/ folder of videos, then `build_folder_index` reads its provenance."
    from sksha.faces import ExtractionSettings, camera_move_video, extract_faces, read_frames, sample_video
    _, frames, _ = read_frames(sample_video(), num_frames=1)
    for sub, zoom in (("real", (1.0, 1.1)), ("real", (1.1, 1.2)), ("fake/swap", (1.0, 1.2))):
        camera_move_video(frames[0], tmp_path / "videos" / sub / f"clip{zoom[1]}.mp4", num_frames=6, size=(160, 160), zoom=zoom)
    audits = extract_faces(tmp_path / "videos", tmp_path / "faces", ExtractionSettings(num_frames=3, size=32), progress=False)
    assert [a.status for a in audits] == ["ok"] * 3
    idx = build_folder_index(tmp_path / "faces", {"train": 1.0})
    assert idx.counts("method") == {"real": 6, "swap": 3} and idx.video_counts("method") == {"real": 2, "swap": 1}
    assert (idx.provenance["detector"], idx.provenance["frames_per_video"], idx.provenance["crop_margin"]) == ("retinaface", 3, 1.3)
    batch = next(iter(torch.utils.data.DataLoader(FaceDataset(idx, image_size=24), batch_size=9)))
    assert batch["image"].shape == (9, 3, 24, 24) and batch["label"].sum().item() == 3


# ---------------------------------------------------------------- `sksha index`

def run_index(capsys, *args) -> tuple[int, str, str]:
    "`sksha index ARGS` in-process: (exit status, stdout, stderr)."
    from sksha.datasets import index_main
    status = index_main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def table_row(out: str, name: str) -> list[str]:
    "The cells of the summary line that starts with `name`."
    line = next(l for l in out.splitlines() if l.strip().startswith(name + " ") or l.strip() == name)
    return line.split()[len(name.split()):]


def test_index_cli_ffpp_writes_csv_json_and_summary(ffpp, tmp_path, capsys):
    out_csv = tmp_path / "idx" / "ffpp_c40.csv"
    status, out, err = run_index(capsys, "ffpp", ffpp, out_csv, "--compression", "c40", "--split-dir", ffpp / "splits",
                                 "--methods", "Deepfakes,FaceSwap", "--frames-per-video", "2")
    assert status == 0, err
    expected = build_ffpp_index(ffpp, "c40", ["Deepfakes", "FaceSwap"], ffpp / "splits", frames_per_video=2)
    back = load_index(out_csv)
    assert [(r["video"], r["split"], r["label"], Path(r["path"]).resolve()) for r in back] == \
           [(r["video"], r["split"], r["label"], Path(r["path"]).resolve()) for r in expected]
    meta = json.loads(out_csv.with_suffix(".json").read_text())
    assert (meta["dataset"], meta["compression"], meta["methods"], meta["rows"]) == ("FF++", "c40", ["Deepfakes", "FaceSwap"], len(expected))
    assert meta["detector"] == "retinaface" and meta["index_frames_per_video"] == 2  # from extraction.json / the option
    assert f"FF++ index: {len(expected)} rows, 30 videos" in out
    assert table_row(out, "split") == ["train", "val", "test", "total"]
    assert table_row(out, "videos") == ["18", "6", "6", "30"]      # 6 reals + 2 x 6 fakes in train
    assert table_row(out, "real rows") == ["12", "4", "4", "20"]   # 2 crops per video after thinning
    assert table_row(out, "Deepfakes") == ["6", "(12)", "2", "(4)", "2", "(4)", "10", "(20)"]
    assert "identity overlap between splits: none" in out and "WARNING" not in err
    assert f"sksha train paper --set data.kind=index --set data.index={out_csv}" in out


def test_index_cli_celebdf_warns_loudly_about_shared_identities(celebdf, tmp_path, capsys):
    status, out, err = run_index(capsys, "celebdf", celebdf, tmp_path / "celebdf.csv", "--val-fraction", "0.3",
                                 "--test-list", celebdf / "List_of_testing_videos.txt", "--detector", "retinaface")
    assert status == 0, err
    assert load_index(tmp_path / "celebdf.csv").rows == build_celebdf_index(celebdf, val_fraction=0.3, provenance=PROV).rows
    assert "WARNING: 1 identity in more than one split: id0 (test, " in err and "per video" in err
    assert "identity overlap between splits: 1" in out
    assert json.loads((tmp_path / "celebdf.json").read_text())["detector"] == "retinaface"


def test_index_cli_wilddeepfake_folder_and_deepfakebench(tmp_path, capsys):
    wild = make_wilddeepfake(tmp_path / "wild")
    status, out, err = run_index(capsys, "wilddeepfake", wild, wild / "wild.csv", "--val-fraction", "0.25", "--seed", "1",
                                 "--frames-per-video", "2", "--detector", "authors' crops", "--crop-margin", "1.3")
    assert status == 0, err
    idx = load_index(wild / "wild.csv")
    assert idx.rows == build_wilddeepfake_index(wild, 0.25, 1, 2, provenance=PROV).rows
    assert idx.provenance["crop_margin"] == 1.3 and idx.provenance["detector"] == "authors' crops"
    assert table_row(out, "fake rows")[-1] == str(20 * 2) and "overlap between splits: none" in out

    mine = make_plain_folder(tmp_path / "mine")
    status, out, err = run_index(capsys, "folder", mine, tmp_path / "mine.csv", "--val-fraction", "0.2",
                                 "--test-fraction", "0.2", "--seed", "3")
    assert status == 0, err
    assert "crops: not recorded" in out and "warning: the index of" in err and "pass --detector, --crop-frames" in err
    assert load_index(tmp_path / "mine.csv").rows == build_folder_index(mine, {"train": .6, "val": .2, "test": .2}, 3, provenance=PROV).rows
    assert table_row(out, "rows")[-1] == "80" and "  blend" in out and "  swap" in out

    json_path, frames = make_deepfakebench_celebdf(tmp_path / "dfb")
    status, out, err = run_index(capsys, "deepfakebench", json_path, tmp_path / "dfb.csv", "--root", frames, "--detector", "dlib")
    assert status == 0, err
    assert load_index(tmp_path / "dfb.csv").counts("split", "method") == {
        ("test", "Celeb-synthesis"): 3, ("test", "real"): 3, ("train", "Celeb-synthesis"): 3, ("train", "real"): 6}
    assert "note: no rows in split val" in out


def test_index_cli_errors(ffpp, celebdf, tmp_path, capsys):
    # dataset problems: exit 1 with the builder's message
    status, out, err = run_index(capsys, "wilddeepfake", tmp_path / "missing", tmp_path / "w.csv")
    assert (status, out) == (1, "") and "sksha index: error:" in err and "missing does not exist" in err
    status, _, err = run_index(capsys, "ffpp", celebdf, tmp_path / "f.csv")   # wrong layout: no FF++ split files
    assert status == 1 and "train.json" in err
    status, _, err = run_index(capsys, "ffpp", ffpp, tmp_path / "f.csv", "--split-dir", ffpp / "splits", "--compression", "raw")
    assert status == 1 and "no face-crop folders for FF++ real raw" in err
    assert not (tmp_path / "f.csv").exists()
    # bad arguments: exit 2, nothing written
    json_path, frames = make_deepfakebench_celebdf(tmp_path / "dfb")
    for args, why in ((["celebdf", celebdf, tmp_path / "c.csv", "--split-dir", "x"], "--split-dir does not apply to layout 'celebdf'"),
                      (["folder", celebdf, tmp_path / "c.csv", "--val-fraction", "1.5"], "fraction in [0, 1)"),
                      (["ffpp", ffpp, tmp_path / "c.txt"], "must end in .csv"),
                      (["ffpp", ffpp, tmp_path / "c.csv", "--methods", "DeepFake"], "--methods 'DeepFake'"),
                      (["deepfakebench", json_path, json_path.with_suffix(".csv"), "--root", frames], "would overwrite the input"),
                      (["celebdf", celebdf, tmp_path / "c.csv", "--frames-per-video", "0"], "at least 1"),
                      (["nosuchlayout", celebdf, tmp_path / "c.csv"], "invalid choice")):
        status, _, err = run_index(capsys, *args)
        assert status == 2 and why in err, (args, err)
    assert not (tmp_path / "c.csv").exists() and json.loads(json_path.read_text()).keys() == {"Celeb-DF-v2"}


def test_index_cli_through_the_sksha_command(tmp_path):
    import subprocess
    root = tmp_path / "loose"
    touch(root / "real", 4); touch(root / "fake", 4)
    proc = subprocess.run(["sksha", "index", "folder", str(root), str(tmp_path / "loose.csv"), "--detector", "retinaface"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "loose index: 8 rows, 8 videos" in proc.stdout and (tmp_path / "loose.json").is_file()
    proc = subprocess.run(["sksha", "index", "folder", str(root)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "OUT.csv" in proc.stderr
