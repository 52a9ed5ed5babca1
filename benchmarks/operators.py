"""Operator benchmark: segment-ct per volume on synthetic 512x512x200 CT.

The target is <= 10 s and <= 2 GB per volume on one core. Each volume is timed in two parts,
the segmentation itself (checking and stacking the series, thresholds, components) and the
DICOM SEG encoding by highdicom, as wall time and as the CPU time of the process (what one core
spends, whatever else runs on the machine). The peak of memory allocated while doing both is
taken with tracemalloc (numpy reports its buffers to it) in a second pass, on top of the input
datasets already in memory; the process's peak resident size is reported too.

Usage: ``python benchmarks/operators.py [--quick] [--volumes N] [--out FILE]``; JSON goes to
stdout (and FILE), progress to stderr.
"""

import argparse
import resource
import sys
import time
import tracemalloc

from pydicom import Dataset

from _common import MB, Report, add_output_arguments, median, tool_versions
from kaapana.operators.segment_ct import CT_SEGMENTS, SegmentCTParameters, segment_ct_masks
from kaapana.operators.series import build_segmentation, load_volume
from kaapana.testing.synthetic import ct_series

TARGET_SECONDS = 10.0
TARGET_BYTES = 2_000 * MB


def _segment(datasets: list[Dataset]) -> float:
    """Seconds from the series to its SEG in memory; returns when the segmentation finished."""
    parameters = SegmentCTParameters()
    volume = load_volume(datasets, modalities=("CT",))
    masks = segment_ct_masks(volume, parameters)
    segmented = time.perf_counter()
    build_segmentation(
        volume.datasets,
        masks,
        CT_SEGMENTS,
        operator="segment-ct",
        parameters=parameters.model_dump(),
        series_description="SEG benchmark",
    )
    return segmented


def _segment_one(seed: int, rows: int, slices: int) -> dict[str, float]:
    print(f"generating CT {rows}x{rows}x{slices} seed {seed}", file=sys.stderr)
    datasets = ct_series(rows=rows, columns=rows, slices=slices, seed=seed)
    print("segmenting", file=sys.stderr)
    start, cpu_start = time.perf_counter(), time.process_time()
    segmented = _segment(datasets)
    done, cpu_done = time.perf_counter(), time.process_time()
    # A second pass for memory: tracemalloc slows Python code down and would skew the timing.
    tracemalloc.start()
    _segment(datasets)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {
        "segmentation_s": round(segmented - start, 3),
        "seg_encoding_s": round(done - segmented, 3),
        "total_s": round(done - start, 3),
        "cpu_s": round(cpu_done - cpu_start, 3),
        "peak_allocated_mb": round(peak / MB, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="128x128x48 volumes, for a smoke run")
    parser.add_argument("--volumes", type=int, default=3, help="how many volumes to segment")
    add_output_arguments(parser)
    args = parser.parse_args()
    rows, slices = (128, 48) if args.quick else (512, 200)
    report = Report(
        "operators",
        environment={**tool_versions(), "volume": f"{rows}x{rows}x{slices}"},
    )
    runs = [_segment_one(seed, rows, slices) for seed in range(args.volumes)]
    report.cases.append({"name": "segment-ct", "volumes": runs})
    total = median([run["total_s"] for run in runs])
    cpu = median([run["cpu_s"] for run in runs])
    peak = max(run["peak_allocated_mb"] for run in runs) * MB
    # Budget over use: >= 1 means the volume stayed within the target.
    report.ratio("segment_ct_time_budget_over_median_s", TARGET_SECONDS, total, 1.0)
    # CPU time is what one core spends, whatever else runs on the machine.
    report.ratio("segment_ct_time_budget_over_median_cpu_s", TARGET_SECONDS, cpu, 1.0)
    report.ratio("segment_ct_memory_budget_over_peak", TARGET_BYTES, peak, 1.0)
    report.environment["peak_rss_mb"] = round(
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / MB, 1
    )
    report.emit(args.out)


if __name__ == "__main__":
    main()
