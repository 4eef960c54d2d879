"""Reports of a run: the summary table (terminal, summary.json, summary.md), the radar chart,
the Allure results, and the redaction of personal data in anything people read."""
