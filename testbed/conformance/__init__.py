"""The NetworkPolicy conformance suite (`testbed conformance`): generated cases, run against real packets.

Pure, except run.py (the runner, which builds a live cluster through emu/):

    cases.py      the classic x/y/z model, the case model, the DSL, tags, families, generator
    check.py      expected truth tables (the oracle), comparison with observations, results
    junit.py      the JUnit XML of a run
    resources.py  the shipped model and topology (data/), through importlib.resources
    run.py        one cluster, every case's steps reconciled onto it, 486 probes a step
"""
