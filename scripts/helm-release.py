"""Installs or uninstalls a release with the real Helm library
(helm-python-sdk: there is no helm binary on the registries), as
`helm install --create-namespace` and `helm uninstall` would.

Run with the helm venv's Python (scripts/install-test-deps.sh makes it):
    python scripts/helm-release.py install NAME CHART_DIR --namespace NS [--kubeconfig FILE] [--values FILE]
    python scripts/helm-release.py uninstall NAME --namespace NS [--kubeconfig FILE]
--values takes YAML or JSON. Prints one line saying what happened (the
release's name, namespace, revision and status); on failure prints Helm's
message and exits 1.
"""
import argparse
import sys

import helm_python as helm
import yaml


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["install", "uninstall"])
    parser.add_argument("name")
    parser.add_argument("chart", nargs="?", help="the chart's directory (install)")
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--kubeconfig", help="default: KUBECONFIG, ~/.kube/config, or the pod's service account")
    parser.add_argument("--values", help="a YAML or JSON file of values (install)")
    parser.add_argument("--timeout", type=int, default=300, help="seconds Helm may take [300]")
    args = parser.parse_args()
    config = helm.Config(kubeconfig_path=args.kubeconfig, namespace=args.namespace)
    try:
        if args.action == "install":
            if not args.chart:
                parser.error("install needs CHART_DIR")
            values = {}
            if args.values:
                with open(args.values) as f:
                    values = yaml.safe_load(f) or {}
            chart = helm.Chart.load(args.chart)
            # The schema's complaint names the value; Helm's own would too,
            # but only after talking to the cluster.
            chart.validate_schema(chart.merge_values(values))
            release = config.install(chart, args.name, values, namespace=args.namespace, create_namespace=True,
                                     timeout=args.timeout)
            print(f"installed {release.get('name')} ({release.get('chart_name')} {release.get('chart_version')}) in "
                  f"{release.get('namespace')}: revision {release.get('revision')}, {release.get('status')}")
        else:
            out = config.uninstall(args.name, timeout=args.timeout)
            print(f"uninstalled {args.name} from {args.namespace}: {out.get('info') or 'done'}")
    except helm.HelmError as e:
        print(f"helm {args.action} {args.name} failed: {e}", file=sys.stderr)
        sys.exit(1)
    finally:
        config.close()


if __name__ == "__main__":
    main()
