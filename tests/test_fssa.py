"""FSSA (sgvs_jax/models/fssa.py) and the selector's score S_t = a c(cos) + (1 - a) h_t."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sgvs_jax.models.fssa import cosine, cosine_importance
from sgvs_jax.models.layers import Compress, TransformerConfig
from sgvs_jax.models.selector import Selector


def inputs(B=2, T=10, D=16, L=3, Ds=8, seed=0):
    r = np.random.default_rng(seed)
    mask = np.ones((B, T), bool)
    mask[1, 6:] = False
    token_mask = np.ones((B, L), bool)
    token_mask[1, 2:] = False
    return (jnp.asarray(r.normal(size=(B, T, D)), jnp.float32), jnp.asarray(mask),
            jnp.asarray(r.normal(size=(B, L, Ds)), jnp.float32), jnp.asarray(token_mask),
            jnp.asarray(r.normal(size=(B, T, Ds)), jnp.float32))


@pytest.mark.parametrize("term", ["relu", "affine"])
@pytest.mark.parametrize("frame_semantics", [False, True])
def test_score_is_the_fssa_mix(term, frame_semantics):
    x, mask, tokens, token_mask, frame_sem = inputs()
    sel = Selector(config=TransformerConfig(d_model=16, num_heads=2, mlp_dim=32, dropout=0.0), num_layers=1,
                   use_frame_semantics=frame_semantics, cosine_term=term)
    params = sel.init(jax.random.PRNGKey(0), x, mask, tokens, token_mask, frame_sem)
    o = jax.device_get(sel.apply(params, x, mask, tokens, token_mask, frame_sem))
    a = float(o["alpha"])
    expected = a * np.asarray(cosine_importance(o["cos"], term)) + (1 - a) * o["h"]
    np.testing.assert_allclose(o["scores"][mask], expected[mask], rtol=1e-6)
    assert np.all(o["scores"][~np.asarray(mask)] == 0) and a == pytest.approx(0.5)
    np.testing.assert_allclose(o["attention"].sum(-1)[np.asarray(mask)], 1.0, rtol=1e-5)  # over real tokens
    assert np.all(o["attention"][1, :, 2:] == 0)  # a padded token gets no weight
    if frame_semantics:  # X_t is the frame's own CLIP feature
        np.testing.assert_array_equal(o["frame_view"], frame_sem)


def test_cosine_and_its_importance():
    a = jnp.asarray([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    b = jnp.asarray([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]])
    np.testing.assert_allclose(cosine(a, b), [1.0, 0.0, -1.0], atol=1e-6)
    np.testing.assert_allclose(cosine_importance(cosine(a, b), "relu"), [1.0, 0.0, 0.0], atol=1e-6)
    np.testing.assert_allclose(cosine_importance(cosine(a, b), "affine"), [1.0, 0.5, 0.0], atol=1e-6)
    with pytest.raises(ValueError, match="model.cosine_term 'x'"):
        cosine_importance(cosine(a, b), "x")


def test_visual_only_selector_scores_h():
    x, mask, tokens, token_mask, frame_sem = inputs()
    sel = Selector(config=TransformerConfig(d_model=16, num_heads=2, mlp_dim=32, dropout=0.0), num_layers=1,
                   use_fssa=False)
    params = sel.init(jax.random.PRNGKey(0), x, mask, tokens, token_mask, frame_sem)
    o = jax.device_get(sel.apply(params, x, mask, tokens, token_mask, frame_sem))
    assert "alpha" not in o and "fssa" not in params["params"]
    np.testing.assert_allclose(o["scores"][np.asarray(mask)], o["h"][np.asarray(mask)])


def test_without_tokens_t_is_the_frames_own_clip_feature():
    """CLIP frame features and no title: cos(X_t, T_t) with T_t the frame's CLIP feature and
    X_t the learned projection of its visual feature; the tokens are not read."""
    x, mask, tokens, token_mask, frame_sem = inputs()
    sel = Selector(config=TransformerConfig(d_model=16, num_heads=2, mlp_dim=32, dropout=0.0), num_layers=1,
                   use_frame_semantics=True, use_tokens=False)
    params = sel.init(jax.random.PRNGKey(0), x, mask, tokens, token_mask, frame_sem)
    o = jax.device_get(sel.apply(params, x, mask, tokens, token_mask, frame_sem))
    np.testing.assert_allclose(o["cos"], cosine(o["frame_view"], frame_sem), rtol=1e-5, atol=1e-6)
    assert not np.allclose(o["frame_view"], frame_sem) and o["frame_view"].shape == frame_sem.shape
    other = jax.device_get(sel.apply(params, x, mask, tokens * 0 + 7.0, ~token_mask, frame_sem))
    np.testing.assert_array_equal(other["scores"], o["scores"])
    with pytest.raises(ValueError, match="needs semantic tokens or CLIP frame features"):
        Selector(config=TransformerConfig(d_model=16, num_heads=2, mlp_dim=32), use_tokens=False).init(
            jax.random.PRNGKey(0), x, mask, tokens, token_mask, frame_sem)


def test_step_scale_reaches_the_selector_only_without_its_layer_norm():
    """visual_norm='layer' gives the selector the projection of each step's standardized
    features (its scale removed, as a LayerNorm before the projection); 'none' lets the
    scale through, so a step's score can follow how strong its features are
    (model.visual_norm).  The generator's view ('raw') is x W either way."""
    x, mask, tokens, token_mask, frame_sem = inputs(D=24)
    louder = x.at[:, 3].multiply(4.0)
    diffs = {}
    sel = Selector(config=TransformerConfig(d_model=16, num_heads=2, mlp_dim=32, dropout=0.0), num_layers=1)
    for norm in ("layer", "none"):
        compress = Compress(d_model=16, visual_norm=norm)
        pc = compress.init(jax.random.PRNGKey(1), x)
        c = compress.apply(pc, x)
        np.testing.assert_allclose(c["raw"], x @ pc["params"]["kernel"], rtol=1e-5, atol=1e-6)
        if norm == "layer":
            ln = (x - x.mean(-1, keepdims=True)) / jnp.sqrt(x.var(-1, keepdims=True) + 1e-6)
            np.testing.assert_allclose(c["selector"], ln @ pc["params"]["kernel"], rtol=1e-4, atol=1e-4)
        params = sel.init(jax.random.PRNGKey(0), c["selector"], mask, tokens, token_mask, frame_sem)
        a, b = (np.asarray(sel.apply(params, compress.apply(pc, v)["selector"], mask, tokens, token_mask,
                                     frame_sem)["scores"]) for v in (x, louder))
        diffs[norm] = np.abs(a - b).max()
    assert diffs["layer"] < 1e-4 < 1e-2 < diffs["none"]
