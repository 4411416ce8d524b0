//! `installer status`, `installer rollback` and `installer secrets`: the commands that work on
//! a deployed site through the cluster, without a bundle.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use cli_support::secrets::PassphraseArgs;
use cli_support::Output;
use installer::deploy::render::Helm;
use installer::deploy::{run as deploy_run, status};
use installer::kube::KubeCluster;
use installer::secrets::backup::Origin;
use installer::secrets::store;
use online::ca::{write_atomic, Identity, KeyProtection};

use super::ca::read_identity;
use super::kube_args::KubeArgs;

/// The cluster and the helm that reads and rolls back its releases.
#[derive(Debug, clap::Args)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub kube: KubeArgs,
    /// The helm binary.
    #[arg(long, value_name = "PATH", default_value = "helm")]
    pub helm: PathBuf,
}

impl ClusterArgs {
    /// The cluster, with a helm that cannot render (nothing here renders); its work
    /// directory lives as long as the returned guard.
    fn cluster(&self) -> Result<(KubeCluster, tempfile::TempDir)> {
        let work = tempfile::Builder::new()
            .prefix("installer-")
            .tempdir()
            .context("creating a work directory")?;
        let cluster = KubeCluster {
            kubectl: self.kube.kubectl(),
            helm: Helm::without_renderer(&self.helm, work.path()),
        };
        Ok((cluster, work))
    }
}

/// Arguments of `status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
}

/// Arguments of `rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The local mirror of the deploy journal, updated as releases go back.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "messenger-deploy-journal.json"
    )]
    journal: PathBuf,
}

/// Arguments of `secrets`.
#[derive(Debug, clap::Args)]
pub struct SecretsArgs {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(Debug, clap::Subcommand)]
enum SecretsCommand {
    /// Write the site's secret values (signing key, passwords, ...) to an age-encrypted file.
    Export(ExportArgs),
    /// Restore them into a cluster that has none, before `installer deploy`.
    Import(ImportArgs),
}

/// Whose secrets.
#[derive(Debug, clap::Args)]
struct ReleaseArgs {
    /// The stack's release.
    #[arg(long, value_name = "NAME", default_value = "messenger")]
    release: String,
    /// Its namespace.
    #[arg(long, value_name = "NS", default_value = "matrix")]
    namespace: String,
}

#[derive(Debug, clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    #[command(flatten)]
    release: ReleaseArgs,
    /// The file to write (mode 0600).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Encrypt to this age public key (age1...) instead of a passphrase.
    #[arg(long, value_name = "AGE1...")]
    recipient: Option<String>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

#[derive(Debug, clap::Args)]
struct ImportArgs {
    #[command(flatten)]
    cluster: ClusterArgs,
    /// The file `secrets export` wrote.
    #[arg(long = "in", value_name = "FILE")]
    input: PathBuf,
    /// Decrypt with this age identity file (AGE-SECRET-KEY-1...) instead of a passphrase.
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase_file")]
    identity: Option<PathBuf>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

/// `status`: exit status 0 only when every step is done and everything is ready.
pub fn run_status(args: &StatusArgs, out: Output) -> Result<ExitCode> {
    let (cluster, _work) = args.cluster.cluster()?;
    let Some(status) = status::status(&cluster)? else {
        bail!("no deploy journal in the cluster: nothing was deployed here by the installer");
    };
    out.result(&status, &status);
    Ok(if status.healthy() {
        ExitCode::SUCCESS
    } else {
        out.partial_failure("the site is not healthy (see above)")
    })
}

/// `rollback`: every release back to its revision before the last deploy, last first.
pub fn run_rollback(args: &RollbackArgs, out: Output) -> Result<ExitCode> {
    let (cluster, _work) = args.cluster.cluster()?;
    let lines = deploy_run::rollback(&cluster, &args.journal)?;
    out.result(
        format!(
            "rolled back (data volumes and Secrets kept):\n{}\n",
            lines
                .iter()
                .map(|l| format!("  {l}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        &serde_json::json!({ "ok": true, "releases": lines }),
    );
    Ok(ExitCode::SUCCESS)
}

/// `secrets export` and `secrets import`.
pub fn run_secrets(args: &SecretsArgs, out: Output) -> Result<ExitCode> {
    match &args.command {
        SecretsCommand::Export(export) => {
            let (cluster, _work) = export.cluster.cluster()?;
            let origin = Origin {
                release: export.release.release.clone(),
                namespace: export.release.namespace.clone(),
            };
            let protection = match &export.recipient {
                Some(recipient) => KeyProtection::Recipient(recipient.clone()),
                None => KeyProtection::Passphrase(export.passphrase.read(true)?),
            };
            let sealed = store::export(&cluster, &origin, &protection)?;
            write_atomic(&export.out, &sealed, 0o600)?;
            out.result(
                format!(
                    "the secret values of {}/{} written to {} (age-encrypted)\n",
                    origin.namespace,
                    origin.release,
                    export.out.display()
                ),
                &serde_json::json!({ "ok": true, "file": export.out }),
            );
        }
        SecretsCommand::Import(import) => {
            let (cluster, _work) = import.cluster.cluster()?;
            let sealed = oci::files::read_capped(&import.input, oci::files::INPUT_FILE_LIMIT)
                .with_context(|| format!("reading {}", import.input.display()))?;
            let identity = match &import.identity {
                Some(path) => read_identity(path)?,
                None => Identity::Passphrase(import.passphrase.read(false)?),
            };
            let origin = store::import(&cluster, &sealed, &identity)
                .with_context(|| format!("importing {}", import.input.display()))?;
            out.result(
                format!(
                    "the secret values of {}/{} restored; `installer deploy` keeps them\n",
                    origin.namespace, origin.release
                ),
                &serde_json::json!({ "ok": true, "release": origin.release,
                                     "namespace": origin.namespace }),
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
