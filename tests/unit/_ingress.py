"""Shared by the ingress tests (test_ingress_*.py): paths, an every-feature manifest, worlds.

The `ingress_demo` and `ingress_features` fixtures (conftest.py) are (manifests, plan) of
manifests/ingress-demo.yaml and of FEATURES below on the 3-node topology, seed 1.
"""

from __future__ import annotations

import pathlib

from testbed.plan.build import plan_cluster
from testbed.spec.topology import load_topology
from testbed.spec.workloads import load_manifests

from ._golden import GOLDEN as GOLDEN_ROOT

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
GOLDEN = GOLDEN_ROOT / "ingress"
DEMO = REPO / "manifests" / "ingress-demo.yaml"
TOPOLOGY = REPO / "topologies" / "three-nodes.yaml"
RUN = "/run/testbed-ingress"  # the paths written into the goldens; nginx -t swaps in a tmp dir
PATHS = dict(
    cert_path=RUN + "/certs/{secret}.crt",
    key_path=RUN + "/certs/{secret}.key",
    pid_path=RUN + "/nginx.pid",
    prefix_dir=RUN,
)

# Every feature at once: hosts, a wildcard, a hostless rule, the three path types, TLS with and
# without secret, redirects, overlaps, each kind of broken backend, ignored classes.
FEATURES = """
apiVersion: v1
kind: Namespace
metadata: {name: shop}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata: {name: other}
spec: {controller: example.com/other-controller}
---
apiVersion: networking.k8s.io/v1
kind: IngressClass
metadata:
  name: internal
  annotations: {ingressclass.kubernetes.io/is-default-class: "true"}
spec: {controller: k8s.io/ingress-nginx}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, ports: [{name: http, containerPort: 8080}, {name: metrics, containerPort: 9100}]}]
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: api, namespace: shop}
spec:
  replicas: 1
  selector: {matchLabels: {app: api}}
  template:
    metadata: {labels: {app: api}}
    spec:
      containers: [{name: api, ports: [{name: api, containerPort: 9000}, {name: dns, containerPort: 53, protocol: UDP}]}]
---
apiVersion: v1
kind: Service
metadata: {name: web, namespace: shop}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}, {name: metrics, port: 9100, targetPort: metrics}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api}
  ports: [{name: api, port: 8080, targetPort: 9000}, {name: dns, port: 53, protocol: UDP, targetPort: dns}]
---
apiVersion: v1
kind: Service
metadata: {name: ext, namespace: shop}
spec: {type: ExternalName, externalName: db.example.com}
---
apiVersion: v1
kind: Service
metadata: {name: nobody, namespace: shop}
spec:
  selector: {app: nobody}
  ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: shop
  namespace: shop
  annotations: {nginx.ingress.kubernetes.io/ssl-redirect: "false"}
spec:
  ingressClassName: nginx
  defaultBackend: {service: {name: web, port: {number: 80}}}
  tls:
    - {hosts: [shop.example.com], secretName: shop-tls}
    - {hosts: ["*.apps.example.com"], secretName: apps-tls}
  rules:
    - host: shop.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {name: http}}}}
          - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}
          - {path: /api/v1/health, pathType: Exact, backend: {service: {name: web, port: {number: 9100}}}}
          - {path: /static, pathType: ImplementationSpecific, backend: {service: {name: web, port: {number: 9100}}}}
          - {path: /docs/, pathType: Prefix, backend: {service: {name: api, port: {number: 8080}}}}
          - {path: /dir/, pathType: ImplementationSpecific, backend: {service: {name: api, port: {number: 8080}}}}
          - {path: "/a:b c", pathType: ImplementationSpecific, backend: {service: {name: api, port: {number: 8080}}}}
    - host: "*.apps.example.com"
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: api, port: {name: api}}}}
    - http:
        paths:
          - {path: /status, pathType: Exact, backend: {service: {name: web, port: {number: 9100}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: broken, namespace: shop}
spec:
  defaultBackend: {service: {name: api, port: {number: 8080}}}
  tls: [{hosts: [broken.example.com, nowhere.example.com]}]
  rules:
    - host: broken.example.com
      http:
        paths:
          - {path: /missing, pathType: Prefix, backend: {service: {name: nosuch, port: {number: 80}}}}
          - {path: /noport, pathType: Prefix, backend: {service: {name: web, port: {number: 81}}}}
          - {path: /udp, pathType: Prefix, backend: {service: {name: api, port: {name: dns}}}}
          - {path: /ext, pathType: Prefix, backend: {service: {name: ext, port: {number: 80}}}}
          - {path: /nobody, pathType: Prefix, backend: {service: {name: nobody, port: {number: 80}}}}
          - {path: /bucket, pathType: Prefix, backend: {resource: {kind: Bucket, name: b}}}
          - {path: /target, pathType: Prefix, backend: {service: {name: api, port: {number: 9000}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: late
  namespace: shop
  annotations: {nginx.ingress.kubernetes.io/force-ssl-redirect: "true"}
spec:
  ingressClassName: nginx
  rules:
    - host: shop.example.com
      http:
        paths:
          - {path: /api, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
          - {path: /docs, pathType: Exact, backend: {service: {name: web, port: {number: 80}}}}
    - host: secure.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: theirs, namespace: shop}
spec:
  ingressClassName: other
  rules: [{host: theirs.example.com, http: {paths: [{path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 80}}}}]}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: lost, namespace: shop}
spec:
  ingressClassName: traefik
  defaultBackend: {service: {name: web, port: {number: 80}}}
"""


def world(path: str | pathlib.Path):
    """(manifests, plan) of a manifest file on the 3-node topology."""
    manifests = load_manifests([str(path)])
    return manifests, plan_cluster(load_topology(str(TOPOLOGY)), manifests, seed=1)


def pod_ips(plan, prefix: str) -> list[str]:
    return sorted(p.ip for p in plan.pods if p.name.startswith(prefix))
