"""Salted hashes of training sample ids, so a checkpoint can tell whether a cohort shares samples with its training
set without carrying (or needing) the training data: `config.training_samples_hash` holds the salt and one short
hash per training sample; `shared_samples` hashes a cohort's ids with the same salt and counts the matches.

TCGA barcodes are reduced to the patient (`TCGA-XX-XXXX`), so a tumour judged under another aliquot or another
normalisation of the same patient (tcga3 against tcga13) still counts as shared. 10 hex digits (40 bits) keep a
chance collision between 10,000 training and 10,000 cohort ids below 1e-4, at ~13 bytes per sample in config.json.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable

HASH_ALGORITHM = "sha256(salt:patient-or-sample id)[:10]"
HASH_DIGITS = 10
_TCGA_PATIENT = re.compile(r"^(TCGA-[A-Z0-9]{2}-[A-Z0-9]{4})", re.IGNORECASE)


def sample_key(sample_id: str) -> str:
    """The identity that is compared: a TCGA barcode's patient part, else the id itself, trimmed and upper-cased."""
    text = str(sample_id).strip().upper()
    match = _TCGA_PATIENT.match(text)
    return match.group(1) if match else text


def _digest(salt: str, sample_id: str) -> str:
    return hashlib.sha256(f"{salt}:{sample_key(sample_id)}".encode()).hexdigest()[:HASH_DIGITS]


def training_sample_hashes(ids: Iterable[str], salt: str | None = None) -> dict:
    """The record a checkpoint's config stores: salt, algorithm and the sorted, unique salted hashes of `ids`."""
    salt = salt if salt is not None else secrets.token_hex(8)
    hashes = sorted({_digest(salt, sample_id) for sample_id in ids})
    return {"salt": salt, "algorithm": HASH_ALGORITHM, "n_samples": len(hashes), "hashes": hashes}


def shared_samples(record: dict | None, ids: Iterable[str]) -> list[str]:
    """The ids among `ids` whose salted hash is in a checkpoint's record (none when it has no record)."""
    if not record or "salt" not in record or "hashes" not in record:
        return []
    known = set(record["hashes"])
    return [str(sample_id) for sample_id in ids if _digest(record["salt"], sample_id) in known]


__all__ = ["HASH_ALGORITHM", "sample_key", "shared_samples", "training_sample_hashes"]
