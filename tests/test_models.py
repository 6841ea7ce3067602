"""cs_utils.models: torch itself as the oracle for the cs_utils.arch summaries.

- parameters: torch's ``numel`` of every parameter == summarize's total (and row by row);
- shapes: forward hooks on a real forward pass == the output shape of every summary row that
  has a module (the "add" of a residual block and the "concat" of an Inception module are
  operations inside a module's forward, not modules, so they have no hook);
- multiply-adds: counted here from the torch modules' own weights and output sizes (an
  independent formula), == summarize's total;
- the padding model: torch's floor/ceil rounding gives the same numbers as the explicit
  asymmetric padding the specs print.

The big nets run one forward pass each at batch 1 on the CPU; variants are checked on torch's
"meta" device (shapes and parameters without any arithmetic).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from cs_utils import arch, models
from cs_utils.arch import FC, LRN, Conv, Pool, ReLU, summarize


@pytest.fixture(autouse=True)
def _seed_and_threads():
    torch.manual_seed(0)
    yield


def forward_with_hooks(net: nn.Module, x: torch.Tensor):
    """Run ``net(x)`` recording every named module's output shape and its multiply-adds,
    the latter computed from the module's own weights and output size."""
    shapes, macs = {}, {}

    def hook(name):
        def fn(module, inputs, output):
            shapes[name] = tuple(output.shape[1:])
            per_image = output[0].numel()
            if isinstance(module, nn.Conv2d):
                kh, kw = module.kernel_size
                macs[name] = per_image * (module.in_channels // module.groups) * kh * kw
            elif isinstance(module, nn.Linear):
                macs[name] = module.in_features * module.out_features
        return fn

    handles = [m.register_forward_hook(hook(n)) for n, m in net.named_modules() if n]
    try:
        with torch.no_grad():
            out = net(x)
    finally:
        for h in handles:
            h.remove()
    return out, shapes, macs


def torch_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


MODULE_FREE_KINDS = {"add", "concat"}  # operations inside a block's forward, not modules


def check_against_torch(net: models.SpecNet, batch: int = 1):
    s = net.summary
    assert torch_params(net) == s.total_params
    x = net.example_input(batch)
    out, shapes, macs = forward_with_hooks(net, x)
    assert tuple(out.shape) == (batch,) + s.output_shape
    modules = dict(net.named_modules())
    for row in s.all_rows:
        path = row.name.replace("/", ".")
        if row.kind in MODULE_FREE_KINDS:
            assert path not in modules
            continue
        assert path in shapes, f"no torch module for row {row.name}"
        assert shapes[path] == row.output_shape, row.name
        assert torch_params(modules[path]) == row.params, row.name
    # leaf modules only (blocks would double count)
    assert sum(macs.values()) == s.total_macs
    return out


@pytest.mark.parametrize("name", list(arch.CASE_STUDIES))
def test_case_study_matches_torch(name):
    net = models.case_study(name).eval()
    out = check_against_torch(net)
    assert torch.isfinite(out).all()


def test_parameter_counts_against_hand_and_published_numbers():
    # torch's own count of freshly built models, against numbers from outside the package
    with torch.device("meta"):
        counts = {
            "lenet5": torch_params(models.lenet5()),
            "alexnet": torch_params(models.alexnet()),
            "alexnet2": torch_params(models.alexnet(towers=2)),
            "vgg16": torch_params(models.vgg16()),
            "resnet18": torch_params(models.resnet18()),
            "resnet50": torch_params(models.resnet50()),
        }
    assert counts == {
        "lenet5": 61_706, "alexnet": 62_378_344, "alexnet2": 60_965_224, "vgg16": 138_357_544,
        "resnet18": 11_689_512, "resnet50": 25_557_032,
    }


VARIANTS = [
    lambda: arch.alexnet(towers=2),
    lambda: arch.alexnet(input_size=224),
    lambda: arch.alexnet(padded=False),
    lambda: arch.alexnet(norm_before_pool=True, softmax=True),
    lambda: arch.zfnet(conv345=(512, 1024, 512)),
    lambda: arch.vgg("A"),
    lambda: arch.vgg("C"),
    lambda: arch.resnet(101),
    lambda: arch.resnet(152),
    lambda: arch.resnet50(stride_on="3x3"),
    lambda: arch.resnet18(input_size=96, num_classes=10),
    lambda: arch.lenet5(input_size=28, activation="tanh", pool="avg", softmax=True),
    lambda: arch.alphago_policy(k=128, softmax=True),
    lambda: arch.googlenet(softmax=True),
]


@pytest.mark.parametrize("make", VARIANTS, ids=[f"variant{i}" for i in range(len(VARIANTS))])
def test_variants_on_meta_device(make):
    a = make()
    with torch.device("meta"):
        net = models.build(a)
        x = net.example_input(2)
        assert x.device.type == "meta"
        out, shapes, macs = forward_with_hooks(net, x)
    s = net.summary
    assert torch_params(net) == s.total_params
    assert tuple(out.shape) == (2,) + s.output_shape
    for row in s.all_rows:
        if row.kind not in MODULE_FREE_KINDS:
            assert shapes[row.name.replace("/", ".")] == row.output_shape, row.name
    assert sum(macs.values()) == s.total_macs


# ------------------------------------------------------------------------------------------------
# the padding model is what torch computes
# ------------------------------------------------------------------------------------------------


def test_floor_rounding_equals_explicit_asymmetric_padding():
    # GoogLeNet/ResNet conv1: pad 3 at stride 2 on 224 floors; the spec says padding (3, 2)
    x = torch.randn(1, 3, 224, 224)
    net = models.build((3, 224, 224), [Conv(8, 7, 2, 3, rounding="floor")])
    conv = net.conv1
    assert isinstance(conv, nn.Conv2d) and conv.padding == (3, 3)
    explicit = F.conv2d(F.pad(x, (3, 2, 3, 2)), conv.weight, conv.bias, stride=2)
    torch.testing.assert_close(net(x), explicit)


def test_ceil_pooling_equals_explicit_padding_with_minus_infinity():
    x = torch.randn(2, 4, 112, 112)
    net = models.build((4, 112, 112), [Pool(3, 2, rounding="ceil")])
    assert net.pool1.ceil_mode
    explicit = F.max_pool2d(F.pad(x, (0, 1, 0, 1), value=float("-inf")), 3, 2)
    torch.testing.assert_close(net(x), explicit)


def test_projection_crop_equals_torch_floor():
    # a 1x1 stride-2 conv on 56 never reads the last row: effective padding (0, -1)
    x = torch.randn(1, 4, 56, 56)
    net = models.build((4, 56, 56), [Conv(8, 1, 2, rounding="floor", bias=False)])
    assert net.summary.rows[0].description.startswith("conv 1x1/2, 8, pad 0/-1")
    torch.testing.assert_close(net(x), F.conv2d(x[:, :, :55, :55], net.conv1.weight, stride=2))


def test_padding_torch_cannot_express_uses_explicit_modules():
    layers = [Conv(3, 3, 1, pad=(0, 2)), Pool(3, 1, kind="max", pad=(2, 0)), Pool(3, 2, kind="avg", pad=(0, 2))]
    net = models.build((2, 9, 9), layers)
    assert isinstance(net.conv1, models.PaddedConv2d)
    assert isinstance(net.pool1, models.PaddedPool2d) and isinstance(net.pool2, models.PaddedPool2d)
    x = torch.randn(1, 2, 9, 9)
    check_against_torch(net)
    y = F.conv2d(F.pad(x, (0, 2, 0, 2)), net.conv1.weight, net.conv1.bias)
    torch.testing.assert_close(net.conv1(x), y)
    # average pooling leaves padded cells out of the mean: a constant map stays constant
    ones = torch.ones(1, 3, 9, 9)
    torch.testing.assert_close(net.pool2(ones), torch.ones_like(net.pool2(ones)))


# ------------------------------------------------------------------------------------------------
# individual modules against their definitions
# ------------------------------------------------------------------------------------------------


def test_lrn_uses_the_alexnet_formula():
    a = np.random.default_rng(0).standard_normal((1, 7, 3, 3))
    net = models.build((7, 3, 3), [LRN(5, alpha=1e-2, beta=0.75, k=2.0)])
    got = net(torch.tensor(a, dtype=torch.float32)).numpy()
    # b_c = a_c / (k + alpha * sum_{|c'-c| <= 2} a_c'^2) ** beta  (the paper's alpha, no /n)
    expected = np.empty_like(a)
    for c in range(7):
        window = a[:, max(0, c - 2):min(7, c + 3)]
        expected[:, c] = a[:, c] / (2.0 + 1e-2 * (window ** 2).sum(axis=1)) ** 0.75
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_position_bias_and_alphago_output_are_a_distribution():
    net = models.alphago_policy(softmax=True).eval()
    assert net.bias13.bias.shape == (1, 19, 19)
    with torch.no_grad():
        p = net(net.example_input(3))
    assert p.shape == (3, 361)
    torch.testing.assert_close(p.sum(dim=1), torch.ones(3))


def test_grouped_conv_is_two_towers():
    net = models.alexnet(towers=2)
    assert net.conv2.groups == 2 and net.conv2.weight.shape == (256, 48, 5, 5)
    assert net.conv3.groups == 1


def test_inception_and_residual_modules_mirror_expanded_rows():
    g = models.googlenet()
    reduce = g.inception3a.get_submodule("3x3.reduce")
    assert isinstance(reduce, nn.Conv2d) and reduce.out_channels == 96 and reduce.in_channels == 192
    r = models.resnet18()
    assert isinstance(r.conv2_1.shortcut, nn.Sequential) and len(r.conv2_1.shortcut) == 0   # identity
    assert r.conv3_1.shortcut.proj.stride == (2, 2) and r.conv3_1.shortcut.proj.bias is None


def test_backward_reaches_every_parameter():
    net = models.lenet5()
    x = torch.randn(4, 1, 32, 32)
    loss = F.cross_entropy(net(x), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    res = models.build((4, 8, 8), [arch.BasicBlock(4, name="b"), arch.GlobalAvgPool(), FC(3)])
    res(torch.randn(2, 4, 8, 8)).sum().backward()
    assert all(p.grad is not None for p in res.parameters())


def test_first_relu_does_not_overwrite_the_input():
    net = models.build((2, 4, 4), [ReLU(), Conv(2, 1)])
    x = torch.randn(1, 2, 4, 4)
    x0 = x.clone()
    net(x)
    torch.testing.assert_close(x, x0)


def test_build_errors():
    with pytest.raises(ValueError, match=r"\(224 - 11 \+ 2\*0\)/4 \+ 1 = 54\.25"):
        models.build((3, 224, 224), [Conv(96, 11, 4)])
    with pytest.raises(TypeError, match="no separate layers"):
        models.build(arch.lenet5(), [Conv(1, 1)])
    with pytest.raises(KeyError, match="choose from"):
        models.case_study("squeezenet")


def test_dtype_argument():
    net = models.lenet5(dtype=torch.float64)
    assert all(p.dtype == torch.float64 for p in net.parameters())
    assert net.architecture.name == "LeNet-5"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_forward_matches_cpu():
    cpu = models.resnet18().eval()
    gpu = models.resnet18(device="cuda").eval()
    gpu.load_state_dict(cpu.state_dict())
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        torch.testing.assert_close(gpu(x.cuda()).cpu(), cpu(x), rtol=1e-3, atol=1e-3)
    assert gpu.example_input().device.type == "cuda"


def test_every_spec_function_of_arch_has_a_torch_builder_of_the_same_name():
    from cs_utils import arch

    assert set(arch.CASE_STUDIES) <= set(arch.SPEC_FUNCTIONS)
    for name in arch.SPEC_FUNCTIONS:
        assert isinstance(getattr(arch, name)(), arch.Architecture), name
        builder = getattr(models, name)
        assert builder.__name__ == name and name in models.__all__ and name in arch.__all__
        assert builder.__doc__.startswith(f"Torch model of :func:`cs_utils.arch.{name}`")
