"""The feature probes of tests/_jaxlib_features.py, checked on the installed jax/jaxlib."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jaxlib
import pytest

from tests import _jaxlib_features as features


def _compiled(f, *shapes):
    return jax.jit(f).lower(*(jax.ShapeDtypeStruct(s, jnp.float32) for s in shapes)).compile()


def test_jaxlib_version_is_the_installed_release():
    version = features.jaxlib_version()
    assert len(version) >= 3 and all(isinstance(part, int) for part in version)
    assert jaxlib.__version__.startswith(".".join(map(str, version[:3])))
    assert features._release("0.10.2") == (0, 10, 2)
    assert features._release("0.9.0.1") == (0, 9, 0, 1)
    assert features._release("0.8.0.dev20250101") == (0, 8, 0)


def test_has_compile_option_accepts_known_and_rejects_unknown_options():
    assert features.has_compile_option("xla_cpu_enable_fast_math", False)
    assert not features.has_compile_option("xla_no_such_option_anywhere", True)


def test_probes_are_cached():
    for probe in (
        features.jaxlib_version,
        features.hlo_text_available,
        features.memory_analysis_available,
        features.memory_bounds_measured,
        features.ynn_fusion_available,
    ):
        assert probe() == probe()
        assert probe.cache_info().hits >= 1


def test_hlo_text_probe_matches_a_compiled_module():
    if not features.hlo_text_available():
        pytest.skip(f"jaxlib {jaxlib.__version__} prints no compiled HLO")
    text = _compiled(lambda a: jnp.sin(a) * 2, (4,)).as_text()
    assert "ENTRY" in text and "sine" in text


def test_memory_analysis_probe_reports_real_sizes():
    if not features.memory_analysis_available():
        pytest.skip(f"jaxlib {jaxlib.__version__} reports no memory analysis")
    memory = _compiled(lambda a: a * 2, (256, 128)).memory_analysis()
    assert memory.output_size_in_bytes == 256 * 128 * 4
    assert memory.temp_size_in_bytes >= 0


def test_memory_bounds_need_the_measured_release():
    if features.memory_bounds_measured():
        assert features.memory_analysis_available()
        assert features.jaxlib_version() >= features.MEMORY_BOUNDS_JAXLIB
    else:
        assert not features.memory_analysis_available() or features.jaxlib_version() < features.MEMORY_BOUNDS_JAXLIB


def test_ynn_fusion_probe_agrees_with_the_option_and_the_hlo():
    available = features.ynn_fusion_available()
    if jax.default_backend() != "cpu":
        assert not available
        return
    option = features.has_compile_option(features.YNN_FUSION_OPTION, features.YNN_FUSION_VALUE)
    assert available == (option and "__ynn_fusion" in _compiled(lambda a, b: a @ b, (8, 8), (8, 8)).as_text())
