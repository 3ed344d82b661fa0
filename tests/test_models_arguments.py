"""analysis.models: the arguments every builder shares (kind, in_shape, num_classes) are checked
when the model is built, with a ValueError that names them, not at its first forward."""

import numpy as np
import pytest
import torch

from analysis import models


@pytest.mark.parametrize("name", ["mlp", "bnn-mlp", "cnn", "bnn-cnn"])
@pytest.mark.parametrize("num_classes", [0, 2.5, True])
def test_num_classes_must_be_a_count(name, num_classes):
    """num_classes=0 built a model whose first forward was an IndexError inside batch_norm;
    2.5 and True were torch's 'empty(): argument size must be tuple of ints'."""
    with pytest.raises(ValueError, match=f"num_classes must be a positive integer, got {num_classes!r}"):
        models.build(name, width=4, num_classes=num_classes)


@pytest.mark.parametrize("name", ["mlp", "bnn-mlp"])
@pytest.mark.parametrize("in_shape", [784, (0,), (1, 0, 28), (1, 28.0, 28), ()])
def test_mlp_in_shape_must_be_positive_integers(name, in_shape):
    """in_shape=784 said "bad option: 'int' object is not iterable"; (0,) or (1, 0, 28) built a
    layer with no inputs; (1, 28.0, 28) torch's 'empty(): ... must be tuple of ints'."""
    with pytest.raises(ValueError, match=r"in_shape must be the shape of one input, a tuple of "
                                         r"positive integers such as \(1, 28, 28\)"):
        models.build(name, width=4, depth=1, in_shape=in_shape)


@pytest.mark.parametrize("in_shape", [(0, 32, 32), (3, 32, 32.0)])
def test_cnn_in_shape_must_be_positive_integers(in_shape):
    """(0, 32, 32) built a convolution over no channels."""
    with pytest.raises(ValueError, match="in_shape must be the shape of one input"):
        models.build("cnn", width=4, in_shape=in_shape)


def test_a_shape_of_any_integer_kind_builds_the_same_model():
    """torch.Size, a list and numpy integers are shapes too; the model runs on that input."""
    for in_shape in [torch.Size([1, 8, 8]), [1, 8, 8], tuple(np.array([1, 8, 8]))]:
        model = models.build("bnn-mlp", width=4, depth=1, in_shape=in_shape, num_classes=3)
        assert model[1].in_features == 64
        assert model.eval()(torch.randn(2, 1, 8, 8)).shape == (2, 3)
    assert models.build("cnn", width=4, in_shape=np.array([3, 8, 8]))[0].in_channels == 3


@pytest.mark.parametrize("builder", [models.mlp, models.cnn])
def test_an_unknown_kind_is_refused(builder):
    """mlp('bnnn') built a float net without its ReLUs: a linear model under a wrong name."""
    with pytest.raises(ValueError, match="kind must be one of 'bnn', 'qnn', 'float', got 'bnnn'"):
        builder("bnnn", width=4)
