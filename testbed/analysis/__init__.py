"""The analysis of a run's tidy probe dataset, with pandas (pure: no root, no subprocess).

Pipeline: experiment/ writes results/<run>/probes.parquet|csv -> **analysis/** -> report/.

- dataset: load_dataset(run_dir) -> a typed DataFrame (parquet, else CSV); load_meta, from_rows
- reachability: source x destination matrices per step and protocol (share connected, outcome,
  expected, observed-minus-expected difference, mismatches)
- nat: the NAT-free table per kind of communication (sent vs observed source address)
- verdict: expected vs observed confusion counts, mismatches, the run's verdict, a summary
- spread: Service requests per endpoint with a chi-square uniformity test
- performance: latency percentiles, throughput (when the dataset has it)

Every function accepts any frame with the documented columns (testbed.experiment.records
.COLUMNS), including an empty one and one without Services.
"""

from .dataset import ResultsError, from_rows, load_dataset, load_meta, load_plan, normalize
from .nat import nat_free, nat_table, nat_verdicts, nat_violations
from .performance import latency_percentiles, latency_samples, throughput_summary
from .reachability import (
    Matrix,
    difference_matrix,
    outcome_matrix,
    reachability_matrices,
    reachability_matrix,
    share_matrix,
)
from .spread import endpoints_from_plan, load_spread, spread_tests
from .stats import ChiSquare, chi2_sf, chisquare_uniform
from .verdict import Verdict, confusion, confusion_by_step, mismatches, run_verdict, summary_table

__all__ = [
    "ChiSquare",
    "Matrix",
    "ResultsError",
    "Verdict",
    "chi2_sf",
    "chisquare_uniform",
    "confusion",
    "confusion_by_step",
    "difference_matrix",
    "endpoints_from_plan",
    "from_rows",
    "latency_percentiles",
    "latency_samples",
    "load_dataset",
    "load_meta",
    "load_plan",
    "load_spread",
    "mismatches",
    "nat_free",
    "nat_table",
    "nat_verdicts",
    "nat_violations",
    "normalize",
    "outcome_matrix",
    "reachability_matrix",
    "reachability_matrices",
    "run_verdict",
    "share_matrix",
    "spread_tests",
    "summary_table",
    "throughput_summary",
]
