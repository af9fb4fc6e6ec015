import math

import pytest

from speechssl2.registry import SCHEDULERS


def build(name, **kw):
    return SCHEDULERS.build({"name": name, **kw}, total_updates=kw.pop("total", 1000))


def test_registered():
    assert {"tri_stage", "linear", "poly", "constant"} <= set(SCHEDULERS.keys())


def test_tri_stage_boundaries():
    s = build("tri_stage")  # 100 warm-up, 400 hold, 500 decay
    assert s(0) == pytest.approx(0.01)
    assert s(50) == pytest.approx(0.01 + 0.99 * 0.5)
    assert s(100) == 1.0 and s(500) == 1.0
    assert s(501) < 1.0
    assert s(750) == pytest.approx(math.sqrt(0.05))  # half-way through the exponential decay
    assert s(1000) == pytest.approx(0.05) and s(5000) == pytest.approx(0.05)
    decay = [s(u) for u in range(500, 1001)]
    assert all(a > b for a, b in zip(decay[1:], decay[2:]))


def test_tri_stage_custom_fractions():
    s = build("tri_stage", warmup=0.2, hold=0.0, decay=0.5, init_scale=0.0, final_scale=0.1)
    assert s(0) == 0.0 and s(200) == 1.0 and s(450) == pytest.approx(math.sqrt(0.1))
    assert s(700) == pytest.approx(0.1) and s(999) == pytest.approx(0.1)


def test_linear_and_poly():
    lin = build("linear", warmup_updates=100)
    assert lin(0) == 0.0 and lin(50) == 0.5 and lin(100) == 1.0
    assert lin(550) == pytest.approx(0.5) and lin(1000) == 0.0 and lin(2000) == 0.0
    poly = build("poly", warmup_updates=0, power=2.0, final_scale=0.1)
    assert poly(0) == 1.0 and poly(500) == pytest.approx(0.1 + 0.9 * 0.25) and poly(1000) == pytest.approx(0.1)


def test_cosine_and_inverse_sqrt():
    cos = build("cosine", warmup_updates=100, final_scale=0.1)
    assert cos(50) == 0.5 and cos(100) == 1.0
    assert cos(550) == pytest.approx(0.1 + 0.9 * 0.5) and cos(1000) == pytest.approx(0.1) and cos(5000) == pytest.approx(0.1)
    assert cos(325) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi / 4)))
    inv = build("inverse_sqrt", warmup_updates=100)
    assert inv(50) == 0.5 and inv(100) == 1.0 and inv(400) == pytest.approx(0.5) and inv(10_000) == pytest.approx(0.1)


def test_cosine_warmup_starts_at_init_scale():
    """fairseq's --warmup-init-lr 1e-7 with --lr 5e-3 (wav2vec 2019): a ramp from 2e-5 x peak."""
    cos = build("cosine", warmup_updates=500, final_scale=0.0002, init_scale=2e-5)
    assert cos(0) == pytest.approx(2e-5) and cos(250) == pytest.approx(2e-5 + (1 - 2e-5) * 0.5)
    assert cos(500) == 1.0 and cos(1000) == pytest.approx(0.0002)
    assert build("cosine", warmup_updates=500)(0) == 0.0  # default: from zero, as before


def test_constant():
    c = build("constant", warmup_updates=10)
    assert c(5) == 0.5 and c(10) == 1.0 and c(10**6) == 1.0
    assert build("constant")(0) == 1.0


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"name": "tri_stage", "warmup": 0.5, "hold": 0.4, "decay": 0.5}, "summing to <= 1"),
        ({"name": "tri_stage", "final_scale": 0.0}, "final_scale in \\(0, 1\\]"),
        ({"name": "linear", "warmup_updates": 2000}, "warmup_updates must be in \\[0, total_updates=1000\\]"),
        ({"name": "poly", "power": -1.0}, "need power > 0"),
        ({"name": "cosine", "final_scale": 2.0}, "final_scale must be in \\[0, 1\\]"),
        ({"name": "cosine", "init_scale": -0.1}, "init_scale must be in \\[0, 1\\]"),
        ({"name": "inverse_sqrt", "warmup_updates": 0}, "warmup_updates must be >= 1"),
    ],
)
def test_bad_arguments(spec, message):
    with pytest.raises(ValueError, match=message):
        SCHEDULERS.build(spec, total_updates=1000)


def test_unknown_argument_lists_valid_ones():
    with pytest.raises(KeyError, match="unknown argument 'warmup_steps'"):
        SCHEDULERS.build({"name": "linear", "warmup_steps": 3}, total_updates=10)
