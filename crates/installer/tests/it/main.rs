//! Integration tests of the `installer` binary and library with real components: loads into
//! and pulls from docker-registry (checked with skopeo), `installer serve`, the CA commands,
//! the stack chart rendered and checked with helm, kubernetes-validate, checkov and haproxy,
//! and the stack's own processes (PostgreSQL, Redis with Sentinel, HAProxy, Synapse) started
//! from the chart's rendered configuration for the smoke test and the rehearsal.

mod antivirus;
mod built_images;
mod ca;
mod ca_objects;
mod calls;
mod deploy;
mod deploy_run;
mod harness;
mod li_chart;
mod li_rehearsal;
mod load;
mod monitoring_calls;
mod monitoring_dashboards;
mod monitoring_releases;
mod monitoring_rules;
mod monitoring_scrape;
mod node_config;
mod preflight;
mod rehearsal;
mod review_data;
mod review_edge;
mod review_turn_media;
mod review_valkey;
mod serve;
mod site_example;
mod smoke;
mod stack_chart;
mod upstream_values;
mod verify;
