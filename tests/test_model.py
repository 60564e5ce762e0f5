"""The network (sksha.encoder, sksha.recce, sksha.model): parameter counts, shapes at 299/128/64 for every variant,
backward, determinism, official RECCE checkpoints, weight files, and the `sksha bench` command."""
import contextlib
import hashlib
import io
import warnings

import pytest
import torch

import sksha.core
from sksha.cli import main
from sksha.encoder import XceptionEncoder
from sksha.model import (VARIANTS, ModelConfig, SKSHANet, build_model, count_parameters, load_recce_checkpoint,
                         to_recce_state_dict)

pytestmark = pytest.mark.filterwarnings("ignore:XceptionEncoder. no ImageNet weights")  # random init is expected here

PARAMS = {"baseline": 23_781_509, "sks": 23_816_267, "ha": 25_376_375, "sksha": 25_411_133}

@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)

@pytest.mark.parametrize("variant", list(VARIANTS))
def test_parameter_counts(variant):
    counts = count_parameters(build_model("ci", variant))
    assert counts["total"] == PARAMS[variant]
    assert (counts["decoder"], counts["rga"], counts["mgr"], counts["classifier"]) == (496_856, 531_524, 1_944_128, 2_049)
    assert counts["encoder"] == 20_806_952
    assert counts["sks"] == (34_758 if "sks" in variant else 0)
    assert counts["halo"] == (1_594_866 if variant in ("ha", "sksha") else 0)

@pytest.mark.parametrize("variant", list(VARIANTS))
def test_output_shapes_every_size(variant):
    torch.manual_seed(0)
    model = build_model("ci", variant).eval()
    for S, s in ((299, 19), (128, 8), (64, 4)):
        with torch.no_grad(): out = model(torch.rand(1, 3, S, S) * 2 - 1)
        assert out.logit.shape == (1,)
        assert out.reconstruction.shape == (1, 3, S, S)
        assert [tuple(f.shape) for f in out.features] == [(1, 728, s, s), (1, 256, 2 * s, 2 * s), (1, 128, 4 * s, 4 * s)]

HALF_WIDTH_PARAMS = 6_431_957   # SKSHA-Net at the cpu-demo profile's width 0.5

@pytest.mark.parametrize("variant", list(VARIANTS))
def test_half_width_cpu_demo_network(variant):
    "cpu-demo is the same network at width 0.5: every channel count halved, every resolution kept, 91 dims per head."
    torch.manual_seed(0)
    model = build_model("cpu-demo", variant).train()
    assert (model.config.width, model.config.ha_heads, model.config.image_size) == (0.5, 4, 128)
    counts = count_parameters(model)
    assert 0.24 < counts["total"] / PARAMS[variant] < 0.27
    if variant == "sksha": assert counts["total"] == HALF_WIDTH_PARAMS
    if model.halo is not None: assert model.halo.num_heads == 4 and 364 // model.halo.num_heads == 91
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    out = model(x)
    assert [tuple(f.shape) for f in out.features] == [(2, 364, 4, 4), (2, 128, 8, 8), (2, 64, 16, 16)]
    assert out.reconstruction.shape == x.shape
    (out.logit.sum() + out.reconstruction.mean() + sum(f.mean() for f in out.features)).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []

def test_width_errors_name_the_fix(tmp_path):
    with pytest.raises(ValueError, match=r"ha_heads=8 does not divide the 364 channels"): build_model("ci", width=0.5)
    with pytest.raises(ValueError, match="channel multiplier"): build_model("ci", width=0)
    torch.save(XceptionEncoder(warn_random=False).state_dict(), tmp_path / "imagenet.pth")
    with pytest.raises(ValueError, match="only for the full-width Xception"):
        build_model("cpu-demo", weights=tmp_path / "imagenet.pth")
    with pytest.raises(ValueError, match="only for the full-width Xception"):   # refused before anything is fetched
        build_model("cpu-demo", weights="imagenet")

def test_width_one_encoder_is_timms_legacy_xception_seed_for_seed():
    import timm
    torch.manual_seed(3); ours = XceptionEncoder(warn_random=False).state_dict()
    torch.manual_seed(3); theirs = timm.create_model("legacy_xception", pretrained=False, num_classes=0).state_dict()
    assert list(ours) == list(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)

@pytest.mark.parametrize("variant", list(VARIANTS))
def test_backward_reaches_every_parameter_and_eval_is_deterministic(variant):
    torch.manual_seed(0)
    model = build_model("ci", variant).train()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    out = model(x)
    (out.logit.sum() + out.reconstruction.mean() + sum(f.mean() for f in out.features)).backward()
    assert [n for n, p in model.named_parameters() if p.grad is None] == []
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad(): assert torch.equal(model(x).logit, model(x).logit)

def test_channels_last_gives_the_same_output():
    model = build_model("ci", "sksha").eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        a = model(x).logit
        b = model.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last)).logit
    torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)

def test_predict_proba_restores_mode_and_is_a_probability():
    model = build_model("ci", "baseline").train()
    p = model.predict_proba(torch.rand(3, 3, 64, 64) * 2 - 1)
    assert p.shape == (3,) and ((p >= 0) & (p <= 1)).all() and model.training

def test_config_and_build_errors():
    assert ModelConfig.from_profile("cpu-demo").image_size == 128
    assert build_model("ci", "ha").config.variant == "ha"
    assert SKSHANet(ModelConfig.from_profile("ci"), sks=False).sks is None
    with pytest.raises(ValueError, match="unknown profile"): ModelConfig.from_profile("huge")
    with pytest.raises(ValueError, match="unknown variant"): build_model("ci", "full")
    with pytest.raises(ValueError, match="variant="): build_model("ci", "sksha", sks=False)
    with pytest.raises(ValueError, match="noise_p"): build_model("ci", "sksha", noise_p=2)
    with pytest.raises(ValueError, match=r"\(B, 3, S, S\)"): build_model("ci", "baseline")(torch.zeros(1, 1, 64, 64))

# sha256 of "key (shape)" lines, sorted, of the official RECCE model's state dict (github.com/VISION-SJTU/RECCE,
# model/network/Recce.py, Recce(num_classes=1) built with timm 1.0 legacy_xception): 362 entries.
RECCE_LAYOUT_SHA256 = "cc62800ae28ecc6e34b9bf7440c1024292d2e20295e3f831eb8bd6a68b8ae3cb"

def _recce_layout(model):
    sd = to_recce_state_dict(model)
    return sd, "\n".join(f"{k} {tuple(v.shape)}" for k, v in sorted(sd.items()))

def test_recce_layout_matches_the_official_model():
    sd, listing = _recce_layout(build_model("ci", "baseline"))
    assert len(sd) == 362
    assert hashlib.sha256(listing.encode()).hexdigest() == RECCE_LAYOUT_SHA256
    for key in ("reasoning.reweight_ab.0.weight", "attention.h.1.running_var", "decoder6.0.weight", "fc.bias",
                "decoder2.rep.7.pointwise.weight", "encoder.fc.weight"):
        assert key in sd

def test_recce_checkpoint_round_trip(tmp_path):
    torch.manual_seed(3)
    source = build_model("ci", "baseline").eval()
    torch.save({"model": {"module." + k: v for k, v in to_recce_state_dict(source).items()}, "step": 7},
               tmp_path / "latest_model.bin")
    target = build_model("ci", "baseline").eval()
    report = load_recce_checkpoint(target, tmp_path / "latest_model.bin")
    assert report.ok and len(report.loaded) == 360 and report.dropped == ["encoder.fc.weight", "encoder.fc.bias"]
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(target(x).logit, source(x).logit)
        torch.testing.assert_close(target(x).reconstruction, source(x).reconstruction)
    report = load_recce_checkpoint(build_model("ci", "sksha"), tmp_path / "latest_model.bin")
    assert report.ok and {k.split(".")[0] for k in report.new_modules} == {"sks", "halo"}
    assert "left at init" in str(report)

def test_recce_checkpoint_errors(tmp_path):
    sd = to_recce_state_dict(build_model("ci", "baseline"))
    del sd["reasoning.reproject.0.weight"]; sd["something.else"] = torch.zeros(1)
    with pytest.raises(ValueError, match="missing") as e: load_recce_checkpoint(build_model("ci", "baseline"), sd)
    assert "something.else" in str(e.value) and "mgr.reproject.0.weight" in str(e.value)
    (tmp_path / "broken.bin").write_bytes(b"\x00garbage")
    with pytest.raises(ValueError, match="broken.bin"): load_recce_checkpoint(build_model("ci", "baseline"), tmp_path / "broken.bin")
    with pytest.raises(FileNotFoundError, match="nope.bin"): load_recce_checkpoint(build_model("ci", "baseline"), tmp_path / "nope.bin")

def test_encoder_weights_files(tmp_path):
    import timm
    ref = timm.create_model("legacy_xception", pretrained=False).eval()
    torch.save({"state_dict": ref.state_dict()}, tmp_path / "xception.pth")
    model = build_model("ci", "baseline", weights=tmp_path / "xception.pth")
    torch.testing.assert_close(model.encoder.conv1.weight, ref.conv1.weight)
    (tmp_path / "bad.pth").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="bad.pth.*legacy_xception"): build_model("ci", "sksha", weights=tmp_path / "bad.pth")
    sd = ref.state_dict(); sd["conv1.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "wrong.pth")
    with pytest.raises(ValueError, match="wrong shapes"): XceptionEncoder(weights=tmp_path / "wrong.pth")

def test_random_init_warns_exactly_once():
    msgs = [m for m in sksha.core._warned if m.startswith("XceptionEncoder")]
    for m in msgs: sksha.core._warned.discard(m)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_model("ci", "baseline"); build_model("ci", "sksha")
    assert sum("XceptionEncoder" in str(w.message) for w in caught) == 1

def _run(argv):
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf): status = main(argv)
    return status, buf.getvalue()

def test_bench_command(tmp_path):
    status, out = _run(["bench", "--profile", "ci", "--variant", "baseline", "sksha", "--batch-size", "2",
                        "--warmup", "0", "--repeats", "1", "--device", "cpu", "--json", str(tmp_path / "b.json")])
    assert status == 0 and "train ms/img" in out and "sksha" in out and (tmp_path / "b.json").is_file()

def test_bench_width_override(tmp_path):
    "--width rebuilds the profile's network at another width (cpu-demo at 1 is the full paper network)."
    import json
    status, out = _run(["bench", "--profile", "ci", "--variant", "sksha", "--width", "0.5", "--batch-size", "2",
                        "--warmup", "0", "--repeats", "1", "--device", "cpu", "--mode", "infer", "--json", str(tmp_path / "b.json")])
    assert status == 0
    rows = json.loads((tmp_path / "b.json").read_text())
    assert [r["name"] for r in rows] == ["baseline", "sksha"]    # the baseline is always timed, as the reference
    assert rows[1]["params"] == HALF_WIDTH_PARAMS

def test_bench_default_times_every_variant_against_the_baseline(tmp_path):
    "Default: all four variants, channels-last on a CPU (as `sksha train` runs), ratios to the baseline row."
    import json
    status, out = _run(["bench", "--profile", "ci", "--variant", "sksha", "ha", "--batch-size", "2", "--warmup", "0",
                        "--repeats", "1", "--device", "cpu", "--json", str(tmp_path / "b.json")])
    rows = json.loads((tmp_path / "b.json").read_text())
    assert status == 0 and [r["name"] for r in rows] == ["baseline", "sksha", "ha"] and "channels_last=True" in out
    base, sksha = rows[0], rows[1]
    line = next(l for l in out.splitlines() if l.split()[:2] == ["sksha", "cpu"])
    assert f"{sksha['train_ms'] / base['train_ms']:.2f}" in line.split()[-2:]
    status, out = _run(["bench", "--profile", "ci", "--batch-size", "2", "--warmup", "0", "--repeats", "1",
                        "--device", "cpu", "--mode", "infer", "--memory-format", "contiguous"])
    assert status == 0 and "channels_last=False" in out
    assert [l.split()[0] for l in out.splitlines()[2:]] == ["baseline", "sks", "ha", "sksha"]

@pytest.mark.parametrize("argv, message", [
    (["--batch-size", "0"], "--batch-size"),
    (["--device", "cpu", "--amp"], "bf16"),
    (["--variant", "both"], "invalid choice"),
    (["--width", "0.6"], "ha_heads=5 does not divide"),
    (["--compile", "--warmup", "0"], "--compile needs --warmup"),
    (["--memory-format", "nhwc"], "invalid choice"),
])
def test_bench_command_errors(argv, message, capsys):
    assert main(["bench", "--profile", "ci"] + argv) == 2          # a usage error is a status, also in-process
    assert message in capsys.readouterr().err


# `weights="imagenet"`: timm's pretrained mechanism (issue 11). Offline-safe: a local file through timm's overlay,
# timm's cache in a temporary TORCH_HOME, and the two ways a fetch fails (no network, a failed download).

ROUTE = "model.weights=/path/to/xception-43020ad28.pth"

def closed_port() -> int:
    "A local TCP port nothing listens on (connecting to it is refused at once)."
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]

def no_download(*args, **kwargs):
    import urllib.error
    raise urllib.error.URLError("simulated outage")

@pytest.fixture
def xception_file(tmp_path):
    "A legacy_xception state dict (seed 0, ImageNet head included) saved under the ImageNet file's name."
    import timm
    torch.manual_seed(0)
    state = timm.create_model("legacy_xception", pretrained=False).state_dict()
    torch.save(state, tmp_path / "xception-43020ad28.pth")
    return tmp_path / "xception-43020ad28.pth", state

def test_imagenet_loads_through_timms_pretrained_file_overlay(xception_file):
    path, state = xception_file
    enc = XceptionEncoder(warn_random=False)
    enc.load_imagenet_weights("imagenet", pretrained_cfg_overlay=dict(file=str(path)))
    own = enc.state_dict()
    assert set(state) - set(own) == {"fc.weight", "fc.bias"} and set(own) < set(state)   # the head was dropped
    assert all(torch.equal(v, state[k]) for k, v in own.items())
    with pytest.raises(ValueError, match="applies to weights='imagenet' only"):
        enc.load_imagenet_weights(path, pretrained_cfg_overlay=dict(file=str(path)))
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        enc.load_imagenet_weights("imagenet", pretrained_cfg_overlay=dict(file=str(path.parent / "nowhere.pth")))

def test_imagenet_uses_timms_cache_without_network(xception_file, tmp_path, monkeypatch):
    import sksha.encoder
    path, state = xception_file
    cache = tmp_path / "torch_home" / "hub" / "checkpoints"
    cache.mkdir(parents=True); (cache / path.name).write_bytes(path.read_bytes())
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    monkeypatch.setattr(sksha.encoder, "unreachable", lambda *a, **k: pytest.fail("probed the network"))
    assert sksha.encoder.imagenet_cache_file() == cache / path.name
    model = build_model("ci", "baseline", weights="imagenet")
    assert all(torch.equal(v, state[k]) for k, v in model.encoder.state_dict().items())

def test_imagenet_offline_fails_at_once_with_the_local_file_route(tmp_path, monkeypatch):
    import time
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{closed_port()}")   # no network, the same on every machine
    monkeypatch.setenv("no_proxy", "")
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError) as caught: XceptionEncoder(weights="imagenet")
    assert time.perf_counter() - t0 < 10                                    # a guard against hangs, not a benchmark
    msg = str(caught.value)
    assert "\n" not in msg and "looks offline" in msg and "Connection refused" in msg
    assert ROUTE in msg and "xception-43020ad28.pth" in msg and "timm's cache is checked first" in msg
    assert str(tmp_path / "empty" / "hub" / "checkpoints" / "xception-43020ad28.pth") in msg
    assert not (tmp_path / "empty").exists()                              # nothing was created

def test_imagenet_failed_download_names_the_reason_and_the_route(tmp_path, monkeypatch):
    import sksha.encoder
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    monkeypatch.setattr(sksha.encoder, "unreachable", lambda *a, **k: None)   # the host answers, the download fails
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_download)
    with pytest.raises(FileNotFoundError, match="the download failed .URLError.*simulated outage") as caught:
        build_model("ci", "baseline", weights="imagenet")
    assert ROUTE in str(caught.value) and "\n" not in str(caught.value)

def test_a_path_named_imagenet_is_a_path(tmp_path):
    from pathlib import Path
    with pytest.raises(FileNotFoundError, match="never downloaded"): XceptionEncoder(weights=Path("imagenet"))

def test_bench_imagenet_offline_is_a_usage_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.setenv("no_proxy", "")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        assert main(["bench", "--profile", "ci", "--variant", "baseline", "--weights", "imagenet"]) == 2
    last = err.getvalue().strip().splitlines()[-1]
    assert last.startswith("sksha bench: error: weights='imagenet'") and ROUTE in last

def test_a_hanging_network_probe_gives_up_after_its_timeout(monkeypatch):
    "A DNS lookup or connection that never answers (a dropped packet, a dead resolver) cannot hang `imagenet`."
    import socket, threading, time
    from sksha.encoder import unreachable
    release = threading.Event()
    def hang(*args, **kwargs): release.wait(30); raise OSError("released")
    monkeypatch.setattr(socket, "create_connection", hang)
    monkeypatch.delenv("https_proxy", raising=False); monkeypatch.delenv("HTTPS_PROXY", raising=False)
    t0 = time.perf_counter()
    try: why = unreachable("https://github.com/x.pth", timeout=0.5)
    finally: release.set()
    assert time.perf_counter() - t0 < 5 and why == "no answer from github.com:443 within 0.5 s"
