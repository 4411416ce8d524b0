//! `installer ca`: the site root CA inside the enclave. `init` makes (or imports) it without a
//! bundle, `issuer` gives it to cert-manager as a CA ClusterIssuer, and `export` writes its
//! certificate for nodes (containerd, system trust) and phones.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context as _, Result};
use cli_support::ca_init::{run_init, InitArgs};
use cli_support::secrets::PassphraseArgs;
use cli_support::trust_args::TrustArgs;
use cli_support::verify_cmd::{open_verified, TrustedBundleArgs};
use cli_support::Output;
use installer::ca::{cluster_issuer, containerd_hosts_toml, tls_secret, CERT_MANAGER_NAMESPACE};
use online::ca::{
    write_atomic, CaFiles, Identity, BUNDLE_DIR, CA_CRT_FILE, CA_KEY_FILE, MAX_FILE_LEN,
};

use super::kube_args::KubeArgs;

/// Where nodes keep containerd's per-registry configuration.
const CONTAINERD_CERTS_D: &str = "/etc/containerd/certs.d";

/// Arguments of `ca`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: CaCommand,
}

#[derive(Debug, clap::Subcommand)]
enum CaCommand {
    /// Generate the site root CA inside the enclave (or import the organisation's):
    /// DIR/ca.crt and DIR/ca.key.age (age-encrypted). No bundle needed.
    Init(InitArgs),
    /// Decrypt the CA key and write (--out) or apply (--apply) cert-manager's CA
    /// ClusterIssuer and the Secret it signs with.
    Issuer(IssuerArgs),
    /// Write the CA certificate for nodes (containerd hosts.toml, system trust) and phones.
    Export(ExportArgs),
}

/// Where the CA comes from: a verified bundle's `ca/` directory, or a CA directory.
#[derive(Debug, clap::Args)]
struct SourceArgs {
    /// Take the CA from this bundle's ca/ directory (the bundle is verified first).
    #[arg(
        long,
        value_name = "B",
        required_unless_present = "ca_dir",
        conflicts_with = "ca_dir"
    )]
    bundle: Option<PathBuf>,
    #[command(flatten)]
    trust: TrustArgs,
    /// Use the bundle WITHOUT checking its signatures (member hashes are still checked).
    #[arg(long, requires = "bundle")]
    insecure_skip_verify: bool,
    /// Take the CA from a directory written by `ca init`.
    #[arg(long, value_name = "DIR")]
    ca_dir: Option<PathBuf>,
}

/// Arguments of `ca issuer`.
#[derive(Debug, clap::Args)]
struct IssuerArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Name of the ClusterIssuer.
    #[arg(long, value_name = "NAME", default_value = "site-ca")]
    issuer_name: String,
    /// Name of the Secret holding the CA certificate and key.
    #[arg(long, value_name = "NAME", default_value = "site-ca")]
    secret_name: String,
    /// cert-manager's cluster resource namespace, where ClusterIssuers find their Secrets.
    #[arg(long, value_name = "NS", default_value = CERT_MANAGER_NAMESPACE)]
    namespace: String,
    #[command(flatten)]
    key: CaKeyArgs,
    /// Apply the Secret and the ClusterIssuer to the cluster (server-side apply).
    #[arg(long)]
    apply: bool,
    #[command(flatten)]
    kube: KubeArgs,
    /// Write cluster-issuer.yaml and ca-secret.yaml (which holds the key in clear) here.
    #[arg(long, value_name = "DIR", required_unless_present = "apply")]
    out: Option<PathBuf>,
}

/// How the CA key is opened.
#[derive(Debug, clap::Args)]
pub struct CaKeyArgs {
    /// Open the CA key with this age identity file (AGE-SECRET-KEY-1...) instead of a
    /// passphrase.
    #[arg(long, value_name = "FILE", conflicts_with = "passphrase_file")]
    identity: Option<PathBuf>,
    #[command(flatten)]
    passphrase: PassphraseArgs,
}

/// Arguments of `ca export`.
#[derive(Debug, clap::Args)]
struct ExportArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// The registry nodes pull from, HOST[:PORT], for containerd's hosts.toml.
    #[arg(long, value_name = "HOST[:PORT]")]
    registry: String,
    /// Directory to write into (created if missing).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    match &args.command {
        CaCommand::Init(init) => run_init(init, out),
        CaCommand::Issuer(issuer) => run_issuer(issuer, out),
        CaCommand::Export(export) => run_export(export, out),
    }
}

/// The CA's files and, for errors, what holds the key.
pub(super) struct Source {
    files: CaFiles,
    key_origin: String,
}

impl Source {
    /// The CA of a directory written by `ca init`.
    pub(super) fn from_dir(dir: &Path) -> Result<Source> {
        let files = CaFiles::read_dir(dir)?;
        let key_origin = dir.join(CA_KEY_FILE).display().to_string();
        Ok(Source { files, key_origin })
    }

    /// Opens the key and returns the Secret cert-manager signs with (the key in clear) and
    /// the CA ClusterIssuer that names it.
    pub(super) fn issuer_manifests(
        &self,
        key: &CaKeyArgs,
        issuer_name: &str,
        secret_name: &str,
        namespace: &str,
    ) -> Result<(String, String)> {
        if self.files.encrypted_key().is_none() {
            bail!(
                "{} is missing: the CA was made with --no-key; give it its key inside the \
                 enclave with `installer ca init --import-cert ca.crt --import-key KEY --out \
                 DIR`, then use --ca-dir DIR",
                self.key_origin
            );
        }
        let identity = match &key.identity {
            Some(path) => read_identity(path)?,
            None => Identity::Passphrase(key.passphrase.read(false)?),
        };
        let ca = self
            .files
            .open(&identity)
            .with_context(|| format!("opening the CA key {}", self.key_origin))?;
        let issuer = cluster_issuer(issuer_name, secret_name);
        let secret = tls_secret(secret_name, namespace, ca.cert_pem(), &ca.key_pem());
        Ok((secret, issuer))
    }
}

impl SourceArgs {
    fn load(&self, out: Output) -> Result<Source> {
        if let Some(dir) = &self.ca_dir {
            return Source::from_dir(dir);
        }
        let Some(path) = &self.bundle else {
            bail!("give --bundle B (with --key K.pub) or --ca-dir DIR");
        };
        let trusted = TrustedBundleArgs {
            bundle: path.clone(),
            trust: self.trust.clone(),
            insecure_skip_verify: self.insecure_skip_verify,
        };
        let bundle = open_verified(&trusted, out)?;
        let read = |name: &str| -> Result<Option<Vec<u8>>> {
            let member_path = format!("{BUNDLE_DIR}/{name}");
            let Some(member) = bundle.member(&member_path) else {
                return Ok(None);
            };
            if member.size > MAX_FILE_LEN {
                bail!(
                    "{member_path} in {} is {} bytes, more than a CA file's {MAX_FILE_LEN}",
                    path.display(),
                    member.size
                );
            }
            let mut data = Vec::new();
            bundle
                .member_reader(member, 0, member.size)
                .read_to_end(&mut data)
                .with_context(|| format!("reading {member_path} from {}", path.display()))?;
            Ok(Some(data))
        };
        let Some(cert) = read(CA_CRT_FILE)? else {
            bail!(
                "{} carries no CA ({BUNDLE_DIR}/{CA_CRT_FILE}): build it with a CA, or use --ca-dir",
                path.display()
            );
        };
        let cert_pem = String::from_utf8(cert)
            .with_context(|| format!("{BUNDLE_DIR}/{CA_CRT_FILE} in {}", path.display()))?;
        let origin = format!("{BUNDLE_DIR}/ in {}", path.display());
        let files = CaFiles::new(cert_pem, read(CA_KEY_FILE)?, &origin)?;
        let key_origin = format!("{BUNDLE_DIR}/{CA_KEY_FILE} in {}", path.display());
        Ok(Source { files, key_origin })
    }
}

fn run_issuer(args: &IssuerArgs, out: Output) -> Result<ExitCode> {
    for (flag, name) in [
        ("--issuer-name", &args.issuer_name),
        ("--secret-name", &args.secret_name),
        ("--namespace", &args.namespace),
    ] {
        check_name(flag, name)?;
    }
    let source = args.source.load(out)?;
    let (secret, issuer) = source.issuer_manifests(
        &args.key,
        &args.issuer_name,
        &args.secret_name,
        &args.namespace,
    )?;
    let mut written = Vec::new();
    if let Some(dir) = &args.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let secret_path = dir.join("ca-secret.yaml");
        let issuer_path = dir.join("cluster-issuer.yaml");
        write_atomic(&secret_path, secret.as_bytes(), 0o600)?;
        write_atomic(&issuer_path, issuer.as_bytes(), 0o644)?;
        out.warn(format!(
            "{} holds the CA key in clear: apply it, then delete it",
            secret_path.display()
        ));
        written = vec![issuer_path, secret_path];
    }
    let mut applied = Vec::new();
    if args.apply {
        let kube = args.kube.kubectl();
        applied.push(kube.apply(&secret).context("applying the CA Secret")?);
        applied.push(
            kube.apply(&issuer)
                .context("applying the ClusterIssuer (is cert-manager installed?)")?,
        );
    }
    let info = source.files.info()?;
    let mut human = format!(
        "ClusterIssuer {} signs with CA {} (SHA-256 {}) from Secret {}/{}\n",
        args.issuer_name, info.subject, info.sha256, args.namespace, args.secret_name
    );
    for path in &written {
        human.push_str(&format!("  wrote {}\n", path.display()));
    }
    for line in &applied {
        human.push_str(&format!("  {line}\n"));
    }
    out.result(
        human,
        &serde_json::json!({
            "ok": true,
            "certificate": info,
            "issuer": args.issuer_name,
            "secret": { "name": args.secret_name, "namespace": args.namespace },
            "files": written,
            "applied": args.apply,
        }),
    );
    Ok(ExitCode::SUCCESS)
}

fn run_export(args: &ExportArgs, out: Output) -> Result<ExitCode> {
    let registry = args.registry.trim_end_matches('/');
    if registry.is_empty() || registry.contains(['/', ' ', '\\']) || registry.contains("://") {
        bail!(
            "--registry must be HOST or HOST:PORT, not {:?}",
            args.registry
        );
    }
    let files = args.source.load(out)?.files;
    let info = files.info()?;
    let host_dir = Path::new("containerd/certs.d").join(registry);
    let node_ca = format!("{CONTAINERD_CERTS_D}/{registry}/{CA_CRT_FILE}");
    let readme = readme(registry, &info.subject, &info.sha256);
    let hosts_toml = containerd_hosts_toml(registry, &node_ca);
    let outputs: [(PathBuf, &[u8]); 5] = [
        (PathBuf::from(CA_CRT_FILE), files.cert_pem().as_bytes()),
        (PathBuf::from("ca.der"), files.cert_der()),
        (host_dir.join(CA_CRT_FILE), files.cert_pem().as_bytes()),
        (host_dir.join("hosts.toml"), hosts_toml.as_bytes()),
        (PathBuf::from("README.txt"), readme.as_bytes()),
    ];
    let dir = &args.out;
    std::fs::create_dir_all(dir.join(&host_dir))
        .with_context(|| format!("creating {}", dir.join(&host_dir).display()))?;
    let mut written = Vec::new();
    for (rel, bytes) in outputs {
        let path = dir.join(rel);
        write_atomic(&path, bytes, 0o644)?;
        written.push(path);
    }
    out.result(
        format!(
            "CA {} (SHA-256 {}) exported for {registry}:\n{}\nsee {}\n",
            info.subject,
            info.sha256,
            written
                .iter()
                .map(|p| format!("  {}", p.display()))
                .collect::<Vec<_>>()
                .join("\n"),
            dir.join("README.txt").display()
        ),
        &serde_json::json!({ "ok": true, "certificate": info, "files": written }),
    );
    Ok(ExitCode::SUCCESS)
}

/// Where each exported file goes.
fn readme(registry: &str, subject: &str, sha256: &str) -> String {
    format!(
        "Site root CA: {subject}
SHA-256 fingerprint: {sha256}
Compare this fingerprint on every device before trusting the certificate.

ca.crt (PEM)
  Nodes (Debian/Ubuntu): copy to /usr/local/share/ca-certificates/site-root-ca.crt,
  then run `update-ca-certificates`. (RHEL-like: /etc/pki/ca-trust/source/anchors/, then
  `update-ca-trust`.)
  iPhone/iPad: open the file, install the profile, then turn on full trust in Settings >
  General > About > Certificate Trust Settings. Desktops and browsers: import it as an
  authority.

ca.der (DER)
  Android: Settings > Security > Encryption & credentials > Install a certificate >
  CA certificate.

containerd/certs.d/{registry}/ (hosts.toml and ca.crt)
  Every node: copy the directory to {CONTAINERD_CERTS_D}/{registry}/ (containerd's
  registry config_path must be {CONTAINERD_CERTS_D}); it applies to the next pull,
  no restart needed.
"
    )
}

/// The age X25519 identity in `path` (the first `AGE-SECRET-KEY-1...` line, as `age-keygen`
/// writes it).
pub(super) fn read_identity(path: &Path) -> Result<Identity> {
    let text = oci::files::read_capped_to_string(path, oci::files::KEY_FILE_LIMIT)
        .with_context(|| format!("reading identity file {}", path.display()))?;
    let Some(line) = text
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
    else {
        bail!(
            "{} holds no age identity (AGE-SECRET-KEY-1...)",
            path.display()
        );
    };
    Ok(Identity::X25519(line.to_string()))
}

/// Refuses a name Kubernetes would (RFC 1123 DNS label: at most 63 of a-z, 0-9 and '-',
/// starting and ending alphanumeric).
fn check_name(flag: &str, name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        bail!("{flag} {name:?} is not a Kubernetes name (lower-case letters, digits and '-', at most 63)");
    }
    Ok(())
}
