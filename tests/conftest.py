from __future__ import annotations

import torch

# Two cores: keep each test process to a predictable thread count.
torch.set_num_threads(min(2, torch.get_num_threads()))

# Hypothesis profiles of the fuzz suite (tests/test_fuzz.py): "ci" by default (a few hundred
# examples in all); `pytest tests/test_fuzz.py --hypothesis-profile thorough` runs 20x more.
try:
    from hypothesis import HealthCheck, settings
except ImportError:  # pragma: no cover - hypothesis is in the test extra
    pass
else:
    settings.register_profile(
        "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
    )
    settings.register_profile(
        "thorough", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck)
    )
    settings.load_profile("ci")
