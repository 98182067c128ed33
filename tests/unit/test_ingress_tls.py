"""The controller's certificates (ingress/tls.py): which secrets, which hosts, the openssl argv."""

from __future__ import annotations

from testbed.ingress import DEFAULT_CERTIFICATE, certificates_needed, openssl_argv


def test_a_tls_entry_without_hosts_covers_the_ingress_rule_hosts(manifests):
    m = manifests("""
        apiVersion: networking.k8s.io/v1
        kind: Ingress
        metadata: {name: web}
        spec:
          ingressClassName: nginx
          tls: [{secretName: web-tls}]
          rules: [{host: a.example.com}, {host: b.example.com}, {}]
    """)
    assert certificates_needed(m.ingresses) == {
        DEFAULT_CERTIFICATE: ["ingress.local"],
        "web-tls": ["a.example.com", "b.example.com"],
    }


def test_openssl_argv_makes_a_self_signed_certificate_for_the_hosts():
    argv = openssl_argv(["cafe.example.com", "*.cafe.example.com"], "/c/x.crt", "/c/x.key")
    assert argv[:4] == ["openssl", "req", "-x509", "-newkey"]
    assert argv[argv.index("-subj") + 1] == "/CN=cafe.example.com"
    assert argv[argv.index("-addext") + 1] == "subjectAltName=DNS:cafe.example.com,DNS:*.cafe.example.com"
    assert (argv[argv.index("-out") + 1], argv[argv.index("-keyout") + 1]) == ("/c/x.crt", "/c/x.key")
