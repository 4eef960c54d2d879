"""Where evaluation data comes from: a local DecodingTrust `data/` folder, the DecodingTrust
dataset on the hub, or the embedded probe sets (`probes/`). Dimensions read through one API:
`TrustData.pick` chooses the reader for the run's source, and the readers here turn a missing
file into MissingDataError and an unreadable one into CorruptDataError."""

from trustgate.data.sources import (
    HUB_DATASET,
    TrustData,
    from_hub,
    hub_rows,
    read_csv,
    read_json,
    read_jsonl,
    read_npy,
    read_text,
    resolve_trust_data,
)

__all__ = [
    "HUB_DATASET",
    "TrustData",
    "from_hub",
    "hub_rows",
    "read_csv",
    "read_json",
    "read_jsonl",
    "read_npy",
    "read_text",
    "resolve_trust_data",
]
