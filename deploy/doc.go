// Package deploy holds the static checks of Samsa's deployment files: the
// Helm chart in charts/samsa, docker-compose.yml and the Dockerfile.
//
// Neither a container engine nor a Kubernetes cluster is available where the
// tests run, so the files are checked the way a careful reviewer would:
// the chart is rendered with the Helm SDK and every manifest is decoded
// strictly into the Kubernetes API types; the flags and environment variables
// that the chart and the compose file pass to each service are checked
// against the real binaries' --help; ports are checked against DESIGN.md §5;
// alert and dashboard queries are parsed as PromQL and their metric names
// checked against the ones the services register.
package deploy
