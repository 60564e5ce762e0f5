"""`sksha predict` end to end on a small `ci` checkpoint saved in the trainer's format: images, a folder, the sample
video, and every kind of bad input (corrupt file, non-image, image without a face, empty folder, video without
frames, missing path), each reported with its reason; exit status, CSV and JSON with one row per input item; and
the function behind the notebook's demo widget (crop, P(fake), Grad-CAM)."""
import csv
import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from sksha.cli import main
from sksha.core import load_image
from sksha.datasets import FaceDataset, load_manifest, resize_square
from sksha.faces import sample_video
from sksha.predict import (NO_CHECKPOINT, STATUSES, Predictor, decode_upload, explain_face, predict_main,
                           predict_paths, show_explanation)
from sksha.train import save_checkpoint


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, ci_model_and_config) -> Path:
    "A freshly built ci model (64 px) saved with the trainer's save function: weights as safetensors + JSON."
    model, cfg = ci_model_and_config
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "step_000000", model, {"config": cfg, "step": 1})


@pytest.fixture(scope="module")
def predictor(checkpoint) -> Predictor:
    return Predictor.from_checkpoint(checkpoint, device="cpu", frames=3)


@pytest.fixture(scope="module")
def test_rows() -> list:
    return load_manifest("test")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, test_rows) -> dict:
    "A folder of good and bad images, a folder of videos, an empty folder, and loose bad files."
    d = tmp_path_factory.mktemp("inputs")
    (d / "photos" / "sub").mkdir(parents=True)
    shutil.copy(test_rows[0]["path"], d / "photos" / "real.jpg")
    shutil.copy(next(r for r in test_rows if r["label"] == 1)["path"], d / "photos" / "sub" / "fake.jpg")
    cv2.imwrite(str(d / "photos" / "grey.png"), np.full((200, 260, 3), 128, np.uint8))   # no face in it
    (d / "photos" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not really a JPEG" * 10)
    (d / "videos").mkdir()
    shutil.copy(sample_video(), d / "videos" / "zoom.mp4")
    cv2.VideoWriter(str(d / "videos" / "empty.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 15, (64, 64)).release()
    (d / "videos" / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 and then nothing" * 20)
    (d / "empty").mkdir()
    (d / "notes.txt").write_text("not an image")
    return dict(root=d, photos=d / "photos", videos=d / "videos", empty=d / "empty", text=d / "notes.txt",
                missing=d / "missing.jpg")


def test_every_input_gets_a_row_with_a_reason(predictor, inputs):
    items = predict_paths(predictor, [inputs["photos"], inputs["videos"], inputs["empty"], inputs["text"],
                                      inputs["missing"]])
    got = {Path(i.path).relative_to(inputs["root"]).as_posix(): i for i in items}
    assert {k: i.status for k, i in got.items()} == {
        "photos/corrupt.jpg": "unreadable", "photos/grey.png": "no_face", "photos/real.jpg": "ok",
        "photos/sub/fake.jpg": "ok", "videos/broken.mp4": "unreadable", "videos/empty.avi": "no_frames",
        "videos/zoom.mp4": "ok", "empty": "empty_folder", "notes.txt": "unreadable", "missing.jpg": "not_found"}
    for i in items:
        assert i.status in STATUSES
        if i.ok: assert 0 <= i.p_fake <= 1 and i.verdict in ("real", "fake") and i.frames_used >= 1
        else: assert i.p_fake is None and i.verdict == "" and i.message, i   # a reason, never a score
    assert "corrupt.jpg" in got["photos/corrupt.jpg"].message and "no face" in got["photos/grey.png"].message
    video = got["videos/zoom.mp4"]
    assert video.frames_read == 3 and video.frames_used == 3 == len(video.frame_scores)   # --frames 3
    assert video.p_fake == pytest.approx(np.mean(video.frame_scores))                  # mean P(fake) over frames


def test_cli_exit_status_csv_and_json(checkpoint, inputs, tmp_path, capsys):
    args = [str(inputs["photos"]), str(inputs["videos"]), str(inputs["empty"]), str(inputs["missing"]),
            "--checkpoint", str(checkpoint), "--device", "cpu", "--frames", "2", "--quiet",
            "--csv", str(tmp_path / "out.csv"), "--json", str(tmp_path / "out.json"), "--allow-untrained"]
    assert main(["predict", *args]) == 1                        # something failed; the rest was scored
    out = capsys.readouterr().out
    assert "| path" in out and "no_face" in out and "9 items: 3 scored" in out
    rows = list(csv.DictReader(open(tmp_path / "out.csv")))
    assert len(rows) == 9 and sum(r["status"] == "ok" for r in rows) == 3
    assert all(r["message"] for r in rows if r["status"] != "ok")
    saved = json.loads((tmp_path / "out.json").read_text())
    assert len(saved["results"]["items"]) == 9 and saved["results"]["summary"]["failed"] == 6
    prov = saved["provenance"]
    assert prov["protocol"] == "predict" and prov["checkpoint"]["path"].endswith("model.safetensors")
    assert prov["face_settings"]["margin"] == 1.3 and prov["face_settings"]["size"] == 64
    assert prov["face_settings_source"].startswith("not recorded") and prov["detect"] is True


def test_cli_all_good_is_exit_0(checkpoint, inputs, capsys):
    assert predict_main([str(inputs["photos"] / "real.jpg"), str(inputs["videos"] / "zoom.mp4"), "--checkpoint",
                         str(checkpoint), "--device", "cpu", "--frames", "2", "--quiet", "--detector", "haar",
                         "--allow-untrained"]) == 0
    assert "2 items: 2 scored" in capsys.readouterr().out


def test_no_checkpoint_is_a_usage_error_that_says_how_to_get_one(inputs, capsys):
    assert main(["predict", str(inputs["photos"])]) == 2
    err = capsys.readouterr().err
    assert "sksha train cpu-demo" in err and "sksha demo" in err and "--checkpoint" in err
    with pytest.raises(ValueError, match="sksha train"): Predictor.from_checkpoint(None)
    assert "random" in NO_CHECKPOINT


def test_bad_checkpoint_and_options_are_usage_errors(inputs, checkpoint, tmp_path, capsys):
    assert predict_main([str(inputs["photos"]), "--checkpoint", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "not_a_run").mkdir()
    assert predict_main([str(inputs["photos"]), "--checkpoint", str(tmp_path / "not_a_run")]) == 2
    assert "no checkpoint found" in capsys.readouterr().err
    assert predict_main([str(inputs["photos"]), "--checkpoint", str(checkpoint), "--frames", "0"]) == 2
    assert predict_main([str(inputs["photos"]), "--checkpoint", str(checkpoint), "--detector", "magic"]) == 2
    assert predict_main([]) == 2                                 # no PATH
    if not torch.cuda.is_available():
        capsys.readouterr()
        assert predict_main([str(inputs["photos"]), "--checkpoint", str(checkpoint), "--device", "cuda"]) == 2
        assert "CUDA is not available" in capsys.readouterr().err


def test_crops_mode_scores_exactly_as_evaluate(predictor, test_rows):
    "`--crops`: a data_samples image is a training crop already; P(fake) equals sksha.evaluate.predict's."
    from sksha.evaluate import predict
    rows = test_rows[:4]
    crops = Predictor(predictor.model, predictor.settings, "cpu", detect=False)
    ours = [predict_paths(crops, [r["path"]])[0].p_fake for r in rows]
    theirs = predict(predictor.model, FaceDataset(rows, image_size=64)).probs
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_function_behind_the_demo_widget(predictor, test_rows):
    row = next(r for r in test_rows if r["label"] == 1)
    name, image = decode_upload(({"name": "upload.jpg", "content": memoryview(Path(row["path"]).read_bytes())},))
    assert name == "upload.jpg" and image.shape == load_image(row["path"]).shape
    e = explain_face(predictor, image, name, detect=False)              # a sample from the dropdown: a crop
    assert e.crop.shape == (64, 64, 3) and e.cam.shape == (64, 64) and e.overlay.shape == (64, 64, 3)
    assert 0 <= e.cam.min() and e.cam.max() <= 1 and 0 <= e.result.p_fake <= 1
    assert e.result.p_fake == pytest.approx(float(predictor.probabilities([resize_square(image, 64)])[0]), abs=1e-5)
    frame = cv2.cvtColor(cv2.VideoCapture(str(sample_video())).read()[1], cv2.COLOR_BGR2RGB)
    found = explain_face(predictor, frame, "frame")                     # an upload of a whole scene: detect first
    assert found.face is not None and found.cam is not None
    nothing = explain_face(predictor, np.full((120, 120, 3), 128, np.uint8), "grey")
    assert nothing.result.status == "no_face" and nothing.cam is None
    import matplotlib.pyplot as plt
    for x in (e, nothing): plt.close(show_explanation(x))
    with pytest.raises(ValueError, match="not an image"): decode_upload(({"name": "a.txt", "content": b"hello"},))
    with pytest.raises(ValueError, match="no file"): decode_upload(())


def test_crop_settings_follow_the_training_data(checkpoint, tmp_path):
    "A checkpoint trained on an index whose provenance JSON records the crops: same detector and margin at prediction."
    ckpt = tmp_path / "ckpt"
    shutil.copytree(checkpoint, ckpt)
    meta = json.loads((ckpt / "checkpoint.json").read_text())
    meta["data"] = {"kind": "index", "index": str(tmp_path / "faces.csv")}
    (ckpt / "checkpoint.json").write_text(json.dumps(meta))
    (tmp_path / "faces.json").write_text(json.dumps({"detector": "haar", "crop_margin": 1.6, "face_rule": "confident"}))
    s = Predictor.from_checkpoint(ckpt, device="cpu").settings
    assert (s.backend, s.margin, s.rule, s.size, s.num_frames) == ("haar", 1.6, "confident", 64, 32)
    assert Predictor.from_checkpoint(ckpt, device="cpu", detector="retinaface").settings.backend == "retinaface"
