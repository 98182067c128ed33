"""The NetworkPolicy conformance suite (`testbed conformance`): generated cases, run against real packets.

Pure, except run.py (the runner, which builds a live cluster through emu/):

    xyz.py        the classic model: namespaces x, y, z, pods a, b, c, ports, node CIDRs
    steps.py      a case and its steps (each a whole desired state)
    decode.py     policies as YAML text and back, through the manifest loader
    dsl.py        policies, selectors, rules as data; Seq builds a case step by step
    tags.py       feature tags inferred from the policies and the transitions
    families.py   the seventeen systematic families and their vocabulary
    generator.py  generate_cases(seed, limit): families + seeded random cases, in a stable order
    check.py      expected truth tables (the oracle), comparison with observations
    results.py    mismatches, step, case and run results
    changes.py    from one step to the next: kubectl-like changes, desired manifests
    junit.py      the JUnit XML of a run
    resources.py  the shipped model and topology (data/), through importlib.resources
    tiered.py     the administrator's tiers (ClusterNetworkPolicy...): `--tiered` cases
    npapi.py      the Network Policy API's own conformance tests, ported (data/npapi.yaml)
    family6.py    the cases over IPv6 (--family ipv6|dual): ipBlocks' and networks' IPv6 twins
    run.py        one cluster, every case's steps reconciled onto it, 486 probes a step
"""
