//! `installer serve`: verify a bundle, then answer pulls of its images as a read-only OCI
//! registry straight from the bundle file, until SIGINT or SIGTERM.

use anyhow::{Context, Result};
use bundle_file::external::EXTERNAL_BLOBS;
use cli_support::verify_cmd::{self, TrustedBundleArgs};
use cli_support::Output;
use installer::serve::{self, Limits, ServeLog, Server, Timeouts};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
/// Arguments of `serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub bundle: TrustedBundleArgs,
    /// Address to listen on, e.g. 0.0.0.0:5000 or 127.0.0.1:5000.
    #[arg(long, value_name = "ADDR")]
    pub listen: String,
    /// TLS certificate chain (PEM); serve HTTPS with --tls-key.
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Blob downloads answered at once, each holding up to about 8 MiB; further ones wait
    /// their turn.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub max_streams: u16,
    /// Drop a connection whose client has taken nothing for this many seconds (it stopped
    /// reading or vanished), giving its stream to the next.
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub send_timeout: u64,
    /// Close a connection that has not sent a complete request head this many seconds after
    /// it opened (or after its previous response): a client that sends nothing, or stops in
    /// the middle of its request.
    #[arg(long, value_name = "SECS", default_value_t = 20,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub header_timeout: u64,
    /// Close a keep-alive connection that sends no new request for this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub idle_timeout: u64,
    /// Connections kept open at once; when full, the one idle the longest is closed for a new
    /// one [default: the open-file limit (ulimit -n) less 32].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: Option<u32>,
}

/// The server's log, printed through the command's output.
struct Log(Output);

impl ServeLog for Log {
    fn info(&self, line: &str) {
        self.0.info(line);
    }

    fn warn(&self, line: &str) {
        self.0.warn(line);
    }
}

pub fn run(args: &Args, out: Output) -> Result<ExitCode> {
    let bundle = verify_cmd::open_verified(&args.bundle, out)?;
    if bundle.member(EXTERNAL_BLOBS).is_some() {
        anyhow::bail!(
            "{} is an update bundle: its images build on layers it does not carry (listed in \
             {}), so nodes could not pull them from here; load it into the site registry \
             with `installer load`",
            args.bundle.bundle.display(),
            EXTERNAL_BLOBS
        );
    }
    let server = Server::new(
        bundle,
        Arc::new(Log(out)),
        Limits {
            max_streams: usize::from(args.max_streams),
            send_timeout: Duration::from_secs(args.send_timeout),
            timeouts: Timeouts {
                header: Duration::from_secs(args.header_timeout),
                idle: Duration::from_secs(args.idle_timeout),
            },
            max_connections: args.max_connections.map(|n| n as usize),
        },
    )
    .with_context(|| format!("cataloguing the images of {}", args.bundle.bundle.display()))?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(serve::tls_acceptor(cert, key)?),
        _ => None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let address = listener.local_addr().context("the listening address")?;
        let catalog = server.catalog();
        out.info(format!(
            "serving {} images ({} tags, {} repository names) on {}://{address}, at most {} \
             connections",
            catalog.images,
            catalog.tags,
            catalog.repositories.len(),
            if tls.is_some() { "https" } else { "http" },
            server.max_connections(),
        ));
        serve::serve(Arc::new(server), listener, tls, shutdown_signal()).await;
        out.info("stopped");
        Ok(ExitCode::SUCCESS)
    })
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
