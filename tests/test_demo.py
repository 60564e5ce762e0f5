"""`sksha demo` end to end at the ci profile (64 px, 2 steps, seconds of training): every report artefact, the
metrics JSON keys, the model card's text, and clear errors for bad arguments."""
import json

import pytest

from sksha.cli import main
from sksha.demo import DEMO_PROFILES, demo_main, demo_settings, plan_steps


def test_demo_ci_end_to_end(tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["demo", "--profile", "ci", "--steps", "2", "--minutes", "5", "--gradcam", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    for text in ("[1/6] data", "[2/6] training", "[6/6] writing the report", "elapsed", "operating threshold",
                 "held-out congress reals called fake", "done in"):
        assert text in printed, text
    names = {p.name for p in out.iterdir()}
    assert {"metrics.json", "roc.png", "gradcam.png", "robustness.md", "robustness.png", "model_card.md",
            "checkpoint", "scores.csv"} <= names
    assert (out / "checkpoint" / "model.safetensors").is_file() and (out / "checkpoint" / "checkpoint.json").is_file()
    m = json.loads((out / "metrics.json").read_text())
    for key in ("test", "test_per_method", "congress", "congress_false_alarm_rate", "threshold", "robustness", "settings",
                "selection", "training", "provenance", "total_minutes"):
        assert key in m, key
    for key in ("auc", "eer", "acc", "false_alarm"): assert key in m["test"], key
    assert set(m["test_per_method"]) == {"self_blend", "face_swap"}
    c = m["congress"]      # the held-out group: its 100 reals and in-memory self-blends of them
    assert (c["n_real"], c["n_fake"]) == (100, 100) and 0 <= c["false_alarm"] <= 1 and 0 <= c["auc"] <= 1
    assert m["congress_false_alarm_rate"] == c["false_alarm"]
    # the operating threshold: chosen on the validation reals (London val + congress_val), stored in the checkpoint
    th = m["threshold"]
    assert th["n_reals"] == 32 + 100 and th["false_alarm"] <= th["target_false_alarm"] == 0.05 and 0 < th["value"] < 1
    stored = json.loads((out / "checkpoint" / "checkpoint.json").read_text())["threshold"]
    assert stored == th
    import numpy as np
    rows = [line.split(",") for line in (out / "scores.csv").read_text().splitlines()[1:]]
    val_reals = np.array([float(r[4]) for r in rows if r[0] == "val" and r[3] == "0"])
    assert len(val_reals) == 132 and (val_reals >= th["value"]).mean() == th["false_alarm"]   # recomputed from the scores
    held = np.array([float(r[4]) for r in rows if r[0] == "congress" and r[3] == "0"])
    assert (held >= th["value"]).mean() == c["false_alarm"] and (held >= 0.5).mean() == c["false_alarm_at_0.5"]
    from sksha.predict import Predictor
    pred = Predictor.from_checkpoint(out / "checkpoint", device="cpu", detect=False)
    assert pred.threshold == th["value"] and "stored in the checkpoint" in pred.threshold_source
    assert Predictor.from_checkpoint(out / "checkpoint", device="cpu", threshold=0.7).threshold == 0.7
    assert m["training"]["steps"] == 2 and m["training"]["best_step"] in (1, 2)
    # the selection rule names the split the checkpoint was really chosen on: both domains' validation faces
    assert "best validation auc" in m["selection"] and "'val + congress_val'" in m["selection"]
    # the recipe's constants that no setting names (learning rate, degradations) are recorded with the run
    from sksha.demo import recipe_constants
    assert m["recipe_constants"] == recipe_constants(True) and "degrade_p" in m["recipe_constants"]
    prov = m["provenance"]
    assert prov["checkpoint"].endswith("checkpoint") and len(prov["checkpoint_sha256"]) == 64
    assert prov["data"]["index"].endswith("manifest.csv") and len(prov["data"]["index_sha256"]) == 64
    from sksha.robustness import PERTURBATIONS
    assert set(m["robustness"]) == {"clean", *PERTURBATIONS} and set(m["robustness"]["jpeg"]) == {"2"}
    card = (out / "model_card.md").read_text()
    for text in ("Model card", "What it was trained on", "How it was selected", "Must NOT be used for", "forensic",
                 "Domain-shift warning", "congress", "Intended use", "Teaching", "Operating threshold",
                 f"{th['value']:.4f}", "in memory only", "degraded alike"):
        assert text in card, text
    # the report's checkpoint loads like any other
    from sksha.evaluate import load_detector
    model, meta, _ = load_detector(out / "checkpoint")
    assert model.config.image_size == 64 and meta["step"] == m["training"]["best_step"]
    # robustness as 14_robustness measures it: the stored test images (160 px) perturbed, then resized to 64 px
    # (not the already resized input, as the demo once did)
    import numpy as np
    from sksha.datasets import load_manifest
    from sksha.demo import ROBUSTNESS_PROTOCOL
    from sksha.robustness import robustness_auc
    assert m["robustness_protocol"] == ROBUSTNESS_PROTOCOL and ROBUSTNESS_PROTOCOL in card
    rows = load_manifest("test")
    pick = np.unique(np.linspace(0, len(rows) - 1, 24).round().astype(int))      # the ci recipe's 24 faces
    again = robustness_auc(model, [rows[int(i)] for i in pick], severities=(2,))
    assert {k: (v if k == "clean" else {str(l): a for l, a in v.items()}) for k, v in again.items()} == m["robustness"]
    # a second run into the same folder is refused, with the way out named
    assert demo_main(["--profile", "ci", "--steps", "1", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    # a report written before the rule is measured again from its checkpoint, its files rewritten
    from sksha.demo import refresh_robustness
    old = {**m, "robustness": {"clean": 0.5, "blur": {"2": 0.5}}}
    del old["robustness_protocol"]
    (out / "metrics.json").write_text(json.dumps(old))
    (out / "robustness.md").write_text("old table")
    fresh = refresh_robustness(out)
    assert fresh["robustness"] == m["robustness"] and fresh["robustness_protocol"] == ROBUSTNESS_PROTOCOL
    assert json.loads((out / "metrics.json").read_text()) == fresh and ROBUSTNESS_PROTOCOL in (out / "robustness.md").read_text()
    assert ROBUSTNESS_PROTOCOL in (out / "model_card.md").read_text()
    assert refresh_robustness(out) == fresh                                     # measured once, then left alone


@pytest.mark.parametrize("args, message", [
    (["--minutes", "0"], "--minutes"),
    (["--minutes", "-2"], "--minutes"),
    (["--steps", "0"], "--steps"),
    (["--batch-size", "7"], "even"),
    (["--robustness-levels", "2,9"], "1-5"),
    (["--robustness-levels", "two"], "--robustness-levels"),
    (["--device", "tpu"], "--device"),
    (["--gradcam", "-1"], "--gradcam"),
    (["--data", "congress"], "--data"),
    (["--false-alarm", "1.5"], "--false-alarm"),
    (["--weights", "imagenet"], "full-width"),          # the cpu-demo network is half width: no ImageNet weights
])
def test_demo_bad_arguments(args, message, tmp_path, capsys):
    assert demo_main(args + ["--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("sksha demo: error:") and message in err, err
    assert not (tmp_path / "r").exists()          # nothing was written


def test_demo_refuses_a_folder_that_is_not_a_report(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert demo_main(["--profile", "ci", "--steps", "1", "--overwrite", "--out", str(tmp_path)]) == 2
    assert "does not look like a demo report" in capsys.readouterr().err and (tmp_path / "mine.txt").is_file()


def test_unknown_profile_and_settings():
    assert demo_main(["--profile", "laptop"]) == 2
    with pytest.raises(ValueError, match="use one of"): demo_settings("laptop")
    assert set(DEMO_PROFILES) == {"cpu-demo", "gpu", "ci", "paper"}
    assert demo_settings()["image_size"] in range(96, 129)    # ARCHITECTURE §7: cpu-demo uses 96-128 px
    assert plan_steps(6, 2.0, 96, 16) < plan_steps(6, 1.0, 96, 16)


def test_fit_to_budget_ends_near_the_budget(tmp_path):
    "The schedule follows the clock: a run planned from a wrong first timing still ends near its budget."
    import time
    from sksha.demo import run_demo
    import sksha.demo as demo
    real = demo.time_steps
    demo.time_steps = lambda *a, **k: 10 * real(*a, **k)       # a busy moment at the start: 10x too slow a first plan
    try:
        t0 = time.perf_counter()
        m = run_demo(tmp_path / "r", profile="ci", minutes=0.6, robustness_levels=(), gradcam=0, quiet=True)
    finally: demo.time_steps = real
    tr = m["training"]
    assert tr["steps"] > 2 * tr["first_plan_steps"], tr          # it re-planned from the measured pace
    assert 0.75 * 0.6 <= tr["minutes"] <= 0.6 + 0.25, tr           # and used its budget (not a third of it)


def test_gpu_recipe_runs_on_cpu_for_a_few_steps(tmp_path, monkeypatch):
    "The gpu recipe (paper network, full width, 299 px) end to end for 1 step on a small subset, on the CPU."
    import sksha.demo as demo
    from torch.utils.data import Subset
    real = demo.demo_data
    def small(*a, **k):                      # a dozen faces per evaluation split: the recipe is what is tested
        d = real(*a, **k)
        for key in ("val", "test", "congress"):
            step = max(len(d[key]) // 6, 2)
            d[key] = Subset(d[key], sorted({*range(0, len(d[key]), step), *range(1, len(d[key]), step)})[:12])
        return d
    monkeypatch.setattr(demo, "demo_data", small)
    m = demo.run_demo(tmp_path / "g", profile="gpu", device="cpu", steps=1, batch_size=2, robustness_levels=(),
                      gradcam=0, quiet=True)
    assert (m["settings"]["profile"], m["settings"]["model"], m["settings"]["image_size"]) == ("gpu", "paper", 299)
    assert m["model"]["width"] == 1 and m["model"]["parameters"] > 20_000_000 and m["training"]["steps"] == 1


def test_recipe_runs_measure_an_old_report_again(tmp_path):
    "Notebook 18 reloads stored runs; one measured before ROBUSTNESS_PROTOCOL is measured again, one of another recipe refused."
    from sksha.demo import ROBUSTNESS_PROTOCOL
    from sksha.domain import recipe_runs, run_folder
    kw = dict(seeds=(0,), profile="ci", minutes=1.0, recipes=["London only"], steps=2, robustness_levels=(2,), gradcam=0)
    first = recipe_runs(tmp_path, **kw)["London only"][0]
    assert first["robustness_protocol"] == ROBUSTNESS_PROTOCOL
    assert first["recipe_constants"]["lr"] > 0 and "degrade_p" not in first["recipe_constants"]   # no degradations used
    stored = run_folder(tmp_path, "London only", 0) / "metrics.json"
    old = json.loads(stored.read_text())
    del old["robustness_protocol"]
    old["robustness"]["blur"]["2"] = 0.123                       # a number of the old kind
    stored.write_text(json.dumps(old))
    again = recipe_runs(tmp_path, **kw)["London only"][0]
    assert again["robustness_protocol"] == ROBUSTNESS_PROTOCOL and again["robustness"] == first["robustness"]
    # a run trained with other recipe constants (here: another learning rate) is refused, not mixed into the table
    other = json.loads(stored.read_text())
    other["recipe_constants"]["lr"] *= 2
    stored.write_text(json.dumps(other))
    with pytest.raises(ValueError, match="other recipe constants"): recipe_runs(tmp_path, **kw)


def test_fixed_steps_run_exactly_unless_a_budget_is_given(tmp_path, monkeypatch):
    "`--steps N` alone runs N steps however slow the machine (the recipe's budget does not cut it); with --minutes it caps."
    from sksha import demo
    monkeypatch.setitem(demo.DEMO_PROFILES["ci"], "minutes", 1e-4)      # a recipe budget of 6 ms: far too short
    kw = dict(profile="ci", steps=3, robustness_levels=(), gradcam=0, quiet=True)
    exact = demo.run_demo(tmp_path / "exact", **kw)["training"]
    assert exact["steps"] == 3 and not exact["stopped_by_time"]
    capped = demo.run_demo(tmp_path / "capped", minutes=1e-4, **kw)["training"]
    assert capped["stopped_by_time"] and capped["steps"] < 3
