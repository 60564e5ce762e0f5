"""End-to-end checks of the trainer (sksha.train): a ci-profile run, exact resume after a kill, determinism,
NaN handling, atomic and validated checkpoints, the command line and the 2-process DDP (gloo) path."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sksha import train as T
from sksha.train import (CheckpointError, Callback, NonFiniteLossError, RandomFaces, TinyDetector, load_config,
                         load_weights, resolve_checkpoint, train)

try:
    import sksha.model  # noqa: F401
    HAVE_MODEL = hasattr(sksha.model, "build_model")
except ImportError:
    HAVE_MODEL = False

TINY = ["model.arch=tiny", "train.device=cpu", "train.progress=false", "data.train_size=64", "data.val_size=32", "train.batch_size=8",
        "optim.lr=3e-3"]

def tiny_run(out, steps=12, extra=()):
    return train("ci", TINY + [f"train.steps={steps}", "train.val_every=4", "train.ckpt_every=4",
                               f"train.out_dir={out}", *extra])

def weights(out, which="last"):
    from safetensors.torch import load_file
    return load_file(str(resolve_checkpoint(out, which) / "model.safetensors"))

def assert_same_tensors(a, b):
    assert a.keys() == b.keys()
    for k in a: assert torch.equal(a[k], b[k]), k


@pytest.mark.skipif(not HAVE_MODEL, reason="sksha.model.build_model is not available yet")
def test_ci_profile_run_finishes(tmp_path):
    "The shipped ci profile (the real SKSHA-Net at 64 px, synthetic data) trains a few dozen steps."
    torch.set_num_threads(2)
    res = train("ci", ["train.steps=24", "train.val_every=24", "train.ckpt_every=0", "train.progress=false",
                       f"train.out_dir={tmp_path}", "train.batch_size=2", "data.train_size=48", "data.val_size=8"])
    assert res.step == 24 and res.best_step == 24
    assert 0 <= res.last_val["auc"] <= 1
    meta = json.loads((resolve_checkpoint(tmp_path, "best") / "checkpoint.json").read_text())
    assert meta["config"]["profile"] == "ci" and meta["data"]["kind"] == "random"


def test_tiny_run_writes_log_and_checkpoints(tmp_path):
    res = tiny_run(tmp_path, steps=8)
    assert res.step == 8
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert rows[0].startswith("step,epoch,split,loss")
    assert sum(",val," in r for r in rows) == 2 and sum(",train," in r for r in rows) == 8
    last = json.loads((tmp_path / "checkpoints" / "last.json").read_text())
    assert last["step"] == 8
    meta = json.loads((tmp_path / "checkpoints" / last["folder"] / "checkpoint.json").read_text())
    for key in ("config", "step", "metrics", "data", "optimizer", "scheduler", "rng", "selection"):
        assert key in meta, key
    assert "val" in meta["selection"]


class Kill(Callback):
    "Simulate a crash (kill) right after a given step, between two checkpoints."
    def __init__(self, at): self.at = at
    def after_step(self, trainer, row):
        if trainer.step == self.at: raise KeyboardInterrupt("simulated kill")


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    full, broken = tmp_path / "full", tmp_path / "broken"
    ref = tiny_run(full, steps=12)
    with pytest.raises(KeyboardInterrupt):
        train("ci", TINY + ["train.steps=12", "train.val_every=4", "train.ckpt_every=4", f"train.out_dir={broken}"],
              callbacks=[Kill(6)])
    assert json.loads((broken / "checkpoints" / "last.json").read_text())["step"] == 4  # step 5-6 are lost
    res = tiny_run(broken, steps=12)                                                   # resume
    assert res.step == 12
    assert_same_tensors(weights(full), weights(broken))
    from safetensors.torch import load_file
    opt = lambda out: load_file(str(resolve_checkpoint(out) / "training_state.safetensors"))
    assert_same_tensors(opt(full), opt(broken))
    assert res.best_step == ref.best_step and res.last_val == ref.last_val
    # the log of the resumed run has each step once
    steps = [r.split(",")[0] for r in (broken / "log.csv").read_text().splitlines()[1:] if ",train," in r]
    assert steps == [str(i) for i in range(1, 13)]


def test_deterministic_on_cpu(tmp_path):
    a = tiny_run(tmp_path / "a", steps=6)
    b = tiny_run(tmp_path / "b", steps=6)
    assert a.last_val == b.last_val
    assert_same_tensors(weights(tmp_path / "a"), weights(tmp_path / "b"))


def test_epoch_scheduler_and_grad_clip(tmp_path):
    res = train("ci", TINY + ["train.steps=16", "train.val_every=0", "train.ckpt_every=0", "sched.interval=epoch",
                              "sched.step_size=1", "sched.gamma=0.5", "train.grad_clip=1.0", f"train.out_dir={tmp_path}"])
    lrs = [float(r.split(",")[7]) for r in (tmp_path / "log.csv").read_text().splitlines()[1:]]
    assert lrs[0] == pytest.approx(3e-3) and lrs[7] == pytest.approx(1.5e-3) and lrs[15] == pytest.approx(7.5e-4)
    assert res.best_step is None


class NaNAt(torch.utils.data.Dataset):
    def __init__(self, base, bad): self.base, self.bad = base, set(bad)
    def __len__(self): return len(self.base)
    def __getitem__(self, i):
        item = dict(self.base[i])
        if i in self.bad: item["image"] = item["image"] * float("inf")
        return item


def test_nonfinite_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    base = RandomFaces(64, 64, seed=0)
    order = list(torch.utils.data.DistributedSampler(base, num_replicas=1, rank=0, shuffle=True, seed=0, drop_last=True))
    data = NaNAt(base, [order[8 * 6]])                                   # poisons step 7
    with pytest.raises(NonFiniteLossError, match="not finite at step 7.*last good checkpoint is kept"):
        train("ci", TINY + ["train.steps=20", "train.val_every=0", "train.ckpt_every=3", f"train.out_dir={tmp_path}"],
              train_data=data)
    folder = resolve_checkpoint(tmp_path)
    assert folder.name == "step_000006"
    m = TinyDetector(); load_weights(m, folder)
    assert all(torch.isfinite(v).all() for v in m.state_dict().values() if v.is_floating_point())


def test_crash_while_saving_keeps_previous_last(tmp_path, monkeypatch):
    tiny_run(tmp_path, steps=4)
    before = (tmp_path / "checkpoints" / "last.json").read_text()
    import safetensors.torch as st
    calls = {"n": 0}
    real_save = st.save_file
    def flaky(*a, **k):
        calls["n"] += 1
        if calls["n"] == 2: raise OSError("disk full (simulated)")
        return real_save(*a, **k)
    monkeypatch.setattr(st, "save_file", flaky)
    with pytest.raises(OSError, match="disk full"):
        tiny_run(tmp_path, steps=8)
    assert (tmp_path / "checkpoints" / "last.json").read_text() == before
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]  # no half-written temp
    monkeypatch.setattr(st, "save_file", real_save)
    assert tiny_run(tmp_path, steps=8).step == 8


def test_corrupt_or_mismatched_checkpoint_names_the_file(tmp_path):
    tiny_run(tmp_path, steps=4)
    folder = resolve_checkpoint(tmp_path)
    with pytest.raises(CheckpointError, match="model.safetensors does not match this model"):
        load_weights(TinyDetector(width=4), tmp_path)
    (folder / "training_state.safetensors").write_bytes(b"\0" * 20)
    with pytest.raises(CheckpointError, match="training_state.safetensors is corrupt"):
        tiny_run(tmp_path, steps=8)
    (tmp_path / "checkpoints" / "last.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="last.json is corrupt"):
        tiny_run(tmp_path, steps=8)


def test_resume_refuses_another_config(tmp_path):
    tiny_run(tmp_path, steps=4)
    with pytest.raises(CheckpointError, match="variant|model="):
        tiny_run(tmp_path, steps=8, extra=["model.variant=baseline"])
    with pytest.raises(FileExistsError, match="train.resume=false"):
        tiny_run(tmp_path, steps=8, extra=["train.resume=false"])


def test_config_errors():
    with pytest.raises(KeyError, match="valid keys here"): load_config("ci", ["optim.learning_rate=1"])
    with pytest.raises(ValueError, match="key=value"): load_config("ci", ["train.steps"])
    with pytest.raises(ValueError, match="expected a number"): load_config("ci", ["train.steps=many"])
    with pytest.raises(ValueError, match="sched.interval"): load_config("ci", ["sched.interval=week"])
    for name in ("paper", "cpu-demo", "ci"):
        cfg = load_config(name)
        assert cfg["profile"] == name and set(cfg) == set(T.DEFAULTS)
    assert load_config("paper")["train"]["batch_size"] == 32
    assert load_config("ci", ["model.weights=imagenet"])["model"]["weights"] == "imagenet"
    assert load_config("ci", ["model.weights=/data/xception-43020ad28.pth"])["model"]["weights"].endswith(".pth")
    for bad in ("model.weights=5", "model.weights=[a]", "model.weights=' '"):
        with pytest.raises(T.ConfigError, match="model.weights.*imagenet.*local weights file"): load_config("ci", [bad])


@pytest.mark.skipif(not HAVE_MODEL, reason="needs sksha.model")
def test_imagenet_weights_offline_is_a_config_error(tmp_path, monkeypatch):
    "model.weights=imagenet without network or cached file: a ConfigError (exit 2) naming the local-file route."
    import socket
    with socket.socket() as s: s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("https_proxy", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("no_proxy", "")
    with pytest.raises(T.ConfigError, match=r"model.weights=imagenet.*looks offline.*model.weights=/path/to/xception"):
        T.build_model_from_config(load_config("ci", ["model.weights=imagenet"]))


def test_bad_run_settings(tmp_path):
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="amp=true needs a CUDA device"):
            train("ci", TINY + ["train.amp=true", f"train.out_dir={tmp_path / 'a'}"])
    with pytest.raises(ValueError, match="fewer than one batch"):
        train("ci", TINY + ["data.train_size=4", f"train.out_dir={tmp_path / 'b'}"])
    with pytest.raises(ValueError, match="no 'video' ids"):
        class NoVideo(torch.utils.data.Dataset):
            def __init__(self): self.base = RandomFaces(16, 64, split="val")
            def __len__(self): return 16
            def __getitem__(self, i): return {k: v for k, v in self.base[i].items() if k != "video"}
        train("ci", TINY + ["train.metric=video_auc", "train.steps=2", "train.val_every=2", f"train.out_dir={tmp_path / 'c'}"],
              val_data=NoVideo())


def _cli_env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", SKSHA_TEST="1", PYTHONUNBUFFERED="1")
    return env


def test_cli_train_and_errors(tmp_path):
    sksha = shutil.which("sksha")
    assert sksha, "the sksha console script is not installed (pip install -e .)"
    out = subprocess.run([sksha, "train", "ci", "--print-config", "--set", "train.steps=7"], capture_output=True,
                         text=True, env=_cli_env())
    assert out.returncode == 0 and "steps: 7" in out.stdout
    out = subprocess.run([sksha, "train", "ci", "--set", "train.stepz=7"], capture_output=True, text=True, env=_cli_env())
    assert out.returncode == 2 and "unknown config key 'train.stepz'" in out.stderr   # a configuration error: exit 2
    cfg = tmp_path / "my.yaml"
    cfg.write_text("profile: ci\nmodel: {arch: tiny}\ntrain: {steps: 4, val_every: 2, ckpt_every: 2, progress: false}\n"
                   "data: {train_size: 32, val_size: 16}\n")
    out = subprocess.run([sksha, "train", str(cfg), "--set", f"train.out_dir={tmp_path / 'run'}", "--set", "train.device=cpu"], capture_output=True,
                         text=True, env=_cli_env())
    assert out.returncode == 0, out.stderr
    assert "finished at step 4" in out.stdout and "step time" in out.stdout


def test_ddp_two_processes_gloo(tmp_path):
    "The distributed path on CPU: torchrun, 2 processes, gloo, DistributedSampler; only rank 0 writes."
    sksha = shutil.which("sksha")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "--no-python",
           sksha, "train", "ci", "--set", "model.arch=tiny", "--set", "train.device=cpu", "--set", "train.steps=6", "--set", "train.val_every=3",
           "--set", "train.ckpt_every=3", "--set", "train.progress=false", "--set", "data.train_size=32",
           "--set", "data.val_size=18", "--set", "train.batch_size=4", "--set", f"train.out_dir={tmp_path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, env=_cli_env(), timeout=240)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert out.stdout.count("finished at step 6") == 1                      # rank 0 only
    meta = json.loads((resolve_checkpoint(tmp_path) / "checkpoint.json").read_text())
    assert meta["world_size"] == 2 and len(meta["rng"]) == 2
    assert meta["metrics"]["n"] == 18                                    # every validation item once, no padding
    rows = (tmp_path / "log.csv").read_text().splitlines()
    assert sum(",train," in r for r in rows) == 6
    # and the run resumes under DDP
    cmd[cmd.index("train.steps=6")] = "train.steps=8"
    out = subprocess.run(cmd, capture_output=True, text=True, env=_cli_env(), timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    assert json.loads((tmp_path / "checkpoints" / "last.json").read_text())["step"] == 8


def test_index_and_samples_data_kinds(tmp_path):
    "data.kind=index reads a CSV index (sksha.datasets) by split; provenance records the index digest."
    sd = pytest.importorskip("sksha.datasets")
    def mixed(split, n):
        rows = sd.load_manifest(split)
        return [dict(r, split=split) for lab in (0, 1) for r in [r for r in rows if r["label"] == lab][:n // 2]]
    rows = mixed("train", 16) + mixed("val", 8)
    index = sd.save_index(sd.DatasetIndex(rows, {"dataset": "test"}), tmp_path / "index.csv")
    res = train("ci", TINY + ["data.kind=index", f"data.index={index}", "train.steps=2", "train.batch_size=4",
                              "train.val_every=2", f"train.out_dir={tmp_path / 'run'}"])
    meta = json.loads((resolve_checkpoint(tmp_path / "run") / "checkpoint.json").read_text())
    assert meta["data"]["kind"] == "index" and len(meta["data"]["index_sha256"]) == 64
    assert meta["data"]["n_train"] == 16 and res.last_val["n"] == 8
    with pytest.raises(ValueError, match="needs data.index"):
        train("ci", TINY + ["data.kind=index", f"train.out_dir={tmp_path / 'x'}"])
    with pytest.raises(ValueError, match="no rows in split 'test'"):
        train("ci", TINY + ["data.kind=index", f"data.index={index}", "data.val_split=test",
                            f"train.out_dir={tmp_path / 'y'}"])


def test_sigkilled_process_resumes_to_the_same_weights(tmp_path):
    "A real kill (SIGKILL, possibly in the middle of a save) of `sksha train`, then a resume: same final weights."
    import time
    sksha = shutil.which("sksha")
    def cmd(out): return [sksha, "train", "ci", "--set", "model.arch=tiny", "--set", "train.device=cpu",
                          "--set", "train.steps=120", "--set", "train.val_every=0", "--set", "train.ckpt_every=5",
                          "--set", "train.progress=false", "--set", "data.train_size=64", "--set", "train.batch_size=8",
                          "--set", f"train.out_dir={out}"]
    ref = subprocess.run(cmd(tmp_path / "ref"), capture_output=True, text=True, env=_cli_env(), timeout=300)
    assert ref.returncode == 0, ref.stderr[-2000:]
    proc = subprocess.Popen(cmd(tmp_path / "killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_cli_env())
    last = tmp_path / "killed" / "checkpoints" / "last.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(last.read_text())["step"] >= 10: break
        except (FileNotFoundError, ValueError): pass
        time.sleep(0.02)
    proc.kill(); proc.wait()
    killed_at = json.loads(last.read_text())["step"]
    assert killed_at < 120, "the run finished before it could be killed"
    res = subprocess.run(cmd(tmp_path / "killed"), capture_output=True, text=True, env=_cli_env(), timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert_same_tensors(weights(tmp_path / "ref"), weights(tmp_path / "killed"))


def test_time_budget_stops_validates_and_checkpoints(tmp_path):
    "train.max_minutes: the run stops after the first step past the budget, validates it, saves it as last."
    r = tiny_run(tmp_path / "t", steps=1000, extra=["train.max_minutes=0.0001"])
    assert r.step == 1 and r.stats["stopped_by_time"] and r.best_step == 1
    assert resolve_checkpoint(tmp_path / "t", "last").name == "step_000001"
    assert resolve_checkpoint(tmp_path / "t", "best").name == "step_000001"
    r = tiny_run(tmp_path / "u", steps=4, extra=["train.max_minutes=10"])
    assert r.step == 4 and not r.stats["stopped_by_time"]
    for bad in ("train.max_minutes=0", "train.max_minutes=-1", "train.max_minutes=soon", "sched.kind=linear"):
        with pytest.raises((ValueError, KeyError)): load_config("ci", [bad])


def test_cosine_schedule_warms_up_and_decays(tmp_path):
    r = tiny_run(tmp_path / "c", steps=8, extra=["sched.kind=cosine", "sched.warmup=2"])
    import csv
    lrs = [float(row["lr"]) for row in csv.DictReader(open(tmp_path / "c" / "log.csv")) if row["split"] == "train"]
    # log.csv's lr is the one the next step uses: 2/3 of the peak, the peak, then cosine down to 0
    assert len(lrs) == 8 and lrs[0] == pytest.approx(2e-3) and lrs[1] == pytest.approx(3e-3)
    assert all(a > b for a, b in zip(lrs[1:], lrs[2:])) and lrs[-1] == pytest.approx(0, abs=1e-12)
    with pytest.raises(ValueError, match="cosine"):
        tiny_run(tmp_path / "e", steps=4, extra=["sched.kind=cosine", "sched.interval=epoch"])


def test_compile_and_memory_format_settings(tmp_path):
    "train.compile wraps only the training forward pass; train.channels_last: auto is channels-last on a CPU."
    cfg = load_config("ci", TINY + [f"train.out_dir={tmp_path}", "train.compile=true"])
    trainer = T.Trainer(cfg)
    assert trainer.memory_format == torch.channels_last
    assert trainer._forward is not trainer.model and getattr(trainer._forward, "_orig_mod", None) is trainer.model
    plain = T.Trainer(load_config("ci", TINY + [f"train.out_dir={tmp_path / 'b'}", "train.channels_last=false"]))
    assert plain._forward is plain.model and plain.memory_format == torch.contiguous_format
    with pytest.raises(Exception, match="train.compile"): load_config("ci", ["train.compile=maybe"])


def test_resumed_adam_moments_take_the_parameter_layout():
    "A checkpoint stores Adam's moments contiguous; the fused Adam needs them in the layout of their channels-last parameter."
    from sksha.core import make_adam
    from sksha.train import _join_optimizer_state, _match_parameter_layouts, _split_optimizer_state
    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(4, 3, 2, 2).contiguous(memory_format=torch.channels_last)) for _ in range(2)]
    ps[1].data.copy_(ps[0].data)
    opts = [make_adam([p], lr=0.1) for p in ps]
    grad = torch.randn(4, 3, 2, 2).contiguous(memory_format=torch.channels_last)
    def step(i):
        ps[i].grad = grad.clone(memory_format=torch.channels_last); opts[i].step()
    step(0); step(1)
    tensors, plain = _split_optimizer_state(opts[1].state_dict())       # as save_checkpoint stores it
    assert all(t.is_contiguous() for t in tensors.values())
    opts[1].load_state_dict(_join_optimizer_state(tensors, plain))
    _match_parameter_layouts(opts[1])
    assert all(v.stride() == ps[1].stride() for v in opts[1].state[ps[1]].values() if v.shape == ps[1].shape)
    step(0); step(1)
    assert torch.equal(ps[0], ps[1])
