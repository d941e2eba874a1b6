"""Data layer: readers, dataset building, the masking collator and the embedded cohort. Knows the tokenizer and
nothing above it."""
