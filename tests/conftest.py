"""Shared pytest set-up: run small, headless and quiet."""
import os

os.environ.setdefault("SKSHA_TEST", "1")   # sksha.core.in_test() -> True: examples shrink to the `ci` profile
os.environ.setdefault("MPLBACKEND", "Agg")  # figures render without a screen

import warnings

import pytest


@pytest.fixture(scope="session")
def ci_model_and_config():
    "A freshly built `ci` SKSHA-Net (64 px, seed 0) and its trainer config; tests copy the config before changing it."
    import torch
    from sksha.train import build_model_from_config, load_config
    cfg = load_config("ci")
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_model_from_config(cfg)
    return model, cfg
