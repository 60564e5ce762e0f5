"""Face extraction end to end: the sample video, broken inputs, several processes and the `sksha extract-faces` command."""
import csv
import json
from pathlib import Path

import numpy as np
import pytest

from sksha.cli import main
from sksha.faces import (ExtractionSettings, VideoReadError, camera_move_video, crop_face, detect_faces,
                         extract_faces, extract_video, pick_face, read_extraction, read_frames, sample_video)


@pytest.fixture(scope="module")
def video() -> Path:
    "The real sample video shipped in data_samples/video (found through sksha.core.samples_dir)."
    return sample_video()


@pytest.fixture(scope="module")
def broken_inputs(tmp_path_factory) -> dict:
    d = tmp_path_factory.mktemp("broken")
    corrupt = d / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42 but then nothing sensible" * 50)
    noface = camera_move_video(np.random.default_rng(0).integers(0, 255, (120, 160, 3), dtype=np.uint8),
                               d / "noise.mp4", num_frames=8)
    return dict(corrupt=corrupt, noface=noface)


def test_every_frame_of_the_sample_video_has_a_face(video, tmp_path):
    audit = extract_video(video, tmp_path / "crops", ExtractionSettings(num_frames=None, size=64))
    assert audit.status == "ok", audit.message
    assert audit.frames_read == audit.frames_total > 0
    assert audit.faces_found == audit.frames_read and audit.frames_without_face == []
    meta = json.loads((tmp_path / "crops" / "landmarks.json").read_text())
    assert len(meta["crops"]) == audit.frames_read == len(list((tmp_path / "crops").glob("*.png")))
    for rec in meta["crops"].values():  # landmarks sit inside the crop
        lm = np.array(rec["landmarks_crop"])
        assert lm.shape == (5, 2) and (lm > 0).all() and (lm < 64).all()
    assert json.loads((tmp_path / "crops" / "audit.json").read_text())["faces_found"] == audit.faces_found


def test_haar_backend_finds_the_face_too(video):
    idx, frames, _ = read_frames(video, num_frames=4)
    assert len(frames) == len(idx) == 4
    for frame in frames:
        r, h = pick_face(detect_faces(frame)), pick_face(detect_faces(frame, backend="haar"))
        assert r is not None and h is not None and h.landmarks is None
        assert np.hypot(*np.subtract(r.center, h.center)) < 0.25 * r.width


def test_crop_is_square_and_resized(video):
    _, frames, _ = read_frames(video, num_frames=1)
    crop, lm = crop_face(frames[0], pick_face(detect_faces(frames[0])), margin=1.3, size=80)
    assert crop.shape == (80, 80, 3) and crop.dtype == np.uint8 and lm.shape == (5, 2)


def test_broken_inputs_are_reported_and_the_run_continues(video, broken_inputs, tmp_path):
    src = tmp_path / "in"; (src / "sub").mkdir(parents=True)
    (src / "a_good.mp4").write_bytes(video.read_bytes())
    (src / "sub" / "corrupt.mp4").write_bytes(broken_inputs["corrupt"].read_bytes())
    (src / "noise.mp4").write_bytes(broken_inputs["noface"].read_bytes())
    (src / "notes.txt").write_text("not a video, not looked at")
    audits = extract_faces(src, tmp_path / "out", ExtractionSettings(num_frames=4, size=64), progress=False)
    status = {a.video: a.status for a in audits}
    assert status == {"a_good.mp4": "ok", "noise.mp4": "no_face", "sub/corrupt.mp4": "unreadable"}
    assert "corrupt.mp4" in next(a for a in audits if a.status == "unreadable").message
    assert len(list((tmp_path / "out" / "a_good").glob("*.png"))) == 4
    rows = list(csv.DictReader(open(tmp_path / "out" / "audit.csv")))
    assert [r["video"] for r in rows] == ["a_good.mp4", "noise.mp4", "sub/corrupt.mp4"]
    assert rows[1]["frames_without_face"].split() and rows[1]["faces_found"] == "0"
    ext = read_extraction(tmp_path / "out")
    assert ext["summary"]["ok"] == 1 and ext["summary"]["no_face"] == 1 and ext["summary"]["unreadable"] == 1
    assert ext["settings"]["backend"] == "retinaface" and ext["settings"]["margin"] == 1.3
    assert set(ext["problems"]) == {"noise.mp4", "sub/corrupt.mp4"}


def test_read_frames_names_the_bad_file(broken_inputs, tmp_path):
    with pytest.raises(VideoReadError, match="corrupt.mp4"): read_frames(broken_inputs["corrupt"])
    with pytest.raises(VideoReadError, match="not found"): read_frames(tmp_path / "missing.mp4")


def test_several_processes_give_the_same_crops(video, broken_inputs, tmp_path):
    src = tmp_path / "in"; src.mkdir()
    for i in range(2): (src / f"v{i}.mp4").write_bytes(video.read_bytes())
    (src / "corrupt.mp4").write_bytes(broken_inputs["corrupt"].read_bytes())
    s = ExtractionSettings(num_frames=3, size=48)
    one = extract_faces(src, tmp_path / "one", s, workers=1, progress=False)
    two = extract_faces(src, tmp_path / "two", s, workers=2, progress=False)
    assert [(a.video, a.status, a.faces_found) for a in one] == [(a.video, a.status, a.faces_found) for a in two]
    m1 = json.loads((tmp_path / "one" / "v0" / "landmarks.json").read_text())["crops"]
    m2 = json.loads((tmp_path / "two" / "v0" / "landmarks.json").read_text())["crops"]
    assert m1.keys() == m2.keys()
    for k in m1: np.testing.assert_allclose(m1[k]["box"], m2[k]["box"], atol=1.0)


def test_cli(video, broken_inputs, tmp_path, capsys):
    src = tmp_path / "in"; src.mkdir()
    (src / "good.mp4").write_bytes(video.read_bytes())
    (src / "corrupt.mp4").write_bytes(broken_inputs["corrupt"].read_bytes())
    assert main(["extract-faces", str(src), str(tmp_path / "out"), "--frames", "2", "--size", "48", "--quiet",
                 "--backend", "haar"]) == 0
    out = capsys.readouterr().out
    assert "1 ok" in out and "skipped corrupt.mp4: unreadable" in out and "frames/s" in out
    assert read_extraction(tmp_path / "out")["settings"]["backend"] == "haar"
    (tmp_path / "empty").mkdir()
    assert main(["extract-faces", str(tmp_path / "empty"), str(tmp_path / "o2"), "--quiet"]) == 1
    assert main(["extract-faces", str(src / "corrupt.mp4"), str(tmp_path / "o3"), "--quiet"]) == 1
    assert main(["extract-faces", str(tmp_path / "nowhere"), str(tmp_path / "o4")]) == 2   # usage error: a status, in-process too
    assert "no video or folder" in capsys.readouterr().err
    assert main(["extract-faces", str(src), str(tmp_path / "o5"), "--frames", "3", "--stride", "2"]) == 2
