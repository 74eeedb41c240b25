import os

import pytest

SHARED_DATA = os.environ.get(
    "SGVS_SHARED_DATA",
    os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data")))


@pytest.fixture(scope="session")
def shared_data():
    if not os.path.isdir(os.path.join(SHARED_DATA, "tvsum")):
        pytest.skip(f"shared data not found at {SHARED_DATA} (set SGVS_SHARED_DATA); "
                    "real-data tests skipped")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tvsum_videos(shared_data):
    from sgvs_jax.data.tvsum import build_tvsum
    return build_tvsum(shared_data)
