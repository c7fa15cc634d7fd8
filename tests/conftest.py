"""Settings shared by the whole test suite."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# "ci" keeps every property test inside the 10-minute CI budget across four
# interpreters; "dev" digs deeper when run by hand: HYPOTHESIS_PROFILE=dev pytest.
settings.register_profile(
    "ci", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.register_profile("dev", max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
