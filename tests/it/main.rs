//! Integration tests of the `bundle` binary, with the real tools: the command line, the build
//! pipeline against docker-registry and skopeo, image discovery with helm, the CA commands,
//! and an auditor's check with stock tools only.

mod auditor_tools;
mod build;
mod ca_cli;
mod cli;
mod delta;
mod downloads;
mod files;
mod find_images;
mod sbom;
