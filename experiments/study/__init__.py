"""User studies: the colorization Turing test (Zhang et al., ECCV 2016) and a pairwise arena.

- :mod:`.protocol`  study designs, balanced condition assignment, per-participant trial plans
- :mod:`.storage`   SQLAlchemy store (SQLite in WAL mode by default, PostgreSQL by URL),
                    atomic idempotent votes
- :mod:`.prepare`   pre-generated colorized / vigilance images with opaque ids
- :mod:`.stats`     Wilson / Clopper-Pearson intervals, bootstrap over participants, binomial
                    test, Bradley-Terry ratings
- :mod:`.ui`        Streamlit helpers shared by the study pages (admin gate, pair display)
"""
