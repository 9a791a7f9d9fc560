"""The tests a target is checked with: one pytest item per declared property
(properties.catalog.ALL_PROPERTIES) and the LeNet checks of its layers
(properties.lenet_checks, marked `lenet`). The module ships with the package, so the
installed `convcheck TARGET` command runs it from any folder; tests/test_properties.py
collects the same tests inside the project.
"""
import pytest

from properties import lenet_checks as lenet
from properties.catalog import ALL_PROPERTIES


@pytest.mark.parametrize("prop", ALL_PROPERTIES, ids=lambda p: p.test_id)
def test_property(prop, target, device):
    prop.verify(target.on(device))


def subject(name):
    """File a test's outcome under a contract name in the report (properties.session)."""
    def mark(fn):
        fn.convcheck_subject = name
        return pytest.mark.lenet(fn)
    return mark


@pytest.fixture(scope="module")
def lenet_determinism():
    with lenet.deterministic_cpu():
        yield


@subject("BatchNorm")
def test_target_batchnorm_matches_torch_in_bn_lenet(target, lenet_determinism):
    """Same weights, same batches: the target's BatchNorm in BN-LeNet gives torch's training
    losses step by step, and afterwards torch's evaluation-mode logits."""
    lenet.check_batchnorm_in_bn_lenet(target)


@subject("BatchNorm")
def test_target_batchnorm_bn_lenet_reaches_threshold(target, lenet_determinism):
    lenet.check_batchnorm_bn_lenet_threshold(target)


@subject("conv2d")
def test_target_conv2d_in_lenet(target, lenet_determinism):
    lenet.check_layer_in_lenet(target, "conv2d")


@subject("max_pool2d")
def test_target_max_pool2d_in_lenet(target, lenet_determinism):
    lenet.check_layer_in_lenet(target, "max_pool2d")


@subject("avg_pool2d")
def test_target_avg_pool2d_in_lenet(target, lenet_determinism):
    lenet.check_layer_in_lenet(target, "avg_pool2d")


@subject("LeNet")
def test_target_lenet_reaches_threshold(target, lenet_determinism):
    lenet.check_lenet_threshold(target)
