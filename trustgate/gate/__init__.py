"""The gate: the policy (thresholds.toml), paired statistics, the comparison of a variant with
its dense base on the same items, calibration-seed groups, and the check the fixtures call."""
