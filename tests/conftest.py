"""Test session setup, before jax loads: 8 simulated CPU devices for the sharding tests, XLA's
lowest backend optimization (half the compile time; tests run few, tiny steps), and a
session-wide persistent compilation cache so a model compiled twice compiles once."""

import os
import tempfile

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
                           " --xla_backend_optimization_level=0").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ["JAX_COMPILATION_CACHE_DIR"] = tempfile.mkdtemp(prefix="nas-test-jax-cache-")
os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
os.environ["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"


if "MUTANT_UNDER_TEST" in os.environ:  # under mutmut (`make mutation`) only
    import jax
    import pytest

    @pytest.fixture(autouse=True)
    def _trace_afresh_for_mutmut():
        """mutmut's mapping run (which tests reach which function) records only the calls it
        sees, and a jitted function's Python body runs only when traced: with a warm jit cache
        every later test with the same shapes would look unreached, and mutmut would never run
        it against that function's mutants. So the mapping run traces every test afresh."""
        if os.environ["MUTANT_UNDER_TEST"] == "stats":
            jax.clear_caches()
        yield
