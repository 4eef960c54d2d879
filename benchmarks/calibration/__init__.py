"""Measure the gate where its guarantee is weakest, through the gate's own decision kernel.

The dense model's stored per-item outcomes (the shipped pool: the embedded model's ci run, with a
paired gptq4 run) are the population. A replicate draws each scenario's sample keys with
replacement (as many as the ci or the release profile runs), makes a synthetic variant with a
KNOWN true drop, and judges it with the gate's own pieces: the dimension's declared metric and
combine weights, the policy resolved from thresholds.toml, the look sizes, the spending function
and the kernel's evidence and verdict (trustgate.gate.kernel). Nothing here decides by itself:
a draw is a weighting of the pool's items (a key drawn k times weighs k), the very input the
kernel's weighted metrics take.

Modules: pools (the extract of per-item outcomes), population (a scenario's keys, churn donors,
worst outcomes and the degradation that makes a true drop), simulate (replicates through the
kernel), report (tables, docs/calibration.md and the last line), cli.
"""
