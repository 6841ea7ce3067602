"""cs_utils.arch against hand counts, the seeds' tables and the published figures.

Oracles: numbers written out by hand from the layer definitions (e.g. AlexNet conv1
96*(11*11*3)+96), the seeds' layer-by-layer tables (seed 000's VGG-16 memory/parameter table,
AlexNet list, GoogLeNet table; seed 004's AlexNet without padding), and published totals
(VGG paper, ResNet paper, torchvision's documented parameter counts). The torch side
(tests/test_models.py) checks the same specs against torch itself.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cs_utils import arch
from cs_utils.arch import (
    FC, LRN, BasicBlock, BatchNorm, Bottleneck, Conv, Dropout, Flatten, GlobalAvgPool, Inception, Pool,
    PositionBias, ReLU, Residual, Softmax, Tanh, effective_padding, summarize,
)


def chw(h, w, c):
    """The seeds write H x W x C; our shapes are (C, H, W)."""
    return (c, h, w)


# ------------------------------------------------------------------------------------------------
# single layers, by hand
# ------------------------------------------------------------------------------------------------


def test_alexnet_conv1_row_by_hand():
    s = summarize((3, 227, 227), [Conv(96, 11, stride=4, name="conv1"), Pool(3, 2, name="pool1")])
    conv1 = s["conv1"]
    assert conv1.output_shape == (96, 55, 55)               # (227 - 11)/4 + 1 = 55
    assert conv1.params == 96 * (11 * 11 * 3) + 96 == 34_944
    assert conv1.weights == 34_848
    assert conv1.biases == 96
    assert conv1.macs == 55 * 55 * 96 * (11 * 11 * 3)       # one dot product of 363 per output value
    assert conv1.activations == 55 * 55 * 96 == 290_400
    pool1 = s["pool1"]
    assert pool1.output_shape == (96, 27, 27)               # (55 - 3)/2 + 1 = 27
    assert pool1.params == 0 and pool1.macs == 0


def test_seed_000_32x32x3_ten_5x5_pad_2():
    # seed 000: each filter has 5*5*3 + 1 = 76 params => 760; output 32x32x10
    s = summarize((3, 32, 32), [Conv(10, 5, 1, 2)])
    assert s.rows[0].output_shape == (10, 32, 32)
    assert s.total_params == 760


def test_same_padding_and_groups():
    s = summarize((8, 9, 9), [Conv(4, 3, pad="same", groups=2)])
    assert s.rows[0].output_shape == (4, 9, 9)
    assert s.rows[0].weights == 4 * (8 // 2) * 3 * 3
    assert s.rows[0].macs == 9 * 9 * 4 * 4 * 9


def test_fc_flattens_and_counts():
    s = summarize((512, 7, 7), [FC(4096, name="fc6")])
    assert s["fc6"].params == 7 * 7 * 512 * 4096 + 4096
    assert s["fc6"].macs == 7 * 7 * 512 * 4096
    assert s.output_shape == (4096,)


def test_parameter_free_layers_keep_shape():
    layers = [ReLU(), Tanh(), LRN(), Dropout(0.3), Softmax(), BatchNorm()]
    s = summarize((6, 5, 5), layers)
    assert [r.output_shape for r in s.rows] == [(6, 5, 5)] * 6
    assert [r.params for r in s.rows] == [0, 0, 0, 0, 0, 12]   # BN: scale and shift per channel
    assert s.total_macs == 0


def test_flatten_global_pool_position_bias():
    s = summarize((3, 4, 5), [PositionBias(), GlobalAvgPool(), Flatten()])
    assert s.rows[0].params == 3 * 4 * 5
    assert s.rows[1].output_shape == (3, 1, 1)
    assert s.rows[2].output_shape == (3,)


def test_memory_counts_input_and_every_new_tensor_but_not_inplace_layers():
    layers = [Conv(4, 3, pad=1), ReLU(), Pool(2), Flatten(), FC(5), Dropout(), Softmax()]
    s = summarize((2, 8, 8), layers)
    # input 2*8*8 + conv 4*8*8 + pool 4*4*4 + fc 5 + softmax 5; ReLU, Flatten, Dropout add nothing
    expected = 128 + 256 + 64 + 5 + 5
    assert s.total_activations == expected
    assert s.bytes_per_image == 4 * expected
    assert summarize((2, 8, 8), layers, bytes_per_value=2).bytes_per_image == 2 * expected
    relu = s["relu1"]
    assert relu.inplace and relu.memory == 0 and relu.activations == 256


def test_auto_names_count_per_kind():
    s = summarize((1, 8, 8), [Conv(2, 3), ReLU(), Conv(2, 3), ReLU(), Pool(2)])
    assert [r.name for r in s.rows] == ["conv1", "relu1", "conv2", "relu2", "pool1"]


# ------------------------------------------------------------------------------------------------
# errors that teach
# ------------------------------------------------------------------------------------------------


def test_non_fitting_conv_names_layer_and_shows_arithmetic():
    with pytest.raises(ValueError) as exc:
        summarize((3, 224, 224), [Conv(96, 11, stride=4, name="conv1")])
    msg = str(exc.value)
    assert "conv1" in msg and "224x224x3" in msg
    assert "(224 - 11 + 2*0)/4 + 1 = 54.25 is not an integer" in msg


def test_non_fitting_pool_shows_arithmetic():
    with pytest.raises(ValueError, match=r"\(7 - 2\)/2 \+ 1 = 3\.50 is not an integer"):
        summarize((1, 7, 7), [Pool(2, 2)])


def test_batch_dimension_is_refused_with_a_hint():
    with pytest.raises(ValueError, match="batch dimension"):
        summarize((1, 3, 32, 32), [Conv(6, 5)])


def test_conv_after_fc_is_refused():
    with pytest.raises(ValueError, match=r"needs a feature map \(C, H, W\)"):
        summarize((3, 8, 8), [FC(10), Conv(4, 3)])


def test_bad_hyper_parameters_name_the_parameter():
    with pytest.raises(ValueError, match="k \\(number of filters\\)"):
        Conv(0, 3)
    with pytest.raises(TypeError, match="f \\(filter size\\)"):
        Conv(3, 2.5)
    with pytest.raises(ValueError, match="pad"):
        Conv(3, 3, pad="valid")
    with pytest.raises(ValueError, match="groups=2 must divide the number of filters k=3"):
        Conv(3, 3, groups=2)
    with pytest.raises(ValueError, match="groups=2 must divide the input depth C=3"):
        summarize((3, 8, 8), [Conv(4, 3, groups=2)])
    with pytest.raises(ValueError, match="kind must be 'max' or 'avg'"):
        Pool(2, 2, kind="min")
    with pytest.raises(ValueError, match="rounding"):
        Pool(2, 2, rounding="up")
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)


def test_duplicate_names_and_non_specs_are_refused():
    with pytest.raises(ValueError, match="both named 'a'"):
        summarize((1, 8, 8), [Conv(2, 3, name="a"), Conv(2, 3, name="a")])
    with pytest.raises(TypeError, match=r"layers\[1\] must be a layer spec"):
        summarize((1, 8, 8), [Conv(2, 3), "relu"])


def test_residual_shape_mismatch_explains_projection():
    block = Residual(body=(Conv(8, 3, stride=2, pad=1, rounding="floor"),), name="res")
    with pytest.raises(ValueError, match="needs a projection"):
        summarize((4, 8, 8), [block])


# ------------------------------------------------------------------------------------------------
# rounding made explicit
# ------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 60), f=st.integers(1, 11), s=st.integers(1, 5), p=st.integers(0, 5))
def test_effective_padding_reproduces_floor_and_ceil_division(n, f, s, p):
    if f > n + 2 * p:
        return
    # Independent oracle: the frameworks' formulas floor/ceil((n + 2p - f)/s) + 1.
    lo, hi = effective_padding(n, f, s, p, "floor")
    assert (lo, hi) == (p, p - (n + 2 * p - f) % s)
    assert (n + lo + hi - f) % s == 0
    assert (n + lo + hi - f) // s + 1 == (n + 2 * p - f) // s + 1
    lo, hi = effective_padding(n, f, s, p, "ceil")
    assert (n + lo + hi - f) % s == 0
    assert (n + lo + hi - f) // s + 1 == math.ceil((n + 2 * p - f) / s) + 1
    # and the spec uses it: the layer's output is the framework's
    out = summarize((1, n, n), [Conv(1, f, s, p, rounding="floor")]).output_shape
    assert out[1] == (n + 2 * p - f) // s + 1


def test_effective_padding_examples_and_description():
    assert effective_padding(224, 11, 4, 2, "floor") == (2, 1)      # torchvision AlexNet
    assert effective_padding(112, 3, 2, 0, "ceil") == (0, 1)        # GoogLeNet pool1
    assert effective_padding(56, 1, 2, 0, "floor") == (0, -1)       # ResNet projection: last row unread
    assert effective_padding(5, 3, 1, "same") == (1, 1)
    with pytest.raises(ValueError, match="already fixes the rounding"):
        effective_padding(10, 3, 1, (1, 0), "floor")
    row = arch.googlenet().summary()["conv1"]
    assert row.description == "conv 7x7/2, 64, pad 3/2 (floor)"
    assert row.output_shape == (64, 112, 112)


def test_explicit_asymmetric_padding():
    s = summarize((1, 224, 224), [Conv(4, 7, 2, pad=(3, 2)), Pool(3, 2, pad=(0, 1))])
    assert s.rows[0].output_shape == (4, 112, 112)   # (224 + 3 + 2 - 7)/2 + 1
    assert s.rows[1].output_shape == (4, 56, 56)     # (112 + 0 + 1 - 3)/2 + 1


# ------------------------------------------------------------------------------------------------
# blocks
# ------------------------------------------------------------------------------------------------


def test_inception_3a_by_hand_and_expanded_rows():
    s = summarize((192, 28, 28), [Inception(64, 96, 128, 16, 32, 32, name="3a")], expand=True)
    row = s["3a"]
    assert row.output_shape == (64 + 128 + 32 + 32, 28, 28)
    weights = 192 * 64 + 192 * 96 + 9 * 96 * 128 + 192 * 16 + 25 * 16 * 32 + 192 * 32
    assert row.weights == weights == 163_328
    assert row.params == weights + (64 + 96 + 128 + 16 + 32 + 32)
    assert row.macs == weights * 28 * 28
    assert s["3a/3x3/reduce"].output_shape == (96, 28, 28)
    assert s["3a/5x5/conv"].description == "conv 5x5/1, 32, pad 2"
    assert s["3a/pool/pool"].output_shape == (192, 28, 28)
    # the block row is the sum of its parts
    parts = [r for r in s.rows if r.depth == 1]
    assert sum(r.params for r in parts) == row.params
    assert sum(r.memory for r in parts) == row.memory
    assert not row.leaf and len(s.top_rows) == 1 and s.total_params == row.params


def test_basic_block_identity_and_projection():
    s = summarize((64, 56, 56), [BasicBlock(64, name="a"), BasicBlock(128, 2, name="b")], expand=True)
    assert s["a"].params == 2 * (3 * 3 * 64 * 64 + 2 * 64)               # no shortcut parameters
    assert s["b"].output_shape == (128, 28, 28)
    assert s["b/shortcut/proj"].params == 64 * 128                       # 1x1 conv, stride 2
    assert s["b"].params == (3 * 3 * 64 * 128 + 2 * 128) + (3 * 3 * 128 * 128 + 2 * 128) + (64 * 128 + 2 * 128)
    with pytest.raises(KeyError, match="no layer named"):
        s["a/shortcut/proj"]


def test_bottleneck_stride_position_changes_macs_not_params():
    v1 = summarize((256, 56, 56), [Bottleneck(128, 2, stride_on="1x1")])
    v15 = summarize((256, 56, 56), [Bottleneck(128, 2, stride_on="3x3")])
    assert v1.output_shape == v15.output_shape == (512, 28, 28)
    assert v1.total_params == v15.total_params == (
        256 * 128 + 9 * 128 * 128 + 128 * 512 + 256 * 512 + 2 * (128 + 128 + 512 + 512))
    # v1.5 runs the first 1x1 conv at 56x56 instead of 28x28
    assert v15.total_macs - v1.total_macs == 256 * 128 * (56 * 56 - 28 * 28)


# ------------------------------------------------------------------------------------------------
# case studies: shapes and published figures
# ------------------------------------------------------------------------------------------------


def test_lenet5():
    s = arch.lenet5().summary()
    shapes = [r.output_shape for r in s.rows if r.kind in ("conv", "pool", "fc")]
    assert shapes == [chw(28, 28, 6), chw(14, 14, 6), chw(10, 10, 16), chw(5, 5, 16), chw(1, 1, 120), (84,), (10,)]
    # by hand: C1 6*(5*5*1)+6, C3 16*(5*5*6)+16, C5 120*(5*5*16)+120, F6 84*120+84, output 10*84+10
    assert s.total_params == 156 + 2416 + 48120 + 10164 + 850 == 61_706
    assert s["C1"].weights == 150 and s["S2"].params == 0     # seed 004
    assert abs(s.total_params - 60_000) / 60_000 < 0.05       # "about 60K"
    assert arch.lenet5(input_size=28).summary()["C1"].output_shape == (6, 28, 28)
    with pytest.raises(ValueError, match="input_size"):
        arch.lenet5(input_size=31)


SEED_000_ALEXNET = [  # name, [HxWxC] as listed in seed 000's "Full (simplified) AlexNet architecture"
    ("conv1", (55, 55, 96)), ("pool1", (27, 27, 96)), ("norm1", (27, 27, 96)),
    ("conv2", (27, 27, 256)), ("pool2", (13, 13, 256)), ("norm2", (13, 13, 256)),
    ("conv3", (13, 13, 384)), ("conv4", (13, 13, 384)), ("conv5", (13, 13, 256)),
    ("pool3", (6, 6, 256)), ("fc6", (4096,)), ("fc7", (4096,)), ("fc8", (1000,)),
]


def test_alexnet_layer_by_layer_as_seed_000():
    s = arch.alexnet().summary()
    for name, hwc in SEED_000_ALEXNET:
        assert s[name].output_shape == (chw(*hwc) if len(hwc) == 3 else hwc), name
    # single tower, every layer by hand
    expected = [
        96 * 11 * 11 * 3 + 96, 256 * 5 * 5 * 96 + 256, 384 * 3 * 3 * 256 + 384, 384 * 3 * 3 * 384 + 384,
        256 * 3 * 3 * 384 + 256, 6 * 6 * 256 * 4096 + 4096, 4096 * 4096 + 4096, 4096 * 1000 + 1000,
    ]
    assert s.total_params == sum(expected) == 62_378_344
    assert abs(s.total_params - 62e6) / 62e6 < 0.01


def test_alexnet_two_towers_and_224():
    two = arch.alexnet(towers=2).summary()
    # conv2, conv4, conv5 see half the channels (48, 192, 192) on each GPU
    assert two.total_params == 62_378_344 - (256 * 5 * 5 * 48) - (384 * 3 * 3 * 192) - (256 * 3 * 3 * 192)
    assert two.total_params == 60_965_224                      # the paper's "60 million"
    s224 = arch.alexnet(input_size=224).summary()
    assert s224["conv1"].output_shape == (96, 55, 55)
    assert s224["conv1"].description.startswith("conv 11x11/4, 96, pad 2/1 (floor)")
    assert s224.total_params == 62_378_344


def test_alexnet_without_padding_as_seed_004():
    s = arch.alexnet(padded=False).summary()
    sizes = [s[n].output_shape[1] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool3")]
    assert sizes == [55, 27, 23, 11, 9, 7, 5, 2]
    seed_weights = [(11 * 11 * 3) * 96, (5 * 5 * 96) * 256, (3 * 3 * 256) * 384, (3 * 3 * 384) * 384,
                    (3 * 3 * 384) * 256, (2 * 2 * 256) * 4096, 4096 * 4096, 4096 * 1000]
    assert s.total_weights == sum(seed_weights) == 28_813_344
    # the seed's "Total Parameters: 27.55M" is the sum of its rounded figures, not of the products
    rounded = 34e3 + 0.6e6 + 0.8e6 + 1.327e6 + 0.8e6 + 4e6 + 16e6 + 4e6
    assert abs(rounded - 27.55e6) < 0.02e6
    check = {c.claim.stated: c for c in arch.alexnet(padded=False).check_claims()}
    assert not check["27.55M"].agrees and "28,813,344" in check["27.55M"].claim.note


def test_zfnet_sizes_from_the_paper():
    s = arch.zfnet().summary()
    sizes = [s[n].output_shape[1] for n in ("conv1", "pool1", "conv2", "pool2", "conv3", "conv4", "conv5", "pool3")]
    assert sizes == [110, 55, 26, 13, 13, 13, 13, 6]
    assert s["conv1"].params == 96 * 7 * 7 * 3 + 96
    big = arch.zfnet(conv345=(512, 1024, 512)).summary()
    alex = arch.alexnet().summary()
    # seed 004's per-layer differences, recomputed
    assert big["conv3"].weights - alex["conv3"].weights == (3 * 3 * 256) * (512 - 384) == 294_912
    assert big["conv4"].weights - alex["conv4"].weights == 3 * 3 * (512 * 1024 - 384 * 384) == 3_391_488
    assert big["conv5"].weights - alex["conv5"].weights == 3 * 3 * (1024 * 512 - 384 * 256) == 3_833_856
    assert big["fc6"].weights == 6 * 6 * 512 * 4096


# seed 000's VGG-16 table: (name, [HxWxC], memory as the seed's formula, params "not counting biases")
SEED_000_VGG16 = [
    ("conv1_1", (224, 224, 64), 224 * 224 * 64, (3 * 3 * 3) * 64),
    ("conv1_2", (224, 224, 64), 224 * 224 * 64, (3 * 3 * 64) * 64),
    ("pool1", (112, 112, 64), 112 * 112 * 64, 0),
    ("conv2_1", (112, 112, 128), 112 * 112 * 128, (3 * 3 * 64) * 128),
    ("conv2_2", (112, 112, 128), 112 * 112 * 128, (3 * 3 * 128) * 128),
    ("pool2", (56, 56, 128), 56 * 56 * 128, 0),
    ("conv3_1", (56, 56, 256), 56 * 56 * 256, (3 * 3 * 128) * 256),
    ("conv3_2", (56, 56, 256), 56 * 56 * 256, (3 * 3 * 256) * 256),
    ("conv3_3", (56, 56, 256), 56 * 56 * 256, (3 * 3 * 256) * 256),
    ("pool3", (28, 28, 256), 28 * 28 * 256, 0),
    ("conv4_1", (28, 28, 512), 28 * 28 * 512, (3 * 3 * 256) * 512),
    ("conv4_2", (28, 28, 512), 28 * 28 * 512, (3 * 3 * 512) * 512),
    ("conv4_3", (28, 28, 512), 28 * 28 * 512, (3 * 3 * 512) * 512),
    ("pool4", (14, 14, 512), 14 * 14 * 512, 0),
    ("conv5_1", (14, 14, 512), 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("conv5_2", (14, 14, 512), 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("conv5_3", (14, 14, 512), 14 * 14 * 512, (3 * 3 * 512) * 512),
    ("pool5", (7, 7, 512), 7 * 7 * 512, 0),
    ("fc6", (4096,), 4096, 7 * 7 * 512 * 4096),
    ("fc7", (4096,), 4096, 4096 * 4096),
    ("fc8", (1000,), 1000, 4096 * 1000),
]


def test_vgg16_matches_seed_000_table_row_by_row():
    s = arch.vgg16().summary()
    for name, hwc, memory, weights in SEED_000_VGG16:
        row = s[name]
        assert row.output_shape == (chw(*hwc) if len(hwc) == 3 else hwc), name
        assert row.memory == memory, name
        assert row.weights == weights, name
    seed_memory = 224 * 224 * 3 + sum(m for _, _, m, _ in SEED_000_VGG16)
    assert s.total_activations == seed_memory == 15_237_608
    assert s.total_weights == sum(w for *_, w in SEED_000_VGG16) == 138_344_128
    assert s.total_params == 138_357_544                   # published (paper: 138M; torchvision: exact)
    assert s.num_weight_layers == 16
    assert s.bytes_per_image == 4 * 15_237_608             # ~61 MB, not the seed's "~93MB"


def test_vgg16_seed_totals_are_flagged_with_reasons():
    checks = arch.vgg16().check_claims()
    by_stated = {c.claim.stated: c for c in checks}
    assert by_stated["138M"].agrees
    assert by_stated["138,357,544"].agrees
    memory = by_stated["TOTAL memory: 24M"]
    assert not memory.agrees and memory.computed == 15_237_608 and "15.2M" in memory.claim.note
    assert not by_stated["24M * 4 bytes ~= 93MB / image"].agrees
    assert not by_stated["non FC layers ~16M"].agrees and by_stated["non FC layers ~16M"].computed == 14_714_688
    assert not by_stated["FC layers ~122M"].agrees and by_stated["FC layers ~122M"].computed == 123_642_856


def test_vgg_where_parameters_and_memory_live():
    kinds = arch.vgg16().summary().by_kind()
    assert kinds["conv"]["params"] + kinds["fc"]["params"] == 138_357_544
    assert kinds["fc"]["params"] / 138_357_544 > 0.89          # most parameters in the FC layers
    assert kinds["conv"]["memory"] > 20 * kinds["fc"]["memory"]  # most memory in the conv layers


def test_vgg19_and_other_configs():
    assert arch.vgg19().summary().total_params == 143_667_240
    assert arch.vgg19().summary().num_weight_layers == 19
    # VGG paper, Table 2: parameters in millions for A, B, C, D, E
    for config, millions in zip("ABCDE", (133, 133, 134, 138, 144)):
        assert round(arch.vgg(config).summary().total_params / 1e6) == millions, config
    with pytest.raises(ValueError, match="config"):
        arch.vgg("F")


SEED_000_GOOGLENET = [  # rows of seed 000's GoogLeNet table: name, output HxWxC
    ("conv1", (112, 112, 64)), ("pool1", (56, 56, 64)), ("conv2", (56, 56, 192)), ("pool2", (28, 28, 192)),
    ("inception3a", (28, 28, 256)), ("inception3b", (28, 28, 480)), ("pool3", (14, 14, 480)),
    ("inception4a", (14, 14, 512)), ("inception4b", (14, 14, 512)), ("inception4c", (14, 14, 512)),
    ("inception4d", (14, 14, 528)), ("inception4e", (14, 14, 832)), ("pool4", (7, 7, 832)),
    ("inception5a", (7, 7, 832)), ("inception5b", (7, 7, 1024)), ("avgpool", (1, 1, 1024)),
    ("dropout", (1, 1, 1024)), ("fc", (1000,)),
]


def test_googlenet_table_sizes_and_totals():
    s = arch.googlenet().summary()
    for name, hwc in SEED_000_GOOGLENET:
        assert s[name].output_shape == (chw(*hwc) if len(hwc) == 3 else hwc), name
    assert 6.8e6 <= s.total_params <= 7.0e6
    assert abs(s.total_macs - 1.5e9) / 1.5e9 < 0.06          # "1.5 billion multiply-adds"
    # table "ops" of inception 3a, 3b: 128M, 304M
    assert round(s["inception3a"].macs / 1e6) == 128
    assert round(s["inception3b"].macs / 1e6) == 304
    claims = {c.claim.quantity: c for c in arch.googlenet().check_claims()}
    assert not claims["params"].agrees                        # "Only 5 million params!"
    assert not claims["row:conv1:weights"].agrees             # table's 2.7K vs 9,408


def test_resnets_against_published_figures():
    published = {  # torchvision's documented parameter counts; the paper's FLOPs (multiply-adds)
        18: (11_689_512, 1.8e9), 34: (21_797_672, 3.6e9), 50: (25_557_032, 3.8e9),
        101: (44_549_160, 7.6e9), 152: (60_192_808, 11.3e9),
    }
    for depth, (params, macs) in published.items():
        s = arch.resnet(depth).summary()
        assert s.total_params == params, depth
        assert abs(s.total_macs - macs) / macs < 0.05, depth
        assert s.output_shape == (1000,)
    r34 = arch.resnet34().summary()
    assert round(r34.total_macs / 1e8) == 37                    # 3.66G, "3.6 x 10^9"
    stage_sizes = [r34[f"conv{st}_1"].output_shape for st in (2, 3, 4, 5)]
    assert stage_sizes == [(64, 56, 56), (128, 28, 28), (256, 14, 14), (512, 7, 7)]
    assert arch.resnet50().summary()["conv5_3"].output_shape == (2048, 7, 7)
    assert abs(arch.resnet50().summary().total_params - 25.6e6) < 0.05e6
    # torchvision's v1.5 (stride on the 3x3) has the same parameters and ~4.1G multiply-adds
    v15 = arch.resnet50(stride_on="3x3").summary()
    assert v15.total_params == 25_557_032 and round(v15.total_macs / 1e8) == 41


def test_resnet_other_input_sizes():
    s = arch.resnet18(input_size=64, num_classes=10).summary()
    assert s["conv1"].output_shape == (64, 32, 32)
    assert s["conv5_2"].output_shape == (512, 2, 2)
    assert s.total_params == 11_689_512 - (512 * 1000 + 1000) + (512 * 10 + 10)


def test_alphago_policy_network():
    a = arch.alphago_policy()
    s = a.summary()
    assert a.input_shape == (48, 19, 19)
    assert s["conv1"].output_shape == (192, 19, 19)            # 5x5 pad 2 ("zero pads into 23x23")
    assert all(s[f"conv{i}"].output_shape == (192, 19, 19) for i in range(2, 13))
    assert s["conv13"].output_shape == (1, 19, 19)
    assert s.output_shape == (361,)
    assert s.num_weight_layers == 13
    by_hand = (5 * 5 * 48 * 192 + 192) + 11 * (3 * 3 * 192 * 192 + 192) + 192 + 19 * 19
    assert s.total_params == by_hand == 3_882_793
    assert arch.alphago_policy(softmax=True).summary().rows[-1].kind == "softmax"


def test_every_case_study_summarizes_and_documents_its_disagreements():
    for name, fn in arch.CASE_STUDIES.items():
        a = fn()
        assert a.reference, name
        s = a.summary()
        assert s.total_params > 0 and s.total_macs > 0 and s.bytes_per_image > 0
        for check in a.check_claims():
            # a published figure that the arithmetic does not reproduce must say why
            if not check.agrees:
                assert check.claim.note, (name, check.claim)
    assert arch.case_study("vgg16").name == "VGG-16"
    with pytest.raises(KeyError, match="choose from"):
        arch.case_study("inceptionv3")


# ------------------------------------------------------------------------------------------------
# renderings
# ------------------------------------------------------------------------------------------------


def test_text_and_markdown_tables():
    s = arch.alexnet().summary()
    text = s.to_text()
    lines = text.splitlines()
    assert lines[0].split() == ["layer", "type", "output", "params", "memory", "multiply-adds"]
    assert any(line.startswith("conv1") and "55x55x96" in line and "34,944" in line for line in lines)
    assert "62,378,344" in text and "in place" in text
    assert str(s) == text
    md = s.to_markdown()
    assert md.startswith("| layer | type | output | params | memory | multiply-adds |\n| --- |")
    assert "| conv1 | conv 11x11/4, 96, pad 0 | 55x55x96 | 34,944 |" in md
    assert s._repr_markdown_() == md
    # after the header line: the separator, the input, every row, the total
    assert md.count("\n| ") == 1 + 1 + len(s.rows) + 1


def test_records_are_plain_and_complete():
    s = arch.lenet5().summary()
    recs = s.records()
    assert len(recs) == len(s) == len(s.rows)
    assert recs[0]["name"] == "C1" and recs[0]["output_shape"] == (6, 28, 28) and recs[0]["params"] == 156
    assert set(s.totals()) >= {"params", "macs", "activations", "bytes_per_image"}
    expanded = arch.googlenet().summary(expand=True)
    assert len(expanded.records()) > len(arch.googlenet().summary().records())
    assert expanded.total_params == arch.googlenet().summary().total_params


def test_architecture_displays_briefly():
    a = arch.vgg16()
    assert repr(a) == "Architecture('VGG-16', input_shape=(3, 224, 224), 38 layers)"  # 13 conv + 13 relu + 5 pool + 3 fc + 2 relu + 2 dropout
    md = a._repr_markdown_()
    assert md.startswith("**VGG-16** (Simonyan") and "| conv1_1 |" in md


def test_claims_table_renders():
    md = arch.vgg16().claims_table()
    assert md.startswith("| quantity | source | stated | computed | agrees | note |")
    assert "**no**" in md and "15,237,608" in md


def test_claims_table_keeps_arithmetic_literal():
    """Products such as 7*7*512*4096 in the notes show as written, not as italics (nbconvert's renderer)."""
    import mistune

    for name in ("vgg16", "googlenet"):
        html = mistune.html(getattr(arch, name)().claims_table())
        assert "<table>" in html
        assert "<em>" not in html, name
        assert "<strong>no</strong>" in html or "agrees" in html
    assert "7*7*512*4096" in mistune.html(arch.vgg16().claims_table())
