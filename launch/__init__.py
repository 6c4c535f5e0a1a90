"""The study driver (installed as ``capstudy.launch``): Ray Tune wiring, per-cell ASHA, resume."""
