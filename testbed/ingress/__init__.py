"""The testbed's ingress controller (pure), beside kubeproxy/ and netpol/."""

from .controller import *  # noqa: F401,F403
from .controller import (CLASS_NAME, CONTROLLER, DEFAULT_CERTIFICATE, DEFAULT_SERVER, certificates_needed,  # noqa: F401
                         controller_config, ingress_classes, ingress_warnings, normalize_host, normalize_uri,
                         openssl_argv, render_config, render_nginx_conf, route, select_ingresses, server_name)
