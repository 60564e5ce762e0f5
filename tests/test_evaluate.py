"""Evaluation protocols, robustness perturbations and explanations: tables from known scores, bad inputs, and one
end-to-end `sksha ablation` + `sksha evaluate` run at the `ci` profile (one training step per variant)."""
import json
import warnings

import numpy as np
import pytest
import torch

from sksha.cli import main
from sksha.evaluate import (Predictions, ablation_table, cross_dataset, cross_dataset_table, cross_manipulation,
                            cross_manipulation_table, evaluate_checkpoints, format_value, intra_dataset,
                            intra_dataset_table, summarize)


def known(auc_by_method, n=10):
    "n reals scored 0..n-1 and, per method, n fakes that beat exactly auc * n^2 (fake, real) pairs."
    labels, probs, methods = [0.0] * n, list(range(n)), ["real"] * n
    for m, auc in auc_by_method.items():
        wins = int(round(auc * n * n))
        labels += [1.0] * n; methods += [m] * n
        probs += [min(n, max(0, wins - i * n)) - 0.5 for i in range(n)]
    probs = (np.array(probs) + 1) / (n + 2)
    return Predictions(labels, probs, methods, [f"{m}/{i}" for i, m in enumerate(methods)])


# ---- protocols on score arrays with known AUCs ----

def test_cross_manipulation_grid_and_cross_avg():
    truth = {"A": {"A": 0.9, "B": 0.7, "C": 0.5}, "B": {"A": 0.6, "B": 1.0, "C": 0.8}}
    grid = cross_manipulation({t: known(r) for t, r in truth.items()})
    for t, row in truth.items():
        for m, v in row.items(): assert grid[t][m] == pytest.approx(v)
    assert grid["A"]["cross_avg"] == pytest.approx(0.6)   # (0.7 + 0.5) / 2, diagonal excluded
    assert grid["B"]["cross_avg"] == pytest.approx(0.7)
    table = cross_manipulation_table(grid).splitlines()
    assert "Cross Avg." in table[0]
    assert [c.strip() for c in table[2].split("|")[1:-1]] == ["train A", "90.0", "70.0", "50.0", "60.0"]


def test_intra_and_cross_dataset_tables():
    res = intra_dataset({"test": known({"x": 0.8})}, n_boot=0)
    assert res["test"]["auc"]["value"] == pytest.approx(0.8)
    assert "| test " in intra_dataset_table(res) and "80.0" in intra_dataset_table(res)
    t2 = cross_dataset({"D1": known({"x": 0.75}), "D2": known({"x": 1.0})}, n_boot=0)
    text = cross_dataset_table(t2)
    assert "75.0" in text and "100.0" in text and "EER (%)" in text
    assert t2["D2"]["eer"]["value"] == pytest.approx(0.0)


def test_video_level_and_ci():
    p = known({"x": 0.8})
    frame = summarize(p, n_boot=200)
    assert frame["auc"]["low"] <= 0.8 <= frame["auc"]["high"]
    video = summarize(Predictions(p.labels, p.probs, p.methods, [v[:-1] for v in p.videos]), level="video", n_boot=0)
    assert video["n"] < len(p)
    assert format_value({"value": 0.5, "low": 0.4, "high": 0.6}) == "50.0 [40.0, 60.0]"


def test_bad_inputs():
    p = known({"x": 0.8})
    with pytest.raises(ValueError, match="methods present"): p.for_method("y")
    with pytest.raises(ValueError, match="level must be"): summarize(p, level="clip")
    with pytest.raises(ValueError, match="same length|differ in length"): Predictions([0, 1], [0.5])
    with pytest.raises(ValueError, match="protocol must be one of"): evaluate_checkpoints(["x"], protocol="loo")
    with pytest.raises(ValueError, match="NAME=PATH"): evaluate_checkpoints(["runs/a"], protocol="cross-manipulation")
    with pytest.raises(ValueError, match="needs test sets"): evaluate_checkpoints(["runs/a"], protocol="cross-dataset")


def test_cli_errors(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "missing")]) == 2          # a wrong argument: exit 2
    assert "no checkpoint found" in capsys.readouterr().err
    assert main(["ablation", "--variants", "sksha,halo", "--out", str(tmp_path)]) == 2
    assert "unknown variant" in capsys.readouterr().err


# ---- end to end at the ci profile: train two variants for one step, test them, evaluate a checkpoint ----

TINY_RUN = ["--set", "train.steps=1", "--set", "train.val_every=1", "--set", "train.ckpt_every=1",
            "--set", "train.batch_size=4", "--set", "data.train_size=4", "--set", "data.val_size=8",
            "--set", "train.progress=false", "--set", "train.live_plot=false"]


def test_ablation_and_evaluate_end_to_end(tmp_path, capsys):
    out = tmp_path / "abl"
    assert main(["ablation", "ci", *TINY_RUN, "--variants", "baseline,sksha", "--out", str(out),
                 "--n-boot", "20", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "| baseline |" in printed and "| sksha    |" in printed
    saved = json.loads((out / "ablation.json").read_text())
    assert set(saved["results"]) == {"baseline", "sksha"}
    assert saved["results"]["sksha"]["sks"] and saved["results"]["sksha"]["ha"]
    assert "best validation auc" in saved["provenance"]["selection_rule"]["sksha"]
    assert len(saved["provenance"]["checkpoints"]["baseline"]["sha256"]) == 64

    assert main(["evaluate", str(out / "sksha"), "--level", "both", "--n-boot", "20", "--device", "cpu"]) == 0
    result = json.loads((out / "sksha" / "evaluation_intra_test.json").read_text())
    assert set(result["results"]) == {"frame", "video"}
    assert result["provenance"]["checkpoints"]["model"]["variant"] == "sksha"
    assert 0 <= result["results"]["frame"]["all"]["auc"]["value"] <= 1

    grid_file = tmp_path / "grid.json"
    assert main(["evaluate", "--protocol", "cross-manipulation", f"a={out / 'baseline'}", f"b={out / 'sksha'}",
                 "--out", str(grid_file), "--device", "cpu"]) == 0
    grid = json.loads(grid_file.read_text())["results"]["frame"]
    assert set(grid) == {"a", "b"} and "cross_avg" in grid["a"]


# ---- robustness: every perturbation, every level ----

def test_every_perturbation_every_level():
    from sksha.core import load_image
    from sksha.datasets import load_manifest
    from sksha.robustness import PERTURBATIONS, perturb
    face = load_image(next(r for r in load_manifest("test") if r["method"] == "real")["path"])
    for name in PERTURBATIONS:
        prev = 0.0
        for s in range(6):
            out = perturb(face, name, s)
            assert out.shape == face.shape and out.dtype == np.uint8
            assert np.array_equal(out, perturb(face, name, s)), f"{name} level {s} is not deterministic"
            diff = np.abs(out.astype(float) - face).mean()
            assert diff >= prev, f"{name}: level {s} changes the face less than level {s - 1}"
            prev = diff
    with pytest.raises(ValueError, match="unknown perturbation"): perturb(face, "noise", 1)
    with pytest.raises(ValueError, match="severity must be an integer 0-5"): perturb(face, "jpeg", 7)
    with pytest.raises(ValueError, match="dtype uint8"): perturb(face.astype(np.float32), "jpeg", 1)


def test_robustness_auc_with_a_callable():
    from sksha.robustness import robustness_auc
    rng = np.random.default_rng(0)
    items = [{"image": rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), "label": i % 2} for i in range(8)]
    brightness = lambda x: (x.mean((1, 2, 3)) + 1) / 2       # P(fake) = mean brightness
    res = robustness_auc(brightness, items, perturbations=["contrast"], severities=(1, 5), image_size=32)
    assert set(res) == {"clean", "contrast"} and set(res["contrast"]) == {1, 5}
    with pytest.raises(ValueError, match="image_size is needed"): robustness_auc(brightness, items)
    with pytest.raises(ValueError, match="both classes"):
        robustness_auc(brightness, [dict(it, label=0) for it in items], image_size=32)


# ---- explanations ----

def test_grad_cam_errors_and_masks():
    from torch import nn
    from sksha.explain import grad_cam, pointing_game, top_k_iou
    net = nn.Sequential(nn.Conv2d(3, 2, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2, 3))
    x = torch.randn(1, 3, 8, 8)
    with pytest.raises(ValueError, match="which score to explain"): grad_cam(net, x, net[0])
    cam = grad_cam(net, x, net[0], target=lambda out: out[:, 2])
    assert cam.shape == (1, 8, 8) and float(cam.max()) <= 1
    with pytest.raises(ValueError, match="method must be"): grad_cam(net, x, net[0], method="scorecam")
    mask = np.zeros((8, 8)); mask[:4] = 1
    heat = np.zeros((8, 8)); heat[1, 1] = 1
    assert pointing_game(heat, mask) and top_k_iou(mask, mask, k=0.5) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="mask is empty"): pointing_game(heat, np.zeros((8, 8)))
    with pytest.raises(ValueError, match="k is a fraction"): top_k_iou(heat, mask, k=20)


def test_checkpoint_loads_where_its_imagenet_weights_file_is_missing(tmp_path, ci_model_and_config):
    "A run trained from ImageNet weights must load on a machine without that file: the checkpoint replaces them."
    import copy
    from sksha.evaluate import load_detector
    from sksha.train import save_checkpoint
    model, cfg = ci_model_and_config
    cfg = copy.deepcopy(cfg)
    cfg["model"]["weights"] = str(tmp_path / "legacy_xception_imagenet.safetensors")  # trained elsewhere, not here
    folder = save_checkpoint(tmp_path / "step_000001", model, {"config": cfg, "step": 1})
    loaded, meta, _ = load_detector(folder)
    assert meta["config"]["model"]["weights"].endswith("imagenet.safetensors")
    for (k, a), b in zip(model.state_dict().items(), loaded.state_dict().values()):
        assert torch.equal(a, b), k


def test_checkpoint_rebuilds_the_network_it_was_trained_as(tmp_path, monkeypatch):
    "The checkpoint records the built ModelConfig: a profile that changes later (here: ci made half width) still loads."
    import sksha.model
    from sksha.evaluate import load_detector
    from sksha.train import Trainer, load_config
    cfg = load_config("ci", {"data.kind": "random", "data.train_size": 8, "data.val_size": 8, "train.steps": 1,
                             "train.batch_size": 4, "train.val_every": 1, "train.ckpt_every": 1, "train.device": "cpu",
                             "train.out_dir": str(tmp_path / "run"), "train.progress": False, "train.live_plot": False,
                             "train.tensorboard": False})
    monkeypatch.setitem(sksha.model.PROFILES, "ci", dict(image_size=64, width=0.5, ha_heads=4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = Trainer(cfg).fit()
    monkeypatch.setitem(sksha.model.PROFILES, "ci", dict(image_size=64))     # the profile as shipped: full width
    model, meta, _ = load_detector(result.out_dir, "last")
    assert meta["model_config"]["width"] == 0.5 and model.config.width == 0.5 and model.encoder.f_ec_channels == 364
