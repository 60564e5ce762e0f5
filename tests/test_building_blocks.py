"Regression numbers of the building blocks (notebooks 01-03): receptive fields, parameter counts, oracle parity."
import pytest
import torch

from sksha.halo import HaloAttention, load_timm_halo_attn
from sksha.receptive import check_kernel_rules, empirical_receptive_field, receptive_field
from sksha.sks import SpatialKernelSelection


def n_params(m): return sum(p.numel() for p in m.parameters())


def test_receptive_fields():
    assert receptive_field((5, 7), (1, 3)) == [5, 23]
    assert receptive_field((3, 5, 7), (1, 2, 3)) == [3, 11, 29]
    assert empirical_receptive_field((3, 5, 7), (1, 2, 3)) == 29
    with pytest.raises(ValueError, match="r_i <= RF_"): check_kernel_rules((3, 3), (1, 5))


def test_sks_numbers():
    sks = SpatialKernelSelection(128)
    assert n_params(sks) == 34_758
    y, masks = sks(torch.randn(2, 128, 19, 19), return_masks=True)
    assert y.shape == (2, 128, 19, 19) and masks.shape == (2, 2, 19, 19)
    assert SpatialKernelSelection(32, (3, 5, 7), (1, 2, 3)).receptive_fields[-1] == 29
    with pytest.raises(ValueError, match="odd kernel sizes"): SpatialKernelSelection(128, (5, 6), (1, 3))


def test_halo_numbers_and_timm_parity():
    from timm.layers.halo_attn import HaloAttn
    torch.manual_seed(0)
    ha = HaloAttention(728)
    assert n_params(ha) == 1_594_866
    with torch.no_grad(): assert ha(torch.randn(1, 728, 19, 19)).shape == (1, 728, 19, 19)
    theirs = HaloAttn(728, num_heads=8, block_size=10, halo_size=2).eval()
    ours = load_timm_halo_attn(HaloAttention(728, mask_padding=False), theirs)
    x = torch.randn(1, 728, 20, 20)
    with torch.no_grad(): assert (ours(x) - theirs(x)).abs().max() < 1e-5
    for bad, match in [(dict(dim=730), "not divisible"), (dict(dim=728, block_size=0), "block_size"),
                       (dict(dim=728, halo_size=-1), "halo_size")]:
        with pytest.raises(ValueError, match=match): HaloAttention(**bad)
