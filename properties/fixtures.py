"""The fixtures a target's tests use, registered by properties.session when convcheck is
active (so no other project sees them)."""
import pytest


@pytest.fixture(scope="session")
def target(pytestconfig):
    """The target under test (properties.target.Target)."""
    return pytestconfig.convcheck_target
