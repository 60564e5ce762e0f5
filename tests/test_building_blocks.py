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


def _sks_reference(m: SpatialKernelSelection, x: torch.Tensor) -> torch.Tensor:
    "Eqs. 4-11 written out with PyTorch's own (dilated) convolutions, in x's layout: the oracle of the fast module."
    import torch.nn.functional as F
    u, kept = x, []
    for conv, reduce in zip(m.depthwise, m.reduce):
        u = F.conv2d(u, conv.weight, conv.bias, padding=conv.padding, dilation=conv.dilation, groups=conv.groups)
        kept.append(reduce(u))
    stacked = torch.cat(kept, 1)
    masks = m.squeeze(torch.cat([stacked.mean(1, keepdim=True), stacked.amax(1, keepdim=True)], 1)).sigmoid()
    return x * m.restore(sum(masks[:, i:i + 1] * kept[i] for i in range(len(kept))))


@pytest.mark.parametrize("kernels, dilations, size", [((5, 7), (1, 3), 32), ((5, 7), (1, 3), 19), ((3, 5, 7), (1, 2, 3), 17)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_sks_fast_dilated_convolution_equals_the_equations(kernels, dilations, size, channels_last):
    "The sub-grid route for dilated depth-wise kernels gives the values and gradients of the plain equations."
    torch.manual_seed(0)
    m = SpatialKernelSelection(16, kernels, dilations)
    x = torch.randn(2, 16, size, size)
    if channels_last: x = x.contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    fast, slow = m(x), _sks_reference(m, x)
    assert (fast - slow).abs().max() < 1e-5
    g_fast = torch.autograd.grad(fast.square().sum(), [x, *m.parameters()])
    g_slow = torch.autograd.grad(slow.square().sum(), [x, *m.parameters()])
    for a, b in zip(g_fast, g_slow): assert ((a - b).abs().max() / b.abs().max()) < 1e-5
    assert fast.is_contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


@pytest.mark.parametrize("dim, heads, size", [(728, 8, 8), (364, 4, 8), (728, 8, 4), (64, 4, 10), (64, 4, (7, 10))])
def test_halo_one_block_route_equals_the_windowed_route(dim, heads, size):
    "A map that fits one block takes the short route; the windowed route (return_attention=True) is its oracle."
    H, W = (size, size) if isinstance(size, int) else size
    torch.manual_seed(1)
    m = HaloAttention(dim, 10, 2, heads)
    x = torch.randn(2, dim, H, W, requires_grad=True)
    fast, (windowed, attention) = m(x), m(x, return_attention=True)
    assert attention.shape == (2, heads, 1, 100, 196)
    assert (fast - windowed).abs().max() < 1e-5
    g_fast = torch.autograd.grad(fast.sum(), [x, *m.parameters()])
    g_windowed = torch.autograd.grad(windowed.sum(), [x, *m.parameters()])
    for a, b in zip(g_fast, g_windowed): assert ((a - b).abs().max() / b.abs().max()) < 1e-4


def test_sks_runs_no_dilated_convolution_on_a_cpu():
    "On a CPU every convolution SKS runs is undilated (oneDNN's dilated depth-wise kernels are the slow ones)."
    from torch.utils._python_dispatch import TorchDispatchMode
    dilations = []
    class Spy(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if func.__name__.startswith("convolution"): dilations.append(tuple(args[5]))
            return func(*args, **(kwargs or {}))
    m = SpatialKernelSelection(8)
    with Spy(): m(torch.randn(1, 8, 12, 12))
    assert len(dilations) == 6 and set(dilations) == {(1, 1)}
