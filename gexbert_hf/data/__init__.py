"""Data layer: readers, dataset building, collators, the one split, and cohorts (embedded, synthetic). Knows the
tokenizer and nothing above it."""
