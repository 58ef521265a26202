"""Synthetic chest-X-ray-like phantoms with report captions: memaudit's own, patient-free ground truth."""
