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


@pytest.fixture(scope="session", autouse=True)
def compilation_cache(tmp_path_factory):
    """One persistent XLA cache for the whole session (a fresh folder, so a run starts
    cold): the many tiny runs that build the same programs compile each once.  Set
    SGVS_TEST_CACHE=none to compile everything in every test."""
    from sgvs_jax import compilation
    if os.environ.get("SGVS_TEST_CACHE", "").lower() == "none":
        return None
    return compilation.enable(str(tmp_path_factory.mktemp("xla_cache")))
