//! The smoke sequence: two throwaway users, a room, messages both ways through `/sync`, and a
//! media round trip.

use super::client::MatrixClient;
use super::error::MatrixError;
use super::receive::await_messages;
use super::report::Report;
use rand_core::{OsRng, RngCore};
use std::time::Duration;

/// What the smoke test does. (No `Debug`: it holds the registration secret.)
#[derive(Clone)]
pub struct SmokeOptions {
    /// The homeserver's `server_name`: user IDs and media must carry it.
    pub server_name: String,
    /// Synapse's `registration_shared_secret`.
    pub registration_secret: Vec<u8>,
    /// Messages user A sends to user B.
    pub messages: usize,
    /// How long B may take to receive them.
    pub receive_within: Duration,
    /// Size of the uploaded test file.
    pub media_bytes: usize,
}

/// Runs every step against `client`'s homeserver, stopping at the first failure; users are
/// registered through `admin` (the admin host, where the chart serves the admin API).
pub async fn run_smoke(
    client: &MatrixClient,
    admin: &MatrixClient,
    options: &SmokeOptions,
) -> Report {
    let mut report = Report::new(client.base_url());
    let _ = steps(client, admin, options, &mut report).await;
    report
}

/// The steps; `None` as soon as one failed (the report says which).
async fn steps(
    client: &MatrixClient,
    admin: &MatrixClient,
    options: &SmokeOptions,
    report: &mut Report,
) -> Option<()> {
    let run_id = hex_token(4);
    let secret = &options.registration_secret;
    let name_a = format!("smoke-{run_id}-a");
    let name_b = format!("smoke-{run_id}-b");
    let password = hex_token(16);
    let mut registered = Vec::new();
    for name in [&name_a, &name_b] {
        let want = format!("@{name}:{}", options.server_name);
        let user = report
            .step(&format!("register {name}"), async {
                let user = client.acting_as(&admin.register(secret, name, &password).await?);
                let user_id = user.user_id().unwrap_or_default().to_string();
                check(user_id == want, || {
                    format!("registered {user_id}, expected {want}: is --server-name right?")
                })?;
                Ok(user)
            })
            .await?;
        registered.push(user);
    }
    // B acts with its registration's token; A logs in, so the login route is checked once
    // per run (logins are rate-limited per address: a rerun soon after must still pass).
    let b = registered.pop()?;
    let a = report
        .step(
            &format!("log in {name_a}"),
            client.login(&name_a, &password),
        )
        .await?;
    let b_id = b.user_id().unwrap_or_default().to_string();
    let room = report
        .step("create room", a.create_room(&format!("smoke {run_id}")))
        .await?;
    report.step("invite B", a.invite(&room, &b_id)).await?;
    report.step("B joins", b.join(&room)).await?;
    let since = report
        .step("B syncs", async {
            b.sync(None, Duration::ZERO).await.map(|s| s.next_batch)
        })
        .await?;
    let sent = report
        .step(&format!("A sends {} messages", options.messages), async {
            let mut ids = Vec::with_capacity(options.messages);
            for i in 0..options.messages {
                let body = format!("smoke {run_id} message {i}");
                ids.push(a.send_text(&room, &format!("{run_id}-{i}"), &body).await?);
            }
            Ok(ids)
        })
        .await?;
    report
        .step(
            &format!("B receives {} messages", options.messages),
            await_messages(&b, &room, &since, &sent, options.receive_within),
        )
        .await?;
    let payload = random_bytes(options.media_bytes);
    let mxc = report
        .step(
            "upload media",
            a.upload(payload.clone(), "application/octet-stream", "smoke.bin"),
        )
        .await?;
    report
        .step("download media", async {
            let got = b.download(&mxc).await?;
            check(got == payload, || {
                format!(
                    "downloaded {} bytes that differ from the {} uploaded",
                    got.len(),
                    payload.len()
                )
            })
        })
        .await
}

/// `Ok` if `holds`, else a [`MatrixError::Check`] with the message.
fn check(holds: bool, message: impl FnOnce() -> String) -> Result<(), MatrixError> {
    if holds {
        Ok(())
    } else {
        Err(MatrixError::Check(message()))
    }
}

/// `bytes` random bytes as lowercase hex.
fn hex_token(bytes: usize) -> String {
    hex::encode(random_bytes(bytes))
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0; len];
    OsRng.fill_bytes(&mut bytes);
    bytes
}
