// Package check holds the tests of the deployment files under deploy/: it
// decodes the Kubernetes manifests strictly into the Kubernetes API types,
// parses the Prometheus rules with Prometheus' own rule parser, checks the
// Dockerfile with BuildKit's parser (and runs its build command), the
// compose file, the systemd unit (systemd-analyze) and the Grafana
// dashboard, and checks against a running derper and derpprobe that every
// metric the rules and the dashboard use is really exported.
//
// It is a module of its own so that the relay's module does not depend on
// the Kubernetes, Prometheus and BuildKit libraries. scripts/test.sh runs
// it.
package check
