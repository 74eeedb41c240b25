import numpy as np

from sgvs_jax.data.kts import calc_scatters, cpd_nonlin, segment_features


def reference_cpd_nonlin(K, ncp, lmin=1, lmax=100000):
    """The loop of the reference cpd_nonlin.py, kept verbatim in spirit."""
    m, n = ncp, K.shape[0]
    J = calc_scatters(K)
    I = 1e101 * np.ones((m + 1, n + 1))
    I[0, lmin:lmax] = J[0, lmin - 1:lmax - 1]
    p = np.zeros((m + 1, n + 1), int)
    for k in range(1, m + 1):
        for l in range((k + 1) * lmin, n + 1):
            tmin, tmax = max(k * lmin, l - lmax), l - lmin + 1
            c = J[tmin:tmax, l - 1] + I[k - 1, tmin:tmax]
            I[k, l] = np.min(c)
            p[k, l] = np.argmin(c) + tmin
    cps, cur = np.zeros(m, int), n
    for k in range(m, 0, -1):
        cps[k - 1] = p[k, cur]
        cur = cps[k - 1]
    return cps


def test_scatter_is_within_segment_variance():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3))
    J = calc_scatters(x @ x.T)
    seg = x[3:8]
    np.testing.assert_allclose(J[3, 7], ((seg - seg.mean(0)) ** 2).sum(), rtol=1e-9)


def test_vectorised_dp_equals_reference_loop():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(40, 8))
    y /= np.linalg.norm(y, axis=1, keepdims=True)
    K = y @ y.T
    for lmin, lmax in [(1, 100000), (2, 10), (3, 7)]:
        np.testing.assert_array_equal(cpd_nonlin(K, 5, lmin, lmax)[0], reference_cpd_nonlin(K, 5, lmin, lmax))


def test_recovers_planted_boundaries():
    rng = np.random.default_rng(0)
    true = [0, 30, 45, 90, 120, 200]
    centres = rng.normal(size=(5, 64))
    x = np.concatenate([centres[i] + 0.3 * rng.normal(size=(true[i + 1] - true[i], 64)) for i in range(5)])
    shots = segment_features(x)  # cpd_auto picks the number of shots
    np.testing.assert_array_equal(shots[:, 0], true[:-1])
    np.testing.assert_array_equal(shots[:, 1], np.array(true[1:]) - 1)
    fixed = segment_features(x, mean_shot_steps=40.0)  # 5 shots fixed
    np.testing.assert_array_equal(fixed[:, 0], true[:-1])
