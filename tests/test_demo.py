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
    for text in ("[1/6] data", "[2/6] training", "[6/6] writing the report", "elapsed", "congress false-alarm rate", "done in"):
        assert text in printed, text
    names = {p.name for p in out.iterdir()}
    assert {"metrics.json", "roc.png", "gradcam.png", "robustness.md", "robustness.png", "model_card.md",
            "checkpoint", "scores.csv"} <= names
    assert (out / "checkpoint" / "model.safetensors").is_file() and (out / "checkpoint" / "checkpoint.json").is_file()
    m = json.loads((out / "metrics.json").read_text())
    for key in ("test", "test_per_method", "congress", "congress_false_alarm_rate", "robustness", "settings",
                "selection", "training", "provenance", "total_minutes"):
        assert key in m, key
    for key in ("auc", "eer", "acc", "false_alarm"): assert key in m["test"], key
    assert set(m["test_per_method"]) == {"self_blend", "face_swap"}
    assert m["congress"]["n"] == 100 and m["congress"]["n_fake"] == 0 and 0 <= m["congress_false_alarm_rate"] <= 1
    assert m["training"]["steps"] == 2 and m["training"]["best_step"] in (1, 2)
    assert "best validation auc" in m["selection"] and "'val'" in m["selection"]
    prov = m["provenance"]
    assert prov["checkpoint"].endswith("checkpoint") and len(prov["checkpoint_sha256"]) == 64
    assert prov["data"]["index"].endswith("manifest.csv") and len(prov["data"]["index_sha256"]) == 64
    from sksha.robustness import PERTURBATIONS
    assert set(m["robustness"]) == {"clean", *PERTURBATIONS} and set(m["robustness"]["jpeg"]) == {"2"}
    card = (out / "model_card.md").read_text()
    for text in ("Model card", "What it was trained on", "How it was selected", "Must NOT be used for", "forensic",
                 "Domain-shift warning", "congress", "Intended use", "Teaching"):
        assert text in card, text
    # the report's checkpoint loads like any other
    from sksha.evaluate import load_detector
    model, meta, _ = load_detector(out / "checkpoint")
    assert model.config.image_size == 64 and meta["step"] == m["training"]["best_step"]
    # a second run into the same folder is refused, with the way out named
    assert demo_main(["--profile", "ci", "--steps", "1", "--out", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err


@pytest.mark.parametrize("args, message", [
    (["--minutes", "0"], "--minutes"),
    (["--minutes", "-2"], "--minutes"),
    (["--steps", "0"], "--steps"),
    (["--batch-size", "7"], "even"),
    (["--robustness-levels", "2,9"], "1-5"),
    (["--robustness-levels", "two"], "--robustness-levels"),
    (["--device", "tpu"], "--device"),
    (["--gradcam", "-1"], "--gradcam"),
])
def test_demo_bad_arguments(args, message, tmp_path, capsys):
    assert demo_main(args + ["--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sksha demo: error:") and message in err, err
    assert not (tmp_path / "r").exists()          # nothing was written


def test_demo_refuses_a_folder_that_is_not_a_report(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert demo_main(["--profile", "ci", "--steps", "1", "--overwrite", "--out", str(tmp_path)]) == 2
    assert "does not look like a demo report" in capsys.readouterr().err and (tmp_path / "mine.txt").is_file()


def test_unknown_profile_and_settings():
    with pytest.raises(SystemExit): demo_main(["--profile", "laptop"])
    with pytest.raises(ValueError, match="use one of"): demo_settings("laptop")
    assert set(DEMO_PROFILES) == {"cpu-demo", "ci", "paper"}
    assert demo_settings()["image_size"] in range(96, 129)    # ARCHITECTURE §7: cpu-demo uses 96-128 px
    assert plan_steps(6, 2.0, 96, 16) < plan_steps(6, 1.0, 96, 16)
