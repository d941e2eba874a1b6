"""The paper's uses of a trained GexBERT: imputation, panel classification, anchor restoration, attention."""
