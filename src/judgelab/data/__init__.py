"""Datasets (L1): the record format, dataset sources, study splits, data cards, and the synthetic
world with its checklist gold (``judgelab.data.world``).

Submodules are imported where they are used; this package imports only the record format.
"""

from judgelab.data.records import Labels, Record, load_records, prompt_hash, save_records

__all__ = ["Labels", "Record", "load_records", "prompt_hash", "save_records"]
