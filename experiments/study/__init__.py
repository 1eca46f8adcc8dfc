"""User studies: the colorization Turing test (Zhang et al., ECCV 2016) and a pairwise arena.

- :mod:`.protocol`  study designs, balanced condition assignment, per-participant trial plans
                    (photos without replacement, balanced arena blocks)
- :mod:`.storage`   SQLAlchemy store (SQLite in WAL mode by default, PostgreSQL by URL),
                    atomic idempotent votes checked against the plan, completion codes
- :mod:`.errors`    the named errors every bad argument raises
- :mod:`.prepare`   pre-generated colorized / vigilance images with opaque ids; what reaches the
                    browser (uncompressed PNGs of one byte length); preparation-time estimate
- :mod:`.stats`     Wilson / Clopper-Pearson intervals, bootstrap over participants, binomial
                    test, differences between methods, Bradley-Terry strengths
- :mod:`.analysis`  one analysis of a study for the page and the CLI; CSV / LaTeX / figure export
- :mod:`.links`     invite links of the participant app
- :mod:`.cli`       ``python -m experiments.study create|prepare|open|status|close|export|analyse``
- :mod:`.ui`        Streamlit helpers shared by the study pages (admin gate, pair display,
                    participant flow)
"""
