//! The deploy's steps outside the Kubernetes API, for a real site: the preflight's checks,
//! `installer load` into the site registry, the site CA for cert-manager and the smoke test
//! against the deployed homeserver.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, Result};
use cli_support::Output;
use installer::ca::CERT_MANAGER_NAMESPACE;
use installer::deploy::plan::Plan;
use installer::deploy::preflight::{self, PreflightSite, SystemResolver};
use installer::deploy::run::Outside;
use installer::deploy::site::Site;
use installer::kube::{Cluster, KubeCluster, ObjectRef};
use installer::secrets::objects;
use installer::smoke::{run_smoke, MatrixClient, SmokeOptions};

use super::ca::Source;
use super::deploy::Args;

/// The key of the registration secret in the generated Secret.
const REGISTRATION_KEY: &str = "registrationSharedSecret";

/// What the deploy does outside the API, from the command's arguments.
pub struct SiteOutside<'a> {
    cluster: &'a KubeCluster,
    preflight: PreflightSite,
    label_nodes: bool,
    load: Vec<String>,
    ca_manifests: Option<String>,
    ca_cert: Option<PathBuf>,
    smoke: Option<(String, String, String)>,
    generated: ObjectRef,
    out: Output,
}

impl<'a> SiteOutside<'a> {
    /// Opens the site CA (a wrong passphrase fails here, before anything changes) and
    /// prepares each step.
    pub fn new(
        args: &Args,
        site: &Site,
        plan: &Plan,
        preflight: PreflightSite,
        cluster: &'a KubeCluster,
        out: Output,
    ) -> Result<SiteOutside<'a>> {
        let (ca_manifests, ca_cert) = match &args.ca_dir {
            Some(dir) => {
                let source = Source::from_dir(dir)?;
                let (secret, issuer) = source.issuer_manifests(
                    &args.ca_key,
                    &plan.issuer,
                    &plan.issuer,
                    CERT_MANAGER_NAMESPACE,
                )?;
                (
                    Some(format!("---\n{secret}\n---\n{issuer}\n")),
                    Some(dir.join(online::ca::CA_CRT_FILE)),
                )
            }
            None => (None, None),
        };
        let installer = std::env::current_exe().context("finding the installer's own path")?;
        let mut load = vec![
            installer.to_string_lossy().into_owned(),
            "--json".into(),
            "load".into(),
        ];
        load.extend(args.bundle.to_args());
        load.extend(["--registry".into(), args.target.registry.clone()]);
        if let Some(prefix) = &args.target.prefix {
            load.extend(["--prefix".into(), prefix.clone()]);
        }
        for ca in &args.registry_ca_files {
            load.extend(["--ca-file".into(), ca.to_string_lossy().into_owned()]);
        }
        if args.insecure_registry {
            load.push("--insecure-registry".into());
        }
        let smoke = match (
            args.no_smoke,
            site.matrix_url(),
            site.admin_url(),
            site.server_name(),
        ) {
            (false, Some(url), Some(admin), Some(name)) => Some((url, admin, name.to_string())),
            _ => None,
        };
        let stack = plan
            .steps
            .iter()
            .find(|s| s.name == "stack")
            .and_then(|s| s.releases.first());
        let generated = ObjectRef {
            kind: "Secret".into(),
            namespace: stack.map(|r| r.namespace.clone()),
            name: objects::generated_name(stack.map_or("messenger", |r| r.name.as_str())),
        };
        Ok(SiteOutside {
            cluster,
            preflight,
            label_nodes: args.label_nodes,
            load,
            ca_manifests,
            ca_cert,
            smoke,
            generated,
            out,
        })
    }

    /// The registration secret from the installer's Secret in the cluster.
    fn registration_secret(&self) -> Result<String, String> {
        let secret = self
            .cluster
            .get(&self.generated)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} does not exist", self.generated))?;
        let values = objects::values_of(&secret, &format!("in {}", self.generated))
            .map_err(|e| e.to_string())?;
        values
            .get(REGISTRATION_KEY)
            .map(|v| v.to_string())
            .ok_or_else(|| format!("{} has no {REGISTRATION_KEY}", self.generated))
    }
}

impl Outside for SiteOutside<'_> {
    fn preflight(&self, cluster: &dyn Cluster) -> Vec<String> {
        if self.label_nodes {
            match preflight::label_nodes(cluster, &self.preflight) {
                Ok(done) => {
                    for patch in done {
                        self.out.info(format!("preflight: labelled: {patch}"));
                    }
                }
                Err(e) => return vec![format!("labelling the nodes: {e}")],
            }
        }
        let report = preflight::check(cluster, &self.preflight, SystemTime::now(), &SystemResolver);
        for skipped in &report.skipped {
            self.out.warn(format!(
                "preflight: {}: not checked: {}",
                skipped.check, skipped.why
            ));
        }
        report.problems()
    }

    fn load(&self) -> Result<String, String> {
        self.out
            .info("load: pushing the bundle's images into the site registry");
        let output = Command::new(&self.load[0])
            .args(&self.load[1..])
            .output()
            .map_err(|e| format!("running {}: {e}", self.load[0]))?;
        let summary: serde_json::Value =
            serde_json::from_slice(&output.stdout).unwrap_or(serde_json::Value::Null);
        if output.status.success() {
            Ok(format!(
                "{} image(s) in the registry, {} blob(s) pushed",
                summary["images"].as_u64().unwrap_or(0),
                summary["blobs_pushed"].as_u64().unwrap_or(0)
            ))
        } else {
            Err(summary["error"]
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| String::from_utf8_lossy(&output.stderr).trim().to_string()))
        }
    }

    fn ca_manifests(&self) -> Option<String> {
        self.ca_manifests.clone()
    }

    fn smoke(&self) -> Result<String, String> {
        let Some((base_url, admin_url, server_name)) = &self.smoke else {
            return Ok("not run (--no-smoke, or the site file names no domain)".into());
        };
        let secret = self.registration_secret()?;
        let client =
            MatrixClient::new(base_url, self.ca_cert.as_deref()).map_err(|e| e.to_string())?;
        let admin =
            MatrixClient::new(admin_url, self.ca_cert.as_deref()).map_err(|e| e.to_string())?;
        let options = SmokeOptions {
            server_name: server_name.clone(),
            registration_secret: secret.into_bytes(),
            messages: 5,
            receive_within: Duration::from_secs(30),
            media_bytes: 64 * 1024,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("starting the async runtime: {e}"))?;
        let report = runtime.block_on(run_smoke(&client, &admin, &options));
        match report.failed_step() {
            None => Ok(format!("{base_url}: every smoke step passed")),
            Some(failed) => Err(format!(
                "{base_url}: smoke step `{}` failed: {}",
                failed.step,
                failed.error.as_deref().unwrap_or("failed")
            )),
        }
    }
}
