"""cs_utils.shapes against the worked examples of the seed lectures."""

import pytest

from cs_utils.shapes import conv_output_size, pool_output_size, same_padding, conv_output_shape


@pytest.mark.parametrize("stride, expected", [(1, 5), (2, 3)])
def test_seed_7x7_input_3x3_filter(stride, expected):
    # Seed 000: a 7x7 input and a 3x3 filter give 5x5 at stride 1, 3x3 at stride 2.
    assert conv_output_size(7, 3, stride) == expected


def test_seed_7x7_stride_3_does_not_fit():
    with pytest.raises(ValueError, match=r"\(7 - 3 \+ 2\*0\)/3 \+ 1 = 2\.33 is not an integer"):
        conv_output_size(7, 3, stride=3)


def test_seed_32x32x3_ten_5x5_filters_pad_2():
    # Seed 000: 32x32x3 input, ten 5x5 filters, stride 1, pad 2 -> 32x32x10.
    assert conv_output_shape((1, 3, 32, 32), (10, 3, 5, 5), stride=1, pad=2) == (1, 10, 32, 32)


def test_alexnet_conv1_and_pool1():
    # Seed 000: 227x227x3, 96 11x11 filters at stride 4 -> 55x55x96; 3x3 pool stride 2 -> 27x27.
    assert conv_output_size(227, 11, stride=4) == 55
    assert pool_output_size(55, 3, stride=2) == 27


def test_seed_004_padding_and_stride_exercises():
    # W2 = (W1 - F + 2P)/S + 1 with the numbers of seed 004's exercises.
    assert conv_output_size(227, 11, 4, 0) == 55
    assert conv_output_size(5, 3, 1, 1) == 5
    assert conv_output_size(32, 5, 1, 0) == 28


def test_pool_does_not_tile():
    with pytest.raises(ValueError, match=r"\(7 - 2\)/2 \+ 1 = 3\.50 is not an integer"):
        pool_output_size(7, 2, 2)


def test_same_padding_keeps_size():
    for f in (1, 3, 5, 7, 11):
        assert conv_output_size(17, f, 1, same_padding(f)) == 17
    with pytest.raises(ValueError, match="odd filter"):
        same_padding(4)


@pytest.mark.parametrize(
    "call, exc, fragment",
    [
        (lambda: conv_output_size(5, 3, pad=-1), ValueError, "pad must be non-negative"),
        (lambda: conv_output_size(5, 3, stride=0), ValueError, "stride must be positive"),
        (lambda: conv_output_size(5, 9, pad=1), ValueError, "f=9 is larger than the padded input n + 2*pad = 5 + 2*1 = 7"),
        (lambda: conv_output_size(5.0, 3), TypeError, "n must be an integer"),
        (lambda: conv_output_size(5, True), TypeError, "f must be an integer"),
        (lambda: pool_output_size(3, 4, 1), ValueError, "size=4 is larger than the input n=3"),
    ],
)
def test_bad_hyper_parameters_name_the_parameter(call, exc, fragment):
    with pytest.raises(exc) as info:
        call()
    assert fragment in str(info.value)
