"""Test and demo support that ships with kaapana.

It lives inside the package (not under ``tests/``) because demo deployments, benchmarks and
downstream projects need the same reproducible data as the test suite, without real patient
data ever being required.
"""

from kaapana.testing.synthetic import (
    GENERATOR_VERSION,
    SEGMENT_LABELS,
    Phantom,
    ct_segmentation,
    ct_series,
    demo_cohort,
    mr_series,
    phantom_slice,
    phantom_volume,
    write_datasets,
)

__all__ = [
    "GENERATOR_VERSION",
    "SEGMENT_LABELS",
    "Phantom",
    "ct_segmentation",
    "ct_series",
    "demo_cohort",
    "mr_series",
    "phantom_slice",
    "phantom_volume",
    "write_datasets",
]
